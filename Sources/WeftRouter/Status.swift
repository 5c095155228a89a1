// The JSON documents of the control API (`weft status … --json`). Field names are a public
// contract: scripts and later issues depend on them.

public enum ConnectionState: String, Codable, Sendable {
    case connecting, established, failed, retrying
}

public enum LinkDirection: String, Codable, Sendable {
    case inbound, outbound
}

public struct ConnectionStatus: Codable, Sendable, Equatable {
    public var peer: String?
    public var nickname: String?
    public var address: String
    public var direction: LinkDirection
    public var state: ConnectionState
    public var encrypted: Bool
    public var trusted: Bool
    /// The data-plane mode ("sleeve", "fastdp"); null until a data plane carries this peer.
    public var mode: String?
    public var pskId: String?
    public var reason: String?
    public var connectionId: String?
    public var since: String?
}

public struct PeerStatus: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String
    public var uid: String
    public var shortId: Int
    public var version: UInt64
    public var connections: Int
    public var reachable: Bool
    /// Name of the directly connected peer that traffic to this one goes through; null for self.
    public var nextHop: String?
    public var isSelf: Bool
}

public struct RouterStatus: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String
    public var port: Int
    public var encryption: Bool
    public var pskId: String?
    public var trustedSubnets: [String]
    public var protocolVersion: Int
    public var peers: Int
    public var connections: [String: Int]
    public var targets: [String]
    public var uptimeSeconds: Int
}

/// Error document of the control API: `{"error": "..."}` with a non-2xx status.
public struct ControlError: Codable, Sendable {
    public var error: String
}

public struct AddressRequest: Codable, Sendable {
    public var address: String
    public init(address: String) { self.address = address }
}
