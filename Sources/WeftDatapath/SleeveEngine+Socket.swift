// The sleeve's UDP socket: its set-up (large buffers, DF, GSO and GRO) and the batched send
// of the packets every thread builds.
import CWeftShims
import Foundation

enum SleeveSocket {
    /// A non-blocking UDP socket bound to `port` on every address, with 4 MiB buffers, DF set
    /// (path MTU probing needs real sizes) and GRO on.
    static func open(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DatapathError("cannot create the sleeve UDP socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bufferSize: Int32 = 4 << 20
        for option in [SO_RCVBUFFORCE, SO_SNDBUFFORCE] {
            setsockopt(fd, SOL_SOCKET, option, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
        }
        _ = weft_set_dont_fragment(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let error = DatapathError("cannot bind UDP port \(port) for sleeve")
            close(fd)
            throw error
        }
        // GRO joins the datagrams of a GSO train on receive; udpLoop splits them again.
        _ = weft_enable_udp_gro(fd)
        return fd
    }
}

extension SleeveEngine {
    /// A batch of packets on their way out, flushed with one sendmmsg per 64.
    struct OutBatch {
        var pointers: [UnsafeMutableRawPointer?]
        var lengths: [Int]
        var addresses: [sockaddr_in]
        var sessions: [SleeveSession?]
        var count = 0

        init(capacity: Int) {
            pointers = Array(repeating: nil, count: capacity)
            lengths = Array(repeating: 0, count: capacity)
            addresses = Array(repeating: sockaddr_in(), count: capacity)
            sessions = Array(repeating: nil, count: capacity)
        }

        var isFull: Bool { count == pointers.count }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, _ session: SleeveSession) {
            add(p, length, address: session.remoteAddress, session: session)
        }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, address: sockaddr_in, session: SleeveSession?) {
            pointers[count] = p
            lengths[count] = length
            addresses[count] = address
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
        var address = session.remoteAddress
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(udpFD, p, length, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
