// Every endpoint of the control API (docs/architecture.md, "Control API"), as one routing table.
// Handlers decode the request, ask the router through ControlAPIDelegate and word the answer;
// they run on the router's event loop, where the delegate's state lives.
import Foundation
import NIOCore
import NIOHTTP1
import WeftCrypto
import WeftWire

/// What the endpoints need from the router. The router conforms; calls arrive on its loop.
public protocol ControlAPIDelegate: AnyObject, Sendable {
    func status() -> RouterStatus
    func peerStatus() -> [PeerStatus]
    func connectionStatus() -> [ConnectionStatus]
    /// The mesh's links from the gossiped topology (`weft status topology`).
    func topologyStatus() -> TopologyStatus
    /// Why `address` is not a peer address (HOST, HOST:PORT, [IPv6]:PORT), or nil when it is.
    func addressProblem(_ address: String) -> String?
    func addTarget(_ address: String)
    /// False when `address` was not a target.
    func forgetTarget(_ address: String) -> Bool
    /// Shuts the router down shortly after the answer has gone out.
    func stop()

    /// Nil when the router has no host network (the workload endpoints answer 503).
    var workloadHost: WorkloadHost? { get }
    /// Nil with `--ipalloc-range off` (attach then needs an address; `weft ipam` answers 409).
    var addressHost: AddressHost? { get }

    /// Rekeys the links to `peer` (a name or nickname; nil for all). Fails with 404 when no
    /// established connection matches.
    func rotateKeys(peer: String?) -> EventLoopFuture<[RotateKeyResult]>
    /// Whether the router has a keyring (it runs with a password); the password endpoints
    /// answer 409 otherwise.
    var hasKeyring: Bool { get }
    func passwords() -> [PasswordInfo]
    /// Adds `psk` as accepted; throws when it was retired.
    func addPassword(_ psk: PreSharedKey) throws
    /// Whether the keyring holds `id` in a state it can be made active from.
    func isUsablePassword(_ id: PSKID) -> Bool
    /// Makes `id` active, moves the links to it and answers, once their rekeys ended, how many
    /// moved and which peers lack it.
    func usePassword(_ id: PSKID) -> EventLoopFuture<String>
    func retirePassword(_ id: PSKID) throws
    func rotatePassword(to psk: PreSharedKey, graceSeconds: Double) -> EventLoopFuture<RotatePasswordResult>
    /// `weft revoke PEER` (docs/protocol.md §3.11): revokes the peer's identity key, then rotates
    /// the password to `psk` (nil: a generated one). Fails with 404 or 409 when PEER names no
    /// peer, several, this router or one already revoked.
    func revoke(peer: String, psk: PreSharedKey?, graceSeconds: Double) -> EventLoopFuture<RevokeResult>
    /// `weft revoke --list`: the mesh's revocations as this router holds them.
    func revocations() -> [RevocationStatus]
}

/// The host side of the workload endpoints.
public protocol WorkloadHost: AnyObject {
    var workloads: [Workload] { get }
    /// The interface name inside a workload when the request names none.
    var defaultWorkloadIfname: String { get }
    /// The bridge that `expose` puts host addresses on.
    var bridgeName: String { get }
    func canonicalCIDR(_ text: String) throws -> String
    func attach(namespace: String?, pid: Int32?, cidr: String, ifname: String) throws -> Workload
    func detach(namespace: String?, pid: Int32?) throws -> Bool
    /// Whether two holders (AddressHolder) name the same network namespace (a workload
    /// attached by name and again by the pid of a process in it).
    func sameNamespace(_ a: String, _ b: String) -> Bool
    func expose(cidr: String) throws -> Bool
    func hide(cidr: String) throws -> Bool
}

/// Who holds an allocated address: a workload by its namespace name or process, or the host.
public enum AddressHolder {
    public static let host = "host"
    public static func workload(namespace: String?, pid: Int32?) -> String { namespace.map { "netns:\($0)" } ?? "pid:\(pid ?? 0)" }
    /// The namespace name or process of a workload holder; nil for the host or anything else.
    public static func target(of holder: String) -> (namespace: String?, pid: Int32?)? {
        if holder.hasPrefix("netns:") { return (String(holder.dropFirst(6)), nil) }
        if holder.hasPrefix("pid:"), let pid = Int32(holder.dropFirst(4)) { return (nil, pid) }
        return nil
    }
}

/// The router's address management as the workload endpoints see it (docs/protocol.md §7).
/// Holders are named by AddressHolder.
public protocol AddressHost: AnyObject {
    /// An address with the range's prefix length (`10.32.0.5/12`); the same one for a holder
    /// that has one. Waits for the pool to be divided or a peer to give space.
    func allocate(holder: String) -> EventLoopFuture<String>
    /// Records an address given by hand; throws 409 naming the holder when another has it in
    /// the range. Returns a warning when the address is outside the range and another
    /// workload in the mesh was given it too.
    func take(cidr: String, holder: String) throws -> String?
    func release(holder: String)
    func ipamStatus() -> IPAMStatus
    /// `weft rmpeer`: the sentence for the operator, or 409 while the peer is connected.
    func removePeer(_ peer: String) throws -> String
}

extension ControlRequestRouter {
    /// The control API of `delegate`: status, targets, stop, workloads, keys, passwords and revocations.
    public static func controlAPI(_ delegate: ControlAPIDelegate) -> ControlRequestRouter {
        var api = ControlRequestRouter()
        api.add(.GET, "/v1/status") { _ in .reply(.json(delegate.status())) }
        api.add(.GET, "/v1/status/peers") { _ in .reply(.json(delegate.peerStatus())) }
        api.add(.GET, "/v1/status/connections") { _ in .reply(.json(delegate.connectionStatus())) }
        api.add(.GET, "/v1/status/topology") { _ in .reply(.json(delegate.topologyStatus())) }

        @Sendable func address(_ request: ControlRequest) throws -> String {
            let shape = #"{"address": "HOST[:PORT]"}"#
            let address = try request.decode(AddressRequest.self, shape: shape).address
            if let problem = delegate.addressProblem(address) { throw ControlAPIError(.badRequest, problem) }
            return address
        }
        api.add(.POST, "/v1/connect") { request in
            let target = try address(request)
            delegate.addTarget(target)
            return .reply(.json(["result": "connecting to \(target)"]))
        }
        api.add(.POST, "/v1/forget") { request in
            let target = try address(request)
            let known = delegate.forgetTarget(target)
            return .reply(.json(["result": known ? "forgot \(target)" : "\(target) was not a target; it will not be learned from gossip"]))
        }
        api.add(.POST, "/v1/stop") { _ in
            delegate.stop()
            return .reply(.json(["result": "stopping"]))
        }

        api.add(.GET, "/v1/ipam") { _ in
            guard let addresses = delegate.addressHost else { throw ControlAPIError(.conflict, "address management is off (--ipalloc-range off)") }
            return .reply(.json(addresses.ipamStatus()))
        }
        api.add(.POST, "/v1/rmpeer") { request in
            guard let addresses = delegate.addressHost else { throw ControlAPIError(.conflict, "address management is off (--ipalloc-range off)") }
            guard let peer = try request.decode(PeerRequest.self, shape: #"{"peer": NAME}"#).peer else {
                throw ControlAPIError(.badRequest, #"expected {"peer": NAME}"#)
            }
            return .reply(.json(["result": try addresses.removePeer(peer)]))
        }
        addWorkloadEndpoints(to: &api, delegate)
        addKeyEndpoints(to: &api, delegate)
        return api
    }

    private static func addWorkloadEndpoints(to api: inout ControlRequestRouter, _ delegate: ControlAPIDelegate) {
        @Sendable func host() throws -> WorkloadHost {
            guard let host = delegate.workloadHost else { throw ControlAPIError(.serviceUnavailable, "the router has no host network") }
            return host
        }
        /// The same, from inside a handler's local function (where `host` names the local).
        @Sendable func hostNetwork() throws -> WorkloadHost { try host() }
        @Sendable func describe(namespace: String?, pid: Int32?) -> String {
            namespace.map { "network namespace '\($0)'" } ?? "process \(pid ?? 0)"
        }
        api.add(.GET, "/v1/workloads") { _ in .reply(.json(try host().workloads)) }
        api.add(.POST, "/v1/attach") { request in
            let host = try host()
            let attach = try request.decode(AttachRequest.self, shape: #"{"namespace": NAME or "pid": PID, "cidr": CIDR (absent: allocate), "ifname": NAME}"#)
            let ifname = attach.ifname ?? host.defaultWorkloadIfname
            let owner = AddressHolder.workload(namespace: attach.namespace, pid: attach.pid)
            @Sendable func attached(_ cidr: String, allocated: Bool, warning: String? = nil) throws -> ControlReply {
                let workload: Workload
                do { workload = try hostNetwork().attach(namespace: attach.namespace, pid: attach.pid, cidr: cidr, ifname: ifname) } catch {
                    if allocated { delegate.addressHost?.release(holder: owner) }
                    throw error
                }
                return .json(WorkloadResult(
                    result: "attached \(describe(namespace: attach.namespace, pid: attach.pid)): \(ifname) \(workload.cidrs.joined(separator: " ")), host end \(workload.hostIfname)"
                        + (warning.map { "\nwarning: \($0)" } ?? ""),
                    workload: workload))
            }
            guard let cidr = attach.cidr else {
                guard let addresses = delegate.addressHost else {
                    throw ControlAPIError(.badRequest, "address management is off (--ipalloc-range off): give the address, e.g. weft attach NETNS 10.32.0.5/12")
                }
                return .pending(addresses.allocate(holder: owner).flatMapThrowing { try attached($0, allocated: true) })
            }
            let warning = try delegate.addressHost?.take(cidr: try host.canonicalCIDR(cidr), holder: owner)
            return .reply(try attached(cidr, allocated: false, warning: warning))
        }
        api.add(.POST, "/v1/detach") { request in
            let host = try host()
            let detach = try request.decode(DetachRequest.self, shape: #"{"namespace": NAME} or {"pid": PID}"#)
            let what = describe(namespace: detach.namespace, pid: detach.pid)
            let removed = try host.detach(namespace: detach.namespace, pid: detach.pid)
            delegate.addressHost?.release(holder: AddressHolder.workload(namespace: detach.namespace, pid: detach.pid))
            return .reply(.json(WorkloadResult(result: removed ? "detached \(what)" : "\(what) was not attached", workload: nil)))
        }
        api.add(.POST, "/v1/expose") { request in
            let host = try host()
            @Sendable func exposed(_ cidr: String) throws -> ControlReply {
                let host = try hostNetwork()
                let added = try host.expose(cidr: cidr)
                return .json(WorkloadResult(result: added ? "exposed \(cidr) on \(host.bridgeName)" : "\(cidr) was already exposed", workload: nil))
            }
            guard let given = try request.decode(CIDRRequest.self, shape: #"{"cidr": CIDR (absent: allocate)}"#).cidr else {
                guard let addresses = delegate.addressHost else {
                    throw ControlAPIError(.badRequest, "address management is off (--ipalloc-range off): give the address, e.g. weft expose 10.32.0.1/12")
                }
                return .pending(addresses.allocate(holder: AddressHolder.host).flatMapThrowing { try exposed($0) })
            }
            let cidr = try host.canonicalCIDR(given)
            _ = try delegate.addressHost?.take(cidr: cidr, holder: AddressHolder.host)
            return .reply(try exposed(cidr))
        }
        api.add(.POST, "/v1/hide") { request in
            let host = try host()
            guard let given = try request.decode(CIDRRequest.self, shape: #"{"cidr": CIDR}"#).cidr else {
                throw ControlAPIError(.badRequest, #"expected {"cidr": CIDR}"#)
            }
            let cidr = try host.canonicalCIDR(given)
            let removed = try host.hide(cidr: cidr)
            if removed { delegate.addressHost?.release(holder: AddressHolder.host) }
            return .reply(.json(WorkloadResult(result: removed ? "hid \(cidr)" : "\(cidr) was not exposed", workload: nil)))
        }
    }

    private static func addKeyEndpoints(to api: inout ControlRequestRouter, _ delegate: ControlAPIDelegate) {
        @Sendable func requireKeyring() throws {
            guard delegate.hasKeyring else {
                throw ControlAPIError(.conflict, "this router runs without a password; launch it with WEFT_PASSWORD or --password-file")
            }
        }
        @Sendable func psk(_ request: ControlRequest, shape: String) throws -> (PreSharedKey, PSKRequest) {
            let body = try request.decode(PSKRequest.self, shape: shape)
            guard let key = Hex.decode(body.psk), key.count == 32 else { throw ControlAPIError(.badRequest, "expected \(shape)") }
            return (PreSharedKey(key: key), body)
        }
        @Sendable func id(_ request: ControlRequest) throws -> (PSKID, text: String) {
            let shape = #"{"id": "<16 hex digits>"}"#
            let text = try request.decode(PasswordIdRequest.self, shape: shape).id
            guard let id = PSKID(hex: text) else { throw ControlAPIError(.badRequest, "expected \(shape)") }
            return (id, text)
        }

        api.add(.POST, "/v1/rotate-key") { request in
            .pending(delegate.rotateKeys(peer: try request.decode(PeerRequest.self, shape: #"{"peer": NAME}"#).peer).map { .json($0) })
        }
        api.add(.GET, "/v1/passwords") { _ in
            try requireKeyring()
            return .reply(.json(delegate.passwords()))
        }
        api.add(.POST, "/v1/password/add") { request in
            try requireKeyring()
            let (key, _) = try psk(request, shape: #"{"psk": "<64 hex digits>"}"#)
            try delegate.addPassword(key)
            return .reply(.json(["id": key.id.description]))
        }
        api.add(.POST, "/v1/password/use") { request in
            try requireKeyring()
            let (id, text) = try id(request)
            guard delegate.isUsablePassword(id) else { throw ControlAPIError(.badRequest, "no usable password with id \(text) in the keyring") }
            return .pending(delegate.usePassword(id).map { .json(["result": $0]) })
        }
        api.add(.POST, "/v1/password/retire") { request in
            try requireKeyring()
            let (id, _) = try id(request)
            try delegate.retirePassword(id)
            return .reply(.json(["result": "password \(id) retired"]))
        }
        /// The grace travels to every peer in PASSWORD_USE as a u32 of seconds.
        @Sendable func grace(_ seconds: Double?) throws -> Double {
            let grace = seconds ?? 600
            guard grace >= 0, grace <= PasswordUse.maxGraceSeconds else {
                throw ControlAPIError(.badRequest, "graceSeconds must be between 0 and \(UInt32.max) (about 136 years); got \(grace)")
            }
            return grace
        }
        api.add(.POST, "/v1/rotate-password") { request in
            try requireKeyring()
            let (key, body) = try psk(request, shape: #"{"psk": "<64 hex digits>", "graceSeconds": N}"#)
            return .pending(delegate.rotatePassword(to: key, graceSeconds: try grace(body.graceSeconds)).map { .json($0) })
        }
        api.add(.POST, "/v1/revoke") { request in
            let shape = #"{"peer": NAME, "psk": "<64 hex digits>" (absent: generated), "graceSeconds": N}"#
            let body = try request.decode(RevokeRequest.self, shape: shape)
            var key: PreSharedKey?
            if let hex = body.psk {
                guard let bytes = Hex.decode(hex), bytes.count == 32 else { throw ControlAPIError(.badRequest, "expected \(shape)") }
                key = PreSharedKey(key: bytes)
            }
            return .pending(delegate.revoke(peer: body.peer, psk: key, graceSeconds: try grace(body.graceSeconds)).map { .json($0) })
        }
        api.add(.GET, "/v1/revocations") { _ in .reply(.json(delegate.revocations())) }
    }
}
