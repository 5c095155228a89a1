import CMnl
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Size of the per-call message buffer. The kernel sizes dump messages by the reader's buffer
/// (up to 32 KiB); a smaller buffer risks MSG_TRUNC on link dumps with many attributes.
let netlinkBufferSize = 32 * 1024

/// Builds one netlink request in a caller-owned buffer with libmnl.
struct MessageBuilder {
    let nlh: UnsafeMutablePointer<nlmsghdr>

    init(buffer: UnsafeMutableRawPointer, type: Int, flags: Int32) {
        nlh = mnl_nlmsg_put_header(buffer)
        nlh.pointee.nlmsg_type = UInt16(type)
        nlh.pointee.nlmsg_flags = UInt16(flags)
    }

    /// Appends a zeroed fixed header (ifinfomsg, ifaddrmsg…) and lets `fill` set its fields.
    func putHeader<T>(_ type: T.Type, _ fill: (inout T) -> Void) {
        let raw = mnl_nlmsg_put_extra_header(nlh, MemoryLayout<T>.size)!
        fill(&raw.assumingMemoryBound(to: T.self).pointee)
    }

    func putString(_ type: Int, _ value: String) { mnl_attr_put_strz(nlh, UInt16(type), value) }
    func putU16(_ type: Int, _ value: UInt16) { mnl_attr_put_u16(nlh, UInt16(type), value) }
    func putU32(_ type: Int, _ value: UInt32) { mnl_attr_put_u32(nlh, UInt16(type), value) }
    func putU64(_ type: Int, _ value: UInt64) { mnl_attr_put_u64(nlh, UInt16(type), value) }
    /// An attribute without payload (NLA_FLAG).
    func putFlag(_ type: Int) { mnl_attr_put(nlh, UInt16(type), 0, nil) }
    func putBytes(_ type: Int, _ value: [UInt8]) {
        value.withUnsafeBytes { mnl_attr_put(nlh, UInt16(type), $0.count, $0.baseAddress) }
    }
    func nest(_ type: Int, _ body: () -> Void) {
        let start = mnl_attr_nest_start(nlh, UInt16(type))
        body()
        mnl_attr_nest_end(nlh, start)
    }
}

/// State of one request while its replies are read; the context of the libmnl callbacks.
private final class ReplyContext {
    let onMessage: ((UnsafePointer<nlmsghdr>) -> Void)?
    /// Positive errno from an NLMSG_ERROR (or an NLMSG_DONE carrying an error); 0 = none.
    var kernelErrno: Int32 = 0
    /// Extended ACK text (NLMSGERR_ATTR_MSG), when the kernel sent one.
    var extack: String?

    init(onMessage: ((UnsafePointer<nlmsghdr>) -> Void)?) { self.onMessage = onMessage }
}

private func dataCallback(_ nlh: UnsafePointer<nlmsghdr>?, _ data: UnsafeMutableRawPointer?) -> Int32 {
    guard let nlh, let data else { return MNL_CB_ERROR }
    let ctx = Unmanaged<ReplyContext>.fromOpaque(data).takeUnretainedValue()
    ctx.onMessage?(nlh)
    return MNL_CB_OK
}

/// NLMSG_ERROR: 0 is the ACK that ends a request; otherwise record errno and extack text.
private func errorCallback(_ nlh: UnsafePointer<nlmsghdr>?, _ data: UnsafeMutableRawPointer?) -> Int32 {
    guard let nlh, let data else { return MNL_CB_ERROR }
    let ctx = Unmanaged<ReplyContext>.fromOpaque(data).takeUnretainedValue()
    let headerSize = MemoryLayout<nlmsghdr>.size
    guard Int(nlh.pointee.nlmsg_len) >= headerSize + MemoryLayout<nlmsgerr>.size else {
        ctx.kernelErrno = EBADMSG
        return MNL_CB_ERROR
    }
    let err = mnl_nlmsg_get_payload(nlh)!.assumingMemoryBound(to: nlmsgerr.self)
    let code = err.pointee.error
    if code == 0 { return MNL_CB_STOP }
    ctx.kernelErrno = code < 0 ? -code : code
    // Extended ACK TLVs follow the echoed request: only its header when the ACK is capped.
    let flags = Int32(nlh.pointee.nlmsg_flags)
    if flags & NLM_F_ACK_TLVS != 0 {
        var offset = MemoryLayout<nlmsgerr>.size
        if flags & NLM_F_CAPPED == 0 {
            let echoed = Int(err.pointee.msg.nlmsg_len)
            offset = MemoryLayout<Int32>.size + ((echoed + 3) & ~3)
        }
        if headerSize + offset <= Int(nlh.pointee.nlmsg_len) {
            let table = AttributeTable(message: nlh, offset: offset, maxType: Int(NLMSGERR_ATTR_MSG.rawValue))
            ctx.extack = table.string(Int(NLMSGERR_ATTR_MSG.rawValue))
        }
    }
    return MNL_CB_ERROR
}

/// NLMSG_DONE ends a dump; its payload is an int that is negative when the dump failed.
private func doneCallback(_ nlh: UnsafePointer<nlmsghdr>?, _ data: UnsafeMutableRawPointer?) -> Int32 {
    guard let nlh, let data else { return MNL_CB_ERROR }
    let ctx = Unmanaged<ReplyContext>.fromOpaque(data).takeUnretainedValue()
    if Int(mnl_nlmsg_get_payload_len(nlh)) >= MemoryLayout<Int32>.size {
        let code = mnl_nlmsg_get_payload(nlh)!.load(as: Int32.self)
        if code < 0 { ctx.kernelErrno = -code }
    }
    return MNL_CB_STOP
}

/// One libmnl netlink socket. Requests are serialized: each one is sent and all of its replies
/// (up to the ACK, error or NLMSG_DONE) are read before the next request starts.
final class NetlinkSocket: @unchecked Sendable {
    private let socket: OpaquePointer
    /// The socket's netlink port id (nl_pid), which the kernel addresses unicasts to.
    let portID: UInt32
    private let sequence: Mutex<UInt32>

    init(bus: Int32) throws {
        guard let socket = mnl_socket_open2(bus, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw NetlinkError(operation: "open netlink socket (bus \(bus))", errno: errno)
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let code = errno
            mnl_socket_close(socket)
            throw NetlinkError(operation: "bind netlink socket (bus \(bus))", errno: code)
        }
        // Kernel error text (extended ACK), and errors without the echoed request. Both optional.
        var one: Int32 = 1
        _ = mnl_socket_setsockopt(socket, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = mnl_socket_setsockopt(socket, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
        self.socket = socket
        self.portID = mnl_socket_get_portid(socket)
        self.sequence = Mutex(UInt32(truncatingIfNeeded: time(nil)))
    }

    deinit { mnl_socket_close(socket) }

    /// Builds a request with `build`, sends it and reads its replies; `onMessage` sees every data
    /// message (valid only during the call). Throws the kernel's error for the request.
    func request(_ operation: @autoclosure () -> String,
                 type: Int, flags: Int32,
                 build: (MessageBuilder) -> Void,
                 onMessage: ((UnsafePointer<nlmsghdr>) -> Void)? = nil) throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: netlinkBufferSize, alignment: 8)
        defer { buffer.deallocate() }
        memset(buffer, 0, netlinkBufferSize)
        let message = MessageBuilder(buffer: buffer, type: type, flags: flags)
        build(message)
        let ctx = ReplyContext(onMessage: onMessage)

        let failure: (code: Int32, extack: String?)? = sequence.withLock { seq in
            seq &+= 1
            let mySeq = seq
            message.nlh.pointee.nlmsg_seq = mySeq
            let length = Int(message.nlh.pointee.nlmsg_len)
            if mnl_socket_sendto(socket, buffer, length) < 0 { return (errno, nil) }

            var controls: [mnl_cb_t?] = [nil, nil, errorCallback, doneCallback]  // NOOP, ERROR, DONE
            let ctxPointer = Unmanaged.passUnretained(ctx).toOpaque()
            while true {
                let received = mnl_socket_recvfrom(socket, buffer, netlinkBufferSize)
                if received < 0 {
                    if errno == EINTR { continue }
                    return (errno, nil)
                }
                let ret = controls.withUnsafeMutableBufferPointer { ctl in
                    mnl_cb_run2(buffer, received, mySeq, portID, dataCallback, ctxPointer,
                                ctl.baseAddress, UInt32(ctl.count))
                }
                if ret == MNL_CB_ERROR {
                    if ctx.kernelErrno != 0 { return (ctx.kernelErrno, ctx.extack) }
                    // Not a terminating kernel error (interrupted dump, stray message): read
                    // the rest of this request's replies so the next request starts clean.
                    let code = errno
                    drain(seq: mySeq, buffer: buffer)
                    return (code, nil)
                }
                if ret <= MNL_CB_STOP {
                    return ctx.kernelErrno != 0 ? (ctx.kernelErrno, ctx.extack) : nil
                }
            }
        }
        if let failure {
            throw NetlinkError(operation: operation(), errno: failure.code, detail: failure.extack)
        }
    }

    /// Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, else
    /// SO_RCVBUF capped by net.core.rmem_max), so bursts of unsolicited messages are not dropped.
    func setReceiveBuffer(_ bytes: Int32) {
        let fd = mnl_socket_get_fd(socket)
        var size = bytes
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, length) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, length)
        }
    }

    /// Reads unsolicited messages (kernel unicasts such as OVS upcalls, not replies to a request):
    /// waits up to `timeoutMillis` (-1 = forever) for the first datagram, then takes every datagram
    /// already queued, handing each data message to `onMessage` (valid only during the call).
    /// Truncated datagrams are skipped and counted in the result; an ENOBUFS (the kernel dropped
    /// messages because the receive buffer was full) is counted too and reading goes on.
    /// Must not run concurrently with `request` on the same socket.
    func receiveUnsolicited(timeoutMillis: Int32, buffer: UnsafeMutableRawBufferPointer,
                            onMessage: (UnsafePointer<nlmsghdr>) -> Void) throws -> (truncated: Int, overflows: Int) {
        let fd = mnl_socket_get_fd(socket)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&pfd, 1, timeoutMillis)
            if ready < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(operation: "wait for netlink messages", errno: errno)
            }
            if ready == 0 { return (0, 0) }
            break
        }
        return try withoutActuallyEscaping(onMessage) { onMessage in
            try receiveQueued(fd: fd, buffer: buffer, onMessage: onMessage)
        }
    }

    private func receiveQueued(fd: Int32, buffer: UnsafeMutableRawBufferPointer,
                               onMessage: @escaping (UnsafePointer<nlmsghdr>) -> Void) throws -> (truncated: Int, overflows: Int) {
        let ctx = ReplyContext(onMessage: onMessage)
        let ctxPointer = Unmanaged.passUnretained(ctx).toOpaque()
        var truncated = 0, overflows = 0
        while true {
            // MSG_TRUNC: the datagram's real length, so a cut-off message is recognised.
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | Int32(MSG_TRUNC))
            if n < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN: return (truncated, overflows)
                case ENOBUFS: overflows += 1; continue
                default: throw NetlinkError(operation: "receive netlink messages", errno: errno)
                }
            }
            if n == 0 { return (truncated, overflows) }
            if n > buffer.count { truncated += 1; continue }
            // seq 0 and port 0 turn libmnl's sequence and port checks off; control messages
            // (errors, DONE) are ignored here.
            var controls: [mnl_cb_t?] = [nil, nil, nil, nil]
            _ = controls.withUnsafeMutableBufferPointer { ctl in
                mnl_cb_run2(buffer.baseAddress, n, 0, 0, dataCallback, ctxPointer, ctl.baseAddress, UInt32(ctl.count))
            }
        }
    }

    /// Discards queued replies of `seq` until its NLMSG_DONE/NLMSG_ERROR, or until none are left.
    private func drain(seq: UInt32, buffer: UnsafeMutableRawPointer) {
        let fd = mnl_socket_get_fd(socket)
        while true {
            let n = recv(fd, buffer, netlinkBufferSize, Int32(MSG_DONTWAIT))
            if n < 0 { if errno == EINTR { continue }; return }
            if n == 0 { return }
            var remaining = Int32(n)
            var nlh: UnsafePointer<nlmsghdr>? = UnsafePointer(buffer.assumingMemoryBound(to: nlmsghdr.self))
            while let current = nlh, mnl_nlmsg_ok(current, remaining) {
                let type = Int32(current.pointee.nlmsg_type)
                if current.pointee.nlmsg_seq == seq, type == NLMSG_DONE || type == NLMSG_ERROR { return }
                nlh = UnsafePointer(mnl_nlmsg_next(current, &remaining))
            }
        }
    }
}

/// Runs a dump again when the kernel reports it was interrupted by a concurrent change
/// (NLM_F_DUMP_INTR, surfaced as EINTR); `body` must start its result afresh.
func retryingInterruptedDump(_ body: () throws -> Void) throws {
    var attempt = 0
    while true {
        do { return try body() } catch let error as NetlinkError where error.errno == EINTR && attempt < 4 {
            attempt += 1
        }
    }
}
