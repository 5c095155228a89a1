// identity-pins.json on disk (IdentityPinStore.swift, Keys/README.md): created with this router's
// own pin, 0600; pins, their first sight and fields Weft does not know survive a write and a
// reload; a damaged file is refused with what to do and left as it is; refused claims are kept
// for status once each, with a count; and the router's pinCheck counts and shows them.
import Foundation
import Logging
import XCTest
import WeftControl
import WeftCrypto
import WeftMesh
import WeftWire
@testable import WeftRouter

final class IdentityPinStoreTests: XCTestCase {
    private func key(_ seed: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: seed, count: 32)) }
    private func name(_ k: IdentityKey) -> PeerName { PeerName(bytes: k.peerNameBytes) }
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func dataDir(_ pins: String? = nil) throws -> String {
        let dir = NSTemporaryDirectory() + "weft-pins-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let pins { try pins.write(toFile: "\(dir)/identity-pins.json", atomically: true, encoding: .utf8) }
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func json(_ dir: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/identity-pins.json"))) as! [String: Any]
    }

    func testANewDataDirGetsTheFileWithTheOwnPin() throws {
        let dir = try dataDir()
        let own = key(1)
        let store = try IdentityPinStore.load(dataDir: dir, own: name(own), ownKey: own.publicKey, now: now)
        XCTAssertEqual(store.pins.keys, [name(own): own.publicKey])
        XCTAssertEqual(LaunchInputs.fileMode("\(dir)/identity-pins.json").map { $0 & 0o777 }, 0o600)
        let file = try json(dir)
        XCTAssertEqual(file["format"] as? Int, 1)
        let pins = try XCTUnwrap(file["pins"] as? [[String: Any]])
        XCTAssertEqual(pins.count, 1)
        XCTAssertEqual(pins[0]["name"] as? String, name(own).description)
        XCTAssertEqual(pins[0]["identity"] as? String, Hex.encode(own.publicKey))
        XCTAssertEqual(pins[0]["source"] as? String, "this router")
        XCTAssertEqual(pins[0]["firstSeen"] as? String, "2027-01-15T08:00:00Z")
        XCTAssertFalse(store.dirty)
    }

    func testPinsAndUnknownFieldsSurviveAWriteAndAReload() throws {
        let own = key(1), peer = key(2), later = key(3)
        let text = #"{"format":1,"note":"lab","pins":[{"name":"\#(name(peer))","identity":"\#(Hex.encode(peer.publicKey))","#
            + #""firstSeen":"2026-01-01T00:00:00Z","source":"gossip from 02:00:00:00:00:01 (10.0.0.1:6783)","owner":"ops"}]}"#
        let dir = try dataDir(text)
        let store = try IdentityPinStore.load(dataDir: dir, own: name(own), ownKey: own.publicKey, now: now)
        XCTAssertEqual(store.pins.keys[name(peer)], peer.publicKey)
        XCTAssertEqual(store.check(name: name(later), key: later.publicKey, source: .link(address: "10.0.0.3:6783"), now: now),
                       .accepted(firstSight: true))
        XCTAssertTrue(store.dirty)
        try store.save()
        let again = try IdentityPinStore.load(dataDir: dir, own: name(own), ownKey: own.publicKey, now: now.addingTimeInterval(60))
        XCTAssertEqual(again.pins.keys, [name(own): own.publicKey, name(peer): peer.publicKey, name(later): later.publicKey])
        XCTAssertEqual(again.check(name: name(peer), key: peer.publicKey, source: .own, now: now), .accepted(firstSight: false))
        let file = try json(dir)
        XCTAssertEqual(file["note"] as? String, "lab")
        let pins = try XCTUnwrap(file["pins"] as? [[String: Any]])
        let kept = try XCTUnwrap(pins.first { $0["name"] as? String == name(peer).description })
        XCTAssertEqual(kept["owner"] as? String, "ops")
        XCTAssertEqual(kept["firstSeen"] as? String, "2026-01-01T00:00:00Z", "a pin's first sight never changes")
        let added = try XCTUnwrap(pins.first { $0["name"] as? String == name(later).description })
        XCTAssertEqual(added["source"] as? String, "link from 10.0.0.3:6783")
    }

    /// Loading refuses with a message containing `expected`, and the file stays byte for byte.
    private func assertRefusedAndKept(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try dataDir(text)
        let own = key(1)
        XCTAssertThrowsError(try IdentityPinStore.load(dataDir: dir, own: name(own), ownKey: own.publicKey), file: file, line: line) {
            XCTAssertTrue("\($0)".contains(expected), "\($0)", file: file, line: line)
        }
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/identity-pins.json", encoding: .utf8), text, "never overwritten", file: file, line: line)
    }

    func testDamagedFilesAreRefusedAndKept() throws {
        let peer = key(2)
        let pin = #"{"name":"\#(name(peer))","identity":"\#(Hex.encode(peer.publicKey))","firstSeen":"x","source":"y"}"#
        try assertRefusedAndKept("", "is not Weft's identity pins")
        try assertRefusedAndKept(String(#"{"format":1,"pins":[\#(pin)]}"#.prefix(50)), "is not Weft's identity pins")  // truncated
        try assertRefusedAndKept(#"{"format":1,"keys":[]}"#, "is not Weft's identity pins")
        try assertRefusedAndKept(#"{"format":2,"pins":[]}"#, "has pin format 2, but this Weft reads only format 1")
        try assertRefusedAndKept(#"{"format":1,"pins":[{"name":"\#(name(peer))","identity":"abcd","firstSeen":"x","source":"y"}]}"#,
                                 "the pin of \(name(peer)) is damaged")
        try assertRefusedAndKept(#"{"format":1,"pins":[{"name":"nope","identity":"\#(Hex.encode(peer.publicKey))","firstSeen":"x","source":"y"}]}"#,
                                 "the pin of nope is damaged")
        // Another router's key under this name.
        try assertRefusedAndKept(#"{"format":1,"pins":[{"name":"\#(name(peer))","identity":"\#(Hex.encode(key(3).publicKey))","firstSeen":"x","source":"y"}]}"#,
                                 "has a key that does not derive that name")
        try assertRefusedAndKept(#"{"format":1,"pins":[\#(pin),\#(pin)]}"#, "is pinned twice")
    }

    func testRefusedClaimsAreKeptOnceEachWithACount() throws {
        let own = key(1), peer = key(2), forger = key(9)
        let store = try IdentityPinStore.load(dataDir: try dataDir(), own: name(own), ownKey: own.publicKey, now: now)
        _ = store.check(name: name(peer), key: peer.publicKey, source: .own, now: now)
        let source = PinSource.gossip(from: name(own), address: "10.0.0.1:6783")
        XCTAssertEqual(store.check(name: name(peer), key: forger.publicKey, source: source, now: now),
                       .refused(.nameNotDerived, firstReport: true))
        XCTAssertEqual(store.check(name: name(peer), key: forger.publicKey, source: .link(address: "x"), now: now.addingTimeInterval(5)),
                       .refused(.nameNotDerived, firstReport: false))
        XCTAssertEqual(store.conflicts, [PinConflictStatus(
            name: name(peer).description, reason: "nameNotDerived", pinnedIdentity: peer.fingerprint, offeredIdentity: forger.fingerprint,
            source: "gossip from \(name(own)) (10.0.0.1:6783)", firstSeen: "2027-01-15T08:00:00Z", lastSeen: "2027-01-15T08:00:05Z", count: 2)])
        XCTAssertEqual(store.pins.keys[name(peer)], peer.publicKey, "the pin stays")
    }

    func testRouterPinCheckCountsAndShowsRefusals() throws {
        let own = key(1), peer = key(2)
        let config = RouterConfig(name: name(own), nickname: "r1", port: 6783, trustedSubnets: [], psk: nil, socketPath: "/nonexistent",
                                  dataDir: try dataDir(), mtu: nil, fastdpEnabled: false, initialPeers: [], identity: own)
        let router = Router(config: config, keyring: nil, logger: Logger(label: "test"))
        defer {
            try? router.loop.submit { router.shutdown(because: "test") }.wait()
            Thread.sleep(forTimeInterval: 0.3)
            try? router.group.syncShutdownGracefully()
        }
        try router.loop.submit {
            try router.loadPins()
            XCTAssertEqual(router.pinCheck(name: self.name(peer), key: peer.publicKey, source: .link(address: "10.0.0.2:6783")),
                           .accepted(firstSight: true))
            XCTAssertEqual(router.pinCheck(name: self.name(peer), key: own.publicKey, source: .link(address: "10.0.0.9:6783")),
                           .refused(.nameNotDerived, firstReport: true))
            XCTAssertEqual(router.metrics.identityRefusals, ["nameNotDerived link": 1])
            // What the link hears: REFUSE 11 for a key that does not derive the name. A pinned
            // name offered another key that derives it (a 2^46 search) or a revoked key get 12 and 13.
            XCTAssertEqual(router.pinRefusal(name: self.name(peer), key: own.publicKey, address: "10.0.0.9:6783")?.code, .identityMismatch)
            XCTAssertNil(router.pinRefusal(name: self.name(peer), key: peer.publicKey, address: "10.0.0.2:6783"))
            router.savePinsIfChanged()
            let status = router.status()
            XCTAssertEqual(status.pinnedIdentities, 2)
            XCTAssertEqual(status.pinConflicts.map(\.source), ["link from 10.0.0.9:6783"])
            XCTAssertEqual(status.pinConflicts.first?.offeredIdentity, own.fingerprint)
        }.wait()
        let saved = try IdentityPinStore.load(dataDir: config.dataDir, own: name(own), ownKey: own.publicKey)
        XCTAssertEqual(saved.pins.keys[name(peer)], peer.publicKey, "the tick's save wrote the first sight")
    }

    func testLinkRefusalsNameTheKeysAndTheCode() {
        let peer = key(2), other = key(3)
        let pinned = IdentityPinStore.refuse(.otherKey(pinned: peer.publicKey), name: name(peer), key: other.publicKey)
        XCTAssertEqual(pinned.code, .identityPinned)
        XCTAssertTrue(pinned.text.contains(peer.fingerprint) && pinned.text.contains(other.fingerprint), pinned.text)
        let revoked = IdentityPinStore.refuse(.revoked, name: name(peer), key: peer.publicKey)
        XCTAssertEqual(revoked.code, .revoked)
        XCTAssertTrue(revoked.text.hasPrefix("revoked: identity \(peer.fingerprint)"), revoked.text)
        XCTAssertLessThanOrEqual(pinned.text.utf8.count, Refuse.maxTextBytes, "the text goes on the wire whole")
    }
}
