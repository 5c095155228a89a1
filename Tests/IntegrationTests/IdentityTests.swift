// A router's identity key end to end (docs/protocol.md §3.10): a real `weft launch` creates
// <data-dir>/identity.key, shows its fingerprint, keeps it across a restart, never logs the private
// key, and refuses to start on a file it must not use, leaving the file as it was; the link's
// handshake authenticates each peer's key, which status shows; a process that knows the password
// but claims another router's name with its own key is refused and that router stays connected.
import Foundation
import XCTest
import WeftControl
import WeftCrypto
import WeftLink
import WeftNetlink
import WeftWire
@testable import WeftRouter

final class IdentityTests: XCTestCase {
    func testIdentitySurvivesRestartAndBadFileIsRefused() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let keyPath = net.host(1).dataDir + "/identity.key"
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? net.status(1)) != nil })
        let fingerprint = try XCTUnwrap(try net.status(1).identity)
        let key = try IdentityKey(fileBytes: [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: keyPath))))
        XCTAssertEqual(key.fingerprint, fingerprint)
        XCTAssertEqual(LaunchInputs.fileMode(keyPath).map { $0 & 0o777 }, 0o600)
        XCTAssertEqual(try net.peers(1).first { $0.isSelf }?.identity, fingerprint)
        let text = try net.cli(1, ["status"]).output
        XCTAssertTrue(text.contains("Identity: \(fingerprint)"), text)

        net.kill(1, signal: SIGTERM)
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? net.status(1)) != nil })
        XCTAssertEqual(try net.status(1).identity, fingerprint, "same identity after a restart")
        XCTAssertFalse(net.log(1).contains(Hex.encode(key.privateKey)), "the private key is never logged")
        net.kill(1, signal: SIGTERM)

        // Readable by others: refused with what to do, exit status 2, the file untouched.
        XCTAssertEqual(chmod(keyPath, 0o644), 0)
        let before = FileManager.default.contents(atPath: keyPath)
        let refused = try net.launch(1)
        refused.waitUntilExit()
        XCTAssertEqual(refused.terminationStatus, 2)
        XCTAssertTrue(net.log(1).contains("chmod 600"), net.log(1))
        XCTAssertEqual(FileManager.default.contents(atPath: keyPath), before)
        XCTAssertEqual(LaunchInputs.fileMode(keyPath).map { $0 & 0o777 }, 0o644)
    }

    /// Two routers under a password: each one's connection and peer entry for the other carry
    /// `identity`, the fingerprint the other shows as its own (the key its handshake proved).
    func testEachRouterShowsThePeersAuthenticatedIdentity() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { (try? net.connection(1, to: 2))?.state == .established
                && (try? net.connection(2, to: 1))?.state == .established },
                      "no link within 15 s: \(String(describing: try? net.connections(1)))\n\(net.log(1))")
        for (index, peer) in [(1, 2), (2, 1)] {
            let fingerprint = try XCTUnwrap(try net.status(peer).identity)
            let json = try net.cli(index, ["status", "connections", "--json"])
            XCTAssertEqual(json.status, 0, json.output)
            let connections = try JSONDecoder().decode([ConnectionStatus].self, from: Data(json.output.utf8))
            let link = try XCTUnwrap(connections.first { $0.state == .established }, json.output)
            XCTAssertEqual(link.identity, fingerprint, "router \(index)'s connection to \(peer): \(json.output)")
            let peers = try net.peers(index)
            XCTAssertEqual(peers.first { !$0.isSelf }?.identity, fingerprint, "router \(index)'s peer entry for \(peer)")
            XCTAssertNotEqual(fingerprint, try net.status(index).identity)
        }
    }

    /// Someone with the password and a key of its own dials router 1 claiming router 2's name (a
    /// real v2 handshake from host 3, driven by the link state machine over a TCP socket): router
    /// 1 refuses it with REFUSE 11, and its link to the real router 2 stays as it was.
    func testAnImpostorOfAPeersNameIsRefusedAndThePeerStaysConnected() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { (try? net.connection(1, to: 2))?.state == .established },
                      "no link within 15 s: \(String(describing: try? net.connections(1)))")
        let before = try XCTUnwrap(try net.connection(1, to: 2))
        let victim = try XCTUnwrap(PeerName(try XCTUnwrap(try net.peers(2).first { $0.isSelf }?.name)))

        let psk = try PreSharedKey.derive(password: "correct horse battery")
        let impostor = IdentityKey.generate()
        let hello = Hello(name: victim, nickname: "impostor", uid: 99, connectionId: 7, gossipPort: 6783, sleevePort: 6783, shortId: 1,
                          trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
        let namespace = try NetworkNamespace.open(name: net.host(3).namespace)
        defer { close(namespace) }
        let outcome = try NetworkNamespace.perform(inNamespaceFd: namespace) {
            try Self.dial(net.host(1).address, port: 6783, hello: hello, psk: psk, identity: impostor)
        }
        XCTAssertEqual(outcome.refusal, .identityMismatch, "the impostor's link ended with \(outcome)")
        XCTAssertTrue(outcome.reason.contains("does not belong to its identity key"), outcome.reason)

        XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(1).contains("identity mismatch") }, "router 1 does not log the refusal")
        sleep(2)
        let after = try XCTUnwrap(try net.connection(1, to: 2))
        XCTAssertEqual(after.state, .established)
        XCTAssertEqual(after.connectionId, before.connectionId, "the real router 2's link was replaced")
        XCTAssertEqual(after.since, before.since)
        XCTAssertEqual(try net.connection(2, to: 1)?.state, .established)
    }

    /// One dial with the state machine as the initiator over a blocking socket, until the link
    /// closes (or 10 s pass): how it ended.
    private static func dial(_ address: String, port: UInt16, hello: Hello, psk: PreSharedKey, identity: IdentityKey) throws -> (reason: String, refusal: RefuseCode?) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ShellError(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &sin.sin_addr) == 1 else { throw ShellError(description: "bad address \(address)") }
        let connected = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ShellError(description: "connect to \(address):\(port): errno \(errno)") }
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        let keyring: LinkKeyring = { $0 == psk.id ? psk : nil }
        var machine = LinkStateMachine(initiator: true, localHello: hello, localPSK: psk, identity: identity, now: now())
        var pending = machine.start(now: now())
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while !pending.isEmpty {
                let action = pending.removeFirst()
                switch action {
                case .write(let bytes):
                    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                case .authenticate:
                    pending += machine.admit(nil, now: now(), keyring: keyring)
                case .deliver:
                    pending += machine.resume(now: now(), keyring: keyring)
                case .close(let reason, let refusal):
                    return (reason, refusal)
                default:
                    break
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return ("the connection ended without a refusal (recv \(n), errno \(errno))", nil) }
            pending += machine.receive(Array(buffer[..<n]), now: now(), keyring: keyring)
        }
    }
}
