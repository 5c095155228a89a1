// The CLI side of the control API: one blocking HTTP request over the Unix socket. Plain POSIX
// calls keep short commands like `weft status` quick to start.
import Foundation

public struct ControlClientError: Error, CustomStringConvertible {
    public let description: String
}

public struct ControlClient {
    public let socketPath: String
    public let timeoutSeconds: Int

    public init(socketPath: String, timeoutSeconds: Int = 10) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends one request; returns the status code and body. Throws when no router answers.
    public func request(method: String, path: String, body: [UInt8] = []) throws -> (status: Int, body: [UInt8]) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ControlClientError(description: "control socket path \(socketPath) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw ControlClientError(description: "no router answers on \(socketPath) (\(String(cString: strerror(errno)))); is `weft launch` running? select another with --socket or WEFT_SOCKET")
        }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: weft\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        if !body.isEmpty { request += "Content-Type: application/json\r\n" }
        request += "\r\n"
        let out = Array(request.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ControlClientError(description: "writing to \(socketPath) failed: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var response = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw ControlClientError(description: "no answer from the router on \(socketPath) within \(timeoutSeconds) s") }
            response += chunk[..<n]
        }
        return try Self.parse(response)
    }

    static func parse(_ response: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<($0 + 4)]) == separator }) else {
            throw ControlClientError(description: "the router sent an incomplete answer")
        }
        let head = String(decoding: response[..<end], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw ControlClientError(description: "the router sent a malformed answer: \(statusLine)")
        }
        return (status, Array(response[(end + 4)...]))
    }
}
