// The router as the control API's delegate (ControlEndpoints): each call arrives on the router's
// event loop and reads or changes the router's state. A separate type so the public protocol's
// requirements need not make the router's internals public.
import Foundation
import NIOCore
// Re-exported so code that imports WeftRouter alone (the integration tests) still sees the
// control API's types and the host's.
@_exported import WeftControl
@_exported import WeftHost
import WeftCrypto

final class RouterControlDelegate: ControlAPIDelegate, @unchecked Sendable {  // confined to router.loop
    let router: Router

    init(router: Router) { self.router = router }

    func status() -> RouterStatus { router.status() }
    func peerStatus() -> [PeerStatus] { router.peerStatus() }
    func connectionStatus() -> [ConnectionStatus] { router.connectionStatus() }
    func topologyStatus() -> TopologyStatus { router.topologyStatus() }

    func addressProblem(_ address: String) -> String? { PeerAddress.problem(address) }

    func addTarget(_ address: String) { router.addTarget(address, permanent: true) }
    func forgetTarget(_ address: String) -> Bool { router.forgetTarget(address) }

    func stop() {
        router.loop.scheduleTask(in: .milliseconds(50)) { [router] in router.shutdown(because: "weft stop") }
    }

    var workloadHost: WorkloadHost? { router.hostNetwork }

    var addressHost: AddressHost? { router.ipam == nil ? nil : RouterAddressHost(router: router) }

    func rotateKeys(peer: String?) -> EventLoopFuture<[RotateKeyResult]> { router.rotateKeys(peer: peer) }

    var hasKeyring: Bool { router.keyring != nil }

    func passwords() -> [PasswordInfo] { router.keyring?.list ?? [] }

    func addPassword(_ psk: PreSharedKey) throws {
        guard let keyring = router.keyring else { return }
        if keyring.state(of: psk.id) == .retired { throw ControlAPIError(.badRequest, "password \(psk.id) was retired; choose a new one") }
        keyring.add(psk, state: .accepted)
        router.saveKeyring()
    }

    func isUsablePassword(_ id: PSKID) -> Bool { router.keyring?.accepted(id) != nil }

    func usePassword(_ id: PSKID) -> EventLoopFuture<String> { router.usePassword(id) }

    func retirePassword(_ id: PSKID) throws {
        try router.keyring?.retire(id)
        router.saveKeyring()
        router.closeLinks(using: [id])
    }

    func rotatePassword(to psk: PreSharedKey, graceSeconds: Double) -> EventLoopFuture<RotatePasswordResult> {
        router.rotatePassword(to: psk, grace: graceSeconds)
    }

    func revoke(peer: String, psk: PreSharedKey?, graceSeconds: Double) -> EventLoopFuture<RevokeResult> {
        router.revoke(peer, psk: psk, grace: graceSeconds)
    }

    func revocations() -> [RevocationStatus] { router.revocationList() }
}
