// Fuzz targets of what arrives from outside as text: the control API's request bodies, through
// its one request router (WeftControl/ControlEndpoints.swift) to a delegate that applies the
// router's own checks (address rule, CIDR rule) and holds each value to what the router needs
// of it; and the keyring file reader (WeftRouter/Keyring.swift).
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import WeftControl
import WeftCrypto
@testable import WeftHost
@testable import WeftRouter

/// The router's side of the control API without a router: every value a handler passes on is
/// checked against what the router does with it.
final class CheckingDelegate: ControlAPIDelegate, WorkloadHost, @unchecked Sendable {
    let loop = EmbeddedEventLoop()

    func status() -> RouterStatus { fatalError("GET endpoints are not fuzzed") }
    func peerStatus() -> [PeerStatus] { fatalError("GET endpoints are not fuzzed") }
    func connectionStatus() -> [ConnectionStatus] { fatalError("GET endpoints are not fuzzed") }
    func topologyStatus() -> TopologyStatus { fatalError("GET endpoints are not fuzzed") }

    func addressProblem(_ address: String) -> String? { PeerAddress.problem(address) }
    func addTarget(_ address: String) { expectDialable(address) }
    func forgetTarget(_ address: String) -> Bool { expectDialable(address); return false }
    /// The router dials what it accepted: the port must be one a socket can have.
    func expectDialable(_ address: String) {
        let port = Router.split(Router.normalize(address, defaultPort: RouterConfig.defaultPort))?.port
        expect(port.map { (1...65535).contains($0) } ?? false, "the control API accepted '\(address)' to dial, port \(port.map(String.init) ?? "none")")
    }
    func stop() {}

    var workloadHost: WorkloadHost? { self }
    var addressHost: AddressHost? { nil }
    func rotateKeys(peer: String?) -> EventLoopFuture<[RotateKeyResult]> { loop.makeSucceededFuture([]) }
    var hasKeyring: Bool { true }
    func passwords() -> [PasswordInfo] { [] }
    func addPassword(_ psk: PreSharedKey) throws { expect(psk.key.count == 32, "a PSK of \(psk.key.count) bytes") }
    func isUsablePassword(_ id: PSKID) -> Bool { true }
    func usePassword(_ id: PSKID) -> EventLoopFuture<String> {
        expect(id.bytes.count == PSKID.length, "a PSK id of \(id.bytes.count) bytes")
        return loop.makeSucceededFuture("")
    }
    func retirePassword(_ id: PSKID) throws {}
    func rotatePassword(to psk: PreSharedKey, graceSeconds: Double) -> EventLoopFuture<RotatePasswordResult> {
        // The grace travels in PASSWORD_USE as whole seconds in a u32 and goes into a Date.
        expect(graceSeconds.isFinite && graceSeconds >= 0 && graceSeconds <= Double(UInt32.max), "a grace of \(graceSeconds) s")
        return loop.makeSucceededFuture(RotatePasswordResult(id: psk.id.description, previousId: nil, acknowledged: [], missing: [], retireAt: nil))
    }

    func revoke(peer: String, psk: PreSharedKey?, graceSeconds: Double) -> EventLoopFuture<RevokeResult> {
        expect(graceSeconds.isFinite && graceSeconds >= 0 && graceSeconds <= Double(UInt32.max), "a grace of \(graceSeconds) s")
        return loop.makeFailedFuture(ControlAPIError(.notFound, "no peer \(peer)"))
    }

    func revocations() -> [RevocationStatus] { [] }

    var workloads: [Workload] { [] }
    var defaultWorkloadIfname: String { "ethwe" }
    var bridgeName: String { "weft" }
    func canonicalCIDR(_ text: String) throws -> String { try HostNetwork.canonicalCIDR(text) }
    func attach(namespace: String?, pid: Int32?, cidr: String, ifname: String) throws -> Workload {
        let canonical = try HostNetwork.canonicalCIDR(cidr)
        return Workload(namespace: namespace, pid: pid, ifname: ifname, hostIfname: "weftv0", cidrs: [canonical])
    }
    func detach(namespace: String?, pid: Int32?) throws -> Bool { false }
    func sameNamespace(_ a: String, _ b: String) -> Bool { false }
    func expose(cidr: String) throws -> Bool { expect((try? HostNetwork.canonicalCIDR(cidr)) == cidr, "expose of a CIDR not in canonical form"); return true }
    func hide(cidr: String) throws -> Bool { expect((try? HostNetwork.canonicalCIDR(cidr)) == cidr, "hide of a CIDR not in canonical form"); return false }
}

/// The endpoints that read a body.
let bodyEndpoints = ["/v1/connect", "/v1/forget", "/v1/attach", "/v1/detach", "/v1/expose", "/v1/hide", "/v1/rotate-key",
                     "/v1/password/add", "/v1/password/use", "/v1/password/retire", "/v1/rotate-password"]
let checkingDelegate = CheckingDelegate()
let controlAPI = ControlRequestRouter.controlAPI(checkingDelegate)

let controlTargets: [FuzzTarget] = [
    // One byte picks the endpoint; the rest is the JSON body.
    FuzzTarget(name: "control", run: { data in
        var input = FuzzInput(data)
        let path = bodyEndpoints[Int(input.u8()) % bodyEndpoints.count]
        let request = ControlRequest(method: .POST, uri: path, body: input.rest())
        if case .pending(let future) = controlAPI.answer(request) { _ = future }
        checkingDelegate.loop.run()
    }, seeds: {
        func seed(_ path: String, _ json: String) -> [UInt8] { [UInt8(bodyEndpoints.firstIndex(of: path)!)] + Array(json.utf8) }
        let psk = String(repeating: "ab", count: 32)
        return [seed("/v1/connect", #"{"address": "10.0.0.2:6783"}"#), seed("/v1/forget", #"{"address": "[fd00::2]:6783"}"#),
                seed("/v1/attach", #"{"namespace": "ns1", "cidr": "10.32.0.5/12", "ifname": "ethwe"}"#),
                seed("/v1/detach", #"{"pid": 1234}"#), seed("/v1/expose", #"{"cidr": "fd00::1/64"}"#),
                seed("/v1/rotate-key", #"{"peer": "host-2"}"#), seed("/v1/password/add", "{\"psk\": \"\(psk)\"}"),
                seed("/v1/password/use", #"{"id": "0123456789abcdef"}"#),
                seed("/v1/rotate-password", "{\"psk\": \"\(psk)\", \"graceSeconds\": 600}")]
    }),

    // keyring.json as found on disk: read, checked, and the newest accepted password promoted.
    FuzzTarget(name: "keyring", run: { data in
        guard let entries = try? Keyring.decode(Data(data), path: "keyring.json").entries else { return }
        for entry in entries {
            expect(Hex.decode(entry.psk).map { $0.count == 32 && PreSharedKey(key: $0).id.description == entry.id } == true,
                   "a damaged keyring entry, or one whose id is not its psk's, was accepted")
        }
        _ = try? Keyring.promoteNewestAccepted(entries, path: "keyring.json")
    }, seeds: {
        let psk = String(repeating: "11", count: 32)
        let id = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32)).id.description
        return [Array(#"{"format": 1, "entries": [{"id": "\#(id)", "state": "active", "addedAt": "2026-01-01T00:00:00Z", "psk": "\#(psk)"}]}"#.utf8),
                Array(#"{"format": 1, "entries": [{"id": "\#(id)", "state": "accepted", "addedAt": "2026-01-01T00:00:00Z", "retireAt": "2026-02-01T00:00:00Z", "psk": "\#(psk)"}]}"#.utf8)]
    }),
]
