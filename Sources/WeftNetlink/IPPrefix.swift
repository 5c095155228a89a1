#if canImport(Glibc)
import Glibc
#endif

/// An interface address with its prefix length, as in "10.32.0.1/12" or "fd00::1/64".
struct IPPrefix: CustomStringConvertible, Equatable {
    let family: Int32      // AF_INET or AF_INET6
    let bytes: [UInt8]     // 4 or 16 bytes, network order
    let length: UInt8

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = UInt8(parts[1]), parts[1].allSatisfy(\.isASCII) else { return nil }
        let address = String(parts[0])
        if address.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, address, &raw) == 1, length <= 128 else { return nil }
            self.init(family: AF_INET6, bytes: withUnsafeBytes(of: raw) { Array($0) }, length: length)
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, address, &raw) == 1, length <= 32 else { return nil }
            self.init(family: AF_INET, bytes: withUnsafeBytes(of: raw) { Array($0) }, length: length)
        }
    }

    init?(family: Int32, bytes: [UInt8], length: UInt8) {
        guard (family == AF_INET && bytes.count == 4 && length <= 32)
                || (family == AF_INET6 && bytes.count == 16 && length <= 128) else { return nil }
        self.family = family
        self.bytes = bytes
        self.length = length
    }

    var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) != nil
        }
        let address = ok ? text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "?"
        return "\(address)/\(length)"
    }
}
