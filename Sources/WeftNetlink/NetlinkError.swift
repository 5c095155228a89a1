#if canImport(Glibc)
import Glibc
#endif

/// A failed netlink, namespace or TUN operation. `description` says what failed and why, e.g.
/// `create bridge 'weft': File exists (EEXIST)`, followed by the kernel's extended-ACK message
/// when it sent one.
public struct NetlinkError: Error, CustomStringConvertible {
    /// What was attempted, naming the objects involved ("create bridge 'weft'").
    public let operation: String
    /// The errno (positive), as the kernel or libc reported it.
    public let errno: Int32
    /// Extra text: the kernel's extended ACK message (NLMSGERR_ATTR_MSG), or our own explanation.
    public let detail: String?

    public init(operation: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(operation): \(String(cString: strerror(errno))) (\(NetlinkError.errnoName(errno)))"
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        return text
    }

    /// Symbolic name of the errnos a control plane meets; "errno N" for the rest.
    public static func errnoName(_ code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case ENXIO: return "ENXIO"
        case E2BIG: return "E2BIG"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case ENOTDIR: return "ENOTDIR"
        case EINVAL: return "EINVAL"
        case ENFILE: return "ENFILE"
        case EMFILE: return "EMFILE"
        case ENOSPC: return "ENOSPC"
        case ERANGE: return "ERANGE"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case ENOSYS: return "ENOSYS"
        case ELOOP: return "ELOOP"
        case EPROTO: return "EPROTO"
        case EBADMSG: return "EBADMSG"
        case EOVERFLOW: return "EOVERFLOW"
        case EMSGSIZE: return "EMSGSIZE"
        case EPROTONOSUPPORT: return "EPROTONOSUPPORT"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case EAFNOSUPPORT: return "EAFNOSUPPORT"
        case EADDRINUSE: return "EADDRINUSE"
        case EADDRNOTAVAIL: return "EADDRNOTAVAIL"
        case ENETDOWN: return "ENETDOWN"
        case ENOBUFS: return "ENOBUFS"
        case ETIMEDOUT: return "ETIMEDOUT"
        default: return "errno \(code)"
        }
    }
}
