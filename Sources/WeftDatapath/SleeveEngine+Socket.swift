// The sleeve's UDP socket: its set-up (large buffers, DF, GSO and GRO) and the batched send
// of the packets every thread builds.
import CWeftShims
import Foundation
import WeftMesh

enum SleeveSocket {
    /// A non-blocking UDP socket bound to `port` on every address of both families (one
    /// dual-stack AF_INET6 socket; AF_INET where the kernel has no IPv6), with 4 MiB buffers, DF
    /// set (path MTU probing needs real sizes) and GRO on. Returns the socket and its family.
    static func open(port: Int) throws -> (fd: Int32, family: Int32) {
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        var family = AF_INET6
        var fd = socket(AF_INET6, type, 0)
        if fd < 0 || weft_set_dual_stack(fd) != 0 {
            if fd >= 0 { close(fd) }
            family = AF_INET
            fd = socket(AF_INET, type, 0)
        }
        guard fd >= 0 else { throw DatapathError("cannot create the sleeve UDP socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bufferSize: Int32 = 4 << 20
        for option in [SO_RCVBUFFORCE, SO_SNDBUFFORCE] {
            setsockopt(fd, SOL_SOCKET, option, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
        }
        _ = weft_set_dont_fragment(fd, family == AF_INET6 ? 1 : 0)
        // The unspecified address of the socket's family, in the one slot layout.
        var address = UnderlayAddress(ip: IPAddress(family == AF_INET6 ? "::" : "0.0.0.0")!, port: UInt16(port), socketFamily: family)!
        let bound = withUnsafePointer(to: &address.raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let error = DatapathError("cannot bind UDP port \(port) for sleeve")
            close(fd)
            throw error
        }
        // GRO joins the datagrams of a GSO train on receive; udpLoop splits them again.
        _ = weft_enable_udp_gro(fd)
        return (fd, family)
    }
}

extension SleeveEngine {
    /// A batch of packets on their way out, flushed with one sendmmsg per 64.
    struct OutBatch {
        var pointers: [UnsafeMutableRawPointer?]
        var lengths: [Int]
        var addresses: [sockaddr_in6]
        var sessions: [SleeveSession?]
        var count = 0

        init(capacity: Int) {
            pointers = Array(repeating: nil, count: capacity)
            lengths = Array(repeating: 0, count: capacity)
            addresses = Array(repeating: sockaddr_in6(), count: capacity)
            sessions = Array(repeating: nil, count: capacity)
        }

        var isFull: Bool { count == pointers.count }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, _ session: SleeveSession) {
            add(p, length, address: session.remoteAddress, session: session)
        }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, address: UnderlayAddress, session: SleeveSession?) {
            pointers[count] = p
            lengths[count] = length
            addresses[count] = address.raw
            sessions[count] = session
            count += 1
        }

        mutating func clear() {
            for i in 0..<count { sessions[i] = nil }
            count = 0
        }
    }

    func flush(_ out: inout OutBatch) {
        var start = 0
        while start < out.count {
            let sent = out.pointers.withUnsafeBufferPointer { p in
                out.lengths.withUnsafeBufferPointer { l in
                    out.addresses.withUnsafeBufferPointer { a in
                        weft_send_batch(udpFD, UnsafePointer(p.baseAddress! + start), l.baseAddress! + start,
                                        a.baseAddress! + start, Int32(min(out.count - start, Self.batch)))
                    }
                }
            }
            if sent > 0 {
                start += Int(sent)
                continue
            }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                var p = pollfd(fd: udpFD, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 100)
                continue
            }
            // The first packet of the rest failed (EMSGSIZE: path MTU below it); drop it alone.
            if errno == EMSGSIZE, let session = out.sessions[start] {
                SleeveCounters.add(session.counters.dropTooBig, 1)
            }
            start += 1
        }
        out.clear()
    }

    /// Sends one packet at once (control plane and hand-offs; the loops send in batches).
    func send(_ p: UnsafeRawPointer, _ length: Int, to session: SleeveSession) {
        var address = session.remoteAddress.raw
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(udpFD, p, length, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }
}
