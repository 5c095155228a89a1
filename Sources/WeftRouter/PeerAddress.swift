// The one rule for a peer address as `weft launch`, `weft connect` and `weft forget` take it (and
// the control API's /v1/connect and /v1/forget): HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6
// address, where HOST is an IP address or a plausible DNS name. Anything else is refused before
// it reaches the dialer, with a message that says what is wrong.
import Glibc

public enum PeerAddress {
    public static let forms = "HOST, HOST:PORT or [IPv6]:PORT"

    /// Nil when `text` is a valid peer address, else why not (one sentence, naming `text`).
    public static func problem(_ text: String) -> String? {
        guard !text.isEmpty else { return "an empty peer address; use \(forms)" }
        let normalized = Router.normalize(text, defaultPort: RouterConfig.defaultPort)
        guard let (host, _) = Router.split(normalized) else {
            return "'\(text)' has no valid port (1–65535); use \(forms)"
        }
        if normalized.hasPrefix("[") {
            guard isIPv6(host) else {
                return text.hasPrefix("[")
                    ? "'\(host)' in '\(text)' is not an IPv6 address"
                    : "'\(text)' is neither an IP address nor HOST:PORT (an IPv6 address with a port is written [ADDRESS]:PORT)"
            }
            return nil
        }
        if isIPv4(host) { return nil }
        return hostNameProblem(host).map { "'\(text)' is neither an IP address nor a host name: \($0)" }
    }

    /// Why `name` cannot be a DNS host name (RFC 1123 labels), or nil. A name whose last label is
    /// all digits is refused: no top-level domain is numeric (RFC 3696 §2), so `10.55.0.999` is
    /// a mistyped IPv4 address, not a name to look up.
    static func hostNameProblem(_ name: String) -> String? {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        guard trimmed.utf8.count <= 253 else { return "longer than 253 characters" }
        let labels = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty else { return "an empty label between dots" }
            guard label.utf8.count <= 63 else { return "the label '\(label)' is longer than 63 characters" }
            guard label.utf8.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }) else {
                return "'\(label)' has a character other than letters, digits and '-'"
            }
            guard label.first != "-", label.last != "-" else { return "the label '\(label)' starts or ends with '-'" }
        }
        if let last = labels.last, last.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return labels.count == 4 ? "an IPv4 address has four numbers of 0–255" : "a host name never ends in a number"
        }
        return nil
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
