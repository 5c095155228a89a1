// The one rule for a password read from a file or standard input (`--password-file`, `weft
// password add`, `weft rotate-password`): its first line, without the line ending (LF or CR LF,
// as an editor on another system writes it). The rest is kept byte for byte, because a password
// may hold any character; what is probably a mistake is warned about, not changed. WEFT_PASSWORD
// is taken whole.
import Foundation

public struct PasswordText: Equatable, Sendable {
    public let password: String
    /// What looks wrong, one sentence each, naming `source`; the password is used all the same.
    public let warnings: [String]

    /// `source` names the file (or "standard input") in errors and warnings.
    public init(_ data: [UInt8], source: String) throws {
        var line = data.prefix { $0 != UInt8(ascii: "\n") }
        let rest = data.dropFirst(line.count + 1)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard let password = String(validating: line, as: UTF8.self) else {
            throw ConfigError("the password in \(source) is not UTF-8 text")
        }
        var warnings: [String] = []
        if line.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            warnings.append("the password in \(source) contains control characters (such as a tab or a carriage return); "
                            + "they are part of the password, so peers must use exactly the same bytes")
        }
        let blanks: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t")]
        if let first = line.first, let last = line.last, blanks.contains(first) || blanks.contains(last) {
            warnings.append("the password in \(source) begins or ends with a space or tab, which is part of the password; "
                            + "remove it if it was not meant")
        }
        if rest.contains(where: { !blanks.contains($0) && $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }) {
            warnings.append("\(source) has more than one line; only the first is the password")
        }
        self.password = password
        self.warnings = warnings
    }

    /// A password given whole (WEFT_PASSWORD): every byte counts, nothing to warn about.
    public init(verbatim password: String) {
        self.password = password
        self.warnings = []
    }
}
