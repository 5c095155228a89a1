// `weft version --json` (and `weft --version` as text): what this binary is and what it can speak.
// Field names are a public contract, like the status documents'.
import WeftCrypto
import WeftWire

public struct VersionReport: Codable, Sendable, Equatable {
    /// The release, from the VERSION file.
    public var version: String
    /// `git describe` of the tree it was built from: 12 hex digits, `-dirty` when it had changes.
    public var commit: String
    /// The gossip link protocol versions this build negotiates (docs/protocol.md §3.1).
    public var protocolVersions: [Int]
    /// The data-plane ciphers this CPU allows (AES-256-GCM needs AES-NI), as in connection status.
    public var ciphers: [String]

    public init(version: String, commit: String) {
        self.version = version
        self.commit = commit
        protocolVersions = (Int(LinkVersion.minimum)...Int(LinkVersion.maximum)).map { $0 }
        ciphers = DataCipher.allowedOnThisCPU.map(\.rawValue)
    }

    public var text: String {
        """
        weft \(version) (commit \(commit))
        protocol versions: \(protocolVersions.map(String.init).joined(separator: ", "))
        data-plane ciphers on this CPU: \(ciphers.joined(separator: ", "))
        """
    }
}
