// The control API's request router in memory: routing, 404/405, the one error shape, malformed
// bodies, and the endpoint table answering through a delegate that holds its state in memory.
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import WeftCrypto
import WeftTestSupport
import NIOHTTP1
import XCTest
@testable import WeftControl

final class ControlRequestRouterTests: XCTestCase {
    func reply(_ router: ControlRequestRouter, _ method: HTTPMethod, _ uri: String, _ body: String = "") -> ControlReply {
        guard case .reply(let reply) = router.answer(ControlRequest(method: method, uri: uri, body: Array(body.utf8))) else {
            XCTFail("\(method) \(uri) did not answer at once")
            return ControlReply(status: .imATeapot, body: [])
        }
        return reply
    }

    func errorText(_ reply: ControlReply) -> String? {
        (try? JSONDecoder().decode(ControlError.self, from: Data(reply.body)))?.error
    }

    func table() -> ControlRequestRouter {
        var router = ControlRequestRouter()
        router.add(.GET, "/v1/thing") { _ in .reply(.json(["result": "got"])) }
        router.add(.POST, "/v1/thing") { request in
            .reply(.json(["result": try request.decode(AddressRequest.self, shape: #"{"address": A}"#).address]))
        }
        router.add(.POST, "/v1/fails") { _ in throw ControlAPIError(.conflict, "cannot now") }
        router.add(.POST, "/v1/throws") { _ in throw CocoaError(.fileNoSuchFile) }
        return router
    }

    func testRoutesByMethodAndPathIgnoringTheQuery() throws {
        let got = reply(table(), .GET, "/v1/thing?verbose=1")
        XCTAssertEqual(got.status, .ok)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(got.body)), ["result": "got"])
        let posted = reply(table(), .POST, "/v1/thing", #"{"address": "a:1"}"#)
        XCTAssertEqual(posted.status, .ok)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(posted.body)), ["result": "a:1"])
        XCTAssertEqual(posted.body.last, UInt8(ascii: "\n"), "bodies end in a newline for the CLI's --json")
    }

    func testUnknownPathIs404AndKnownPathWithOtherMethodIs405() {
        let missing = reply(table(), .GET, "/v1/nothing")
        XCTAssertEqual(missing.status, .notFound)
        XCTAssertEqual(errorText(missing), "no such endpoint: GET /v1/nothing")
        let wrong = reply(table(), .DELETE, "/v1/thing")
        XCTAssertEqual(wrong.status, .methodNotAllowed)
        XCTAssertEqual(errorText(wrong), "DELETE is not allowed on /v1/thing")
    }

    func testMalformedOrMissingBodyIs400NamingTheExpectedShape() {
        for body in ["", "{", #"{"address": 7}"#, "[]"] {
            let got = reply(table(), .POST, "/v1/thing", body)
            XCTAssertEqual(got.status, .badRequest, body)
            XCTAssertEqual(errorText(got), #"expected {"address": A}"#, body)
        }
    }

    func testThrownErrorsKeepTheirStatusOrAre400() {
        let refused = reply(table(), .POST, "/v1/fails")
        XCTAssertEqual(refused.status, .conflict)
        XCTAssertEqual(errorText(refused), "cannot now")
        XCTAssertEqual(reply(table(), .POST, "/v1/throws").status, .badRequest)
    }

    func testPendingAnswerFailingWithControlAPIErrorKeepsItsStatus() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        var router = ControlRequestRouter()
        router.add(.POST, "/v1/later") { _ in .pending(loop.makeFailedFuture(ControlAPIError(.notFound, "no such peer"))) }
        router.add(.POST, "/v1/broken") { _ in .pending(loop.makeFailedFuture(CocoaError(.fileNoSuchFile))) }
        let later = try router.respond(to: ControlRequest(method: .POST, uri: "/v1/later", body: []), on: loop).wait()
        XCTAssertEqual(later.status, .notFound)
        XCTAssertEqual(errorText(later), "no such peer")
        XCTAssertEqual(try router.respond(to: ControlRequest(method: .POST, uri: "/v1/broken", body: []), on: loop).wait().status,
                       .internalServerError)
    }

    // MARK: the endpoint table

    func testEveryEndpointOfTheControlAPIIsInTheOneTable() {
        let endpoints = Set(ControlRequestRouter.controlAPI(InMemoryRouter()).endpoints.map { "\($0.method) \($0.path)" })
        XCTAssertEqual(endpoints, [
            "GET /v1/status", "GET /v1/status/peers", "GET /v1/status/connections", "GET /v1/status/topology", "POST /v1/connect", "POST /v1/forget",
            "POST /v1/stop", "GET /v1/workloads", "POST /v1/attach", "POST /v1/detach", "POST /v1/expose", "POST /v1/hide",
            "POST /v1/rotate-key", "GET /v1/passwords", "POST /v1/password/add", "POST /v1/password/use",
            "POST /v1/password/retire", "POST /v1/rotate-password", "GET /v1/ipam", "POST /v1/rmpeer", "POST /v1/revoke",
            "GET /v1/revocations",
        ])
    }

    func testConnectAndForgetCheckTheAddressAndWordTheAnswer() throws {
        let delegate = InMemoryRouter()
        let api = ControlRequestRouter.controlAPI(delegate)
        let bad = reply(api, .POST, "/v1/connect", #"{"address": "host:notaport"}"#)
        XCTAssertEqual(bad.status, .badRequest)
        XCTAssertEqual(errorText(bad), "'host:notaport' has no valid port", "the delegate's reason, as it gave it")
        XCTAssertEqual(reply(api, .POST, "/v1/connect", #"{"address": "10.0.0.2"}"#).status, .ok)
        XCTAssertEqual(delegate.targets, ["10.0.0.2"])
        let forgot = reply(api, .POST, "/v1/forget", #"{"address": "10.0.0.9"}"#)
        XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(forgot.body)),
                       ["result": "10.0.0.9 was not a target; it will not be learned from gossip"])
    }

    func testWorkloadAndPasswordEndpointsSayWhatIsMissing() {
        let api = ControlRequestRouter.controlAPI(InMemoryRouter())
        let noHost = reply(api, .GET, "/v1/workloads")
        XCTAssertEqual(noHost.status, .serviceUnavailable)
        XCTAssertEqual(errorText(noHost), "the router has no host network")
        let noKeyring = reply(api, .POST, "/v1/password/add", #"{"psk": "00"}"#)
        XCTAssertEqual(noKeyring.status, .conflict)
        XCTAssertEqual(errorText(noKeyring), "this router runs without a password; launch it with WEFT_PASSWORD or --password-file")
    }

    /// The fuzz input (Tests/Fuzz/regressions/control) that asked for a grace of 1e10 s: the
    /// router would have trapped putting it into PASSWORD_USE's u32. Refused with 400 here; the
    /// largest grace the message carries still passes.
    func testRotatePasswordRefusesAGraceThePasswordUseMessageCannotCarry() throws {
        let router = InMemoryRouter()
        router.hasKeyring = true
        let api = ControlRequestRouter.controlAPI(router)
        let body = String(decoding: try FuzzRegressions.input("control", "grace-over-u32").dropFirst(), as: UTF8.self)
        let refused = reply(api, .POST, "/v1/rotate-password", body)
        XCTAssertEqual(refused.status, .badRequest)
        XCTAssertEqual(errorText(refused), "graceSeconds must be between 0 and 4294967295 (about 136 years); got 10000000000.0")
        let negative = reply(api, .POST, "/v1/rotate-password", "{\"psk\": \"\(String(repeating: "ab", count: 32))\", \"graceSeconds\": -1}")
        XCTAssertEqual(negative.status, .badRequest)
        _ = api.answer(ControlRequest(method: .POST, uri: "/v1/rotate-password",
                                      body: Array("{\"psk\": \"\(String(repeating: "ab", count: 32))\", \"graceSeconds\": 4294967295}".utf8)))
        XCTAssertEqual(router.graces, [4294967295])
    }
}

/// The router's state the endpoints read, held in memory: no host network, no keyring.
final class InMemoryRouter: ControlAPIDelegate, @unchecked Sendable {
    var targets: [String] = []
    let loop = EmbeddedEventLoop()

    func status() -> RouterStatus {
        RouterStatus(name: "02:00:00:00:00:01", nickname: "a", port: 6783, encryption: false, pskId: nil, trustedSubnets: [],
                     protocolVersion: 1, peers: 1, connections: [:], targets: targets, uptimeSeconds: 0,
                     fastdp: FastdpStatus(available: false, reason: "off", flows: 0), overlayMTU: 1376)
    }
    func peerStatus() -> [PeerStatus] { [] }
    func connectionStatus() -> [ConnectionStatus] { [] }
    func topologyStatus() -> TopologyStatus { TopologyStatus(peers: [], links: []) }
    /// HOST or HOST:PORT with a numeric port; the router's own rule is WeftRouter's PeerAddress.
    func addressProblem(_ address: String) -> String? {
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 1 || (parts.count == 2 && Int(parts[1]) != nil) ? nil : "'\(address)' has no valid port"
    }
    func addTarget(_ address: String) { targets.append(address) }
    func forgetTarget(_ address: String) -> Bool { targets.contains(address) }
    func stop() {}
    var workloadHost: WorkloadHost? { nil }
    var addressHost: AddressHost? { nil }
    func rotateKeys(peer: String?) -> EventLoopFuture<[RotateKeyResult]> { loop.makeSucceededFuture([]) }
    var hasKeyring = false
    /// The grace of each rotate-password that reached the router.
    var graces: [Double] = []
    func passwords() -> [PasswordInfo] { [] }
    func addPassword(_ psk: PreSharedKey) throws {}
    func isUsablePassword(_ id: PSKID) -> Bool { false }
    func usePassword(_ id: PSKID) -> EventLoopFuture<String> { loop.makeSucceededFuture("password \(id) is active") }
    func retirePassword(_ id: PSKID) throws {}
    func rotatePassword(to psk: PreSharedKey, graceSeconds: Double) -> EventLoopFuture<RotatePasswordResult> {
        graces.append(graceSeconds)
        return loop.makeFailedFuture(ControlAPIError(.conflict, "no keyring"))
    }

    func revoke(peer: String, psk: PreSharedKey?, graceSeconds: Double) -> EventLoopFuture<RevokeResult> {
        graces.append(graceSeconds)
        return loop.makeFailedFuture(ControlAPIError(.notFound, "no peer \(peer)"))
    }

    func revocations() -> [RevocationStatus] { [] }
}
