import CWeftShims
#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces as file descriptors, and running code inside one without moving the
/// calling thread.
public enum NetworkNamespace {
    /// Opens /var/run/netns/NAME (as `ip netns add` creates it), O_RDONLY|O_CLOEXEC.
    /// The caller owns and closes the descriptor.
    public static func open(name: String) throws -> Int32 {
        let path = "/var/run/netns/\(name)"
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw NetlinkError(operation: "open network namespace '\(name)'", errno: EINVAL,
                               detail: "not a namespace name (as in `ip netns add NAME`)")
        }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT {
                throw NetlinkError(operation: "network namespace '\(name)' not found (\(path))", errno: code)
            }
            throw NetlinkError(operation: "open network namespace '\(name)' (\(path))", errno: code)
        }
        return fd
    }

    /// Opens /proc/PID/ns/net, the network namespace of a process (a container's, say).
    public static func open(pid: Int32) throws -> Int32 {
        let path = "/proc/\(pid)/ns/net"
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let what = code == ENOENT ? "network namespace of process \(pid) not found (\(path))"
                                      : "open network namespace of process \(pid) (\(path))"
            throw NetlinkError(operation: what, errno: code)
        }
        return fd
    }

    /// Runs `body` on a new, dedicated thread that first joins the network namespace `fd`
    /// refers to (setns), waits for it and returns its result. The calling thread's namespace
    /// never changes; sockets and TAP devices created in `body` stay in that namespace.
    public static func perform<T>(inNamespaceFd fd: Int32, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            var result: Result<T, any Error>?
            let job = NamespaceJob(fd: fd) { result = Result { try body() } }
            let context = Unmanaged.passRetained(job).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<NamespaceJob>.fromOpaque(raw!).takeRetainedValue()
                job.run()
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<NamespaceJob>.fromOpaque(context).release()
                throw NetlinkError(operation: "start a thread for network namespace fd \(fd)", errno: rc)
            }
            pthread_join(thread, nil)
            if job.setnsErrno != 0 {
                throw NetlinkError(operation: "enter network namespace (fd \(fd))", errno: job.setnsErrno)
            }
            return try result!.get()
        }
    }
}

/// What the namespace thread does: setns, then the work. Read by the caller after pthread_join.
private final class NamespaceJob {
    let fd: Int32
    let work: () -> Void
    var setnsErrno: Int32 = 0

    init(fd: Int32, work: @escaping () -> Void) {
        self.fd = fd
        self.work = work
    }

    func run() {
        guard weft_setns_net(fd) == 0 else {
            setnsErrno = errno
            return
        }
        work()
    }
}
