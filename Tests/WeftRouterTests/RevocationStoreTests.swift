// revocations.json on disk (RevocationStore.swift, Keys/README.md): no file until a revocation,
// then 0600 with every record; records and fields Weft does not know survive a write and a reload;
// a damaged file is refused with what to do and left as it is. The router feeds the set's keys to
// its pins (at load and on every merge), and `weft revoke` refuses its own router and unknown peers.
import Foundation
import Logging
import XCTest
import WeftCrypto
import WeftMesh
import WeftWire
@testable import WeftRouter

final class RevocationStoreTests: XCTestCase {
    private func record(_ seed: UInt8, at: UInt64 = 1_800_000_000) -> Revocation {
        let key = try! IdentityKey(privateKey: [UInt8](repeating: seed, count: 32))
        return Revocation(key: key.publicKey, name: PeerName(bytes: key.peerNameBytes), nickname: "host\(seed)",
                          revokedBy: PeerName("02:00:00:00:00:01")!, at: at)
    }

    private func dataDir(_ file: String? = nil) throws -> String {
        let dir = NSTemporaryDirectory() + "weft-revocations-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let file { try file.write(toFile: "\(dir)/revocations.json", atomically: true, encoding: .utf8) }
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testRecordsSurviveAWriteAndAReloadWithMode0600() throws {
        let dir = try dataDir()
        let store = try RevocationStore.load(dataDir: dir)
        XCTAssertEqual(store.set.count, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/revocations.json"), "no file before a revocation")
        let a = record(4), b = record(5, at: 1_800_000_100)
        XCTAssertEqual(store.merge([a, b]), [a, b])
        try store.save()
        XCTAssertEqual(store.merge([a]), [], "a record held changes nothing")
        XCTAssertEqual(LaunchInputs.fileMode("\(dir)/revocations.json").map { $0 & 0o777 }, 0o600)
        let again = try RevocationStore.load(dataDir: dir)
        XCTAssertEqual(again.set, store.set)
        let text = try String(contentsOfFile: "\(dir)/revocations.json", encoding: .utf8)
        XCTAssertTrue(text.contains(#""at" : "2027-01-15T08:00:00Z""#), text)
        XCTAssertTrue(text.contains(#""identity" : "\#(Hex.encode(a.key))""#), text)
        XCTAssertTrue(text.contains(#""revokedBy" : "02:00:00:00:00:01""#), text)
    }

    func testUnknownFieldsAreKept() throws {
        let a = record(4)
        let text = #"{"format":1,"note":"lab","revocations":[{"identity":"\#(Hex.encode(a.key))","name":"\#(a.name)","#
            + #""nickname":"host4","revokedBy":"02:00:00:00:00:01","at":"2027-01-15T08:00:00Z","ticket":"INC-1"}]}"#
        let dir = try dataDir(text)
        let store = try RevocationStore.load(dataDir: dir)
        XCTAssertEqual(store.set.sorted, [a])
        _ = store.merge([record(5)])
        try store.save()
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/revocations.json"))) as! [String: Any]
        XCTAssertEqual(json["note"] as? String, "lab")
        let records = try XCTUnwrap(json["revocations"] as? [[String: Any]])
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records.first { $0["name"] as? String == a.name.description }?["ticket"] as? String, "INC-1")
    }

    func testDamagedFilesAreRefusedAndKept() throws {
        let a = record(4)
        for text in ["not json", #"{"format":2,"revocations":[]}"#,
                     #"{"format":1,"revocations":[{"identity":"abcd","name":"\#(a.name)","nickname":"","revokedBy":"02:00:00:00:00:01","at":"2027-01-15T08:00:00Z"}]}"#,
                     #"{"format":1,"revocations":[{"identity":"\#(Hex.encode(a.key))","name":"\#(a.name)","nickname":"","revokedBy":"02:00:00:00:00:01","at":"yesterday"}]}"#] {
            let dir = try dataDir(text)
            XCTAssertThrowsError(try RevocationStore.load(dataDir: dir), text) { error in
                XCTAssertTrue("\(error)".contains("\(dir)/revocations.json"), "\(error)")
            }
            XCTAssertEqual(try String(contentsOfFile: "\(dir)/revocations.json", encoding: .utf8), text, "the damaged file is kept")
        }
    }

    func testTheRouterFeedsThePinsFromTheSetAtLoadAndOnMerge() throws {
        let own = try IdentityKey(privateKey: [UInt8](repeating: 1, count: 32))
        let first = record(4), second = record(5)
        let dir = try dataDir()
        let store = try RevocationStore.load(dataDir: dir)
        _ = store.merge([first])
        try store.save()
        let config = RouterConfig(name: PeerName(bytes: own.peerNameBytes), nickname: "r1", port: 6783, trustedSubnets: [], psk: nil,
                                  socketPath: "/nonexistent", dataDir: dir, mtu: nil, fastdpEnabled: false, initialPeers: [], identity: own)
        let router = Router(config: config, keyring: nil, logger: Logger(label: "test"))
        defer {
            try? router.loop.submit { router.shutdown(because: "test") }.wait()
            Thread.sleep(forTimeInterval: 0.3)
            try? router.group.syncShutdownGracefully()
        }
        try router.loop.submit {
            try router.loadPins()
            try router.loadRevocations()
            XCTAssertEqual(router.pinRefusal(name: first.name, key: first.key, address: "10.0.0.4:6783")?.code, .revoked, "loaded from the file")
            XCTAssertNil(router.pinRefusal(name: second.name, key: second.key, address: "10.0.0.5:6783"))
            router.mergeRevocations([second], from: nil)
            XCTAssertEqual(router.pinRefusal(name: second.name, key: second.key, address: "10.0.0.5:6783")?.code, .revoked, "merged")
            XCTAssertEqual(router.revocationList().map(\.name), [first.name.description, second.name.description])
        }.wait()
        XCTAssertEqual(try RevocationStore.load(dataDir: dir).set.count, 2, "the merge was saved")
        for (peer, status) in [(config.name.description, 409), ("no-such-host", 404)] {
            let outcome = try router.loop.submit { router.revoke(peer, psk: nil, grace: 1) }.wait()
            XCTAssertThrowsError(try outcome.wait(), peer) { error in
                XCTAssertEqual((error as? ControlAPIError)?.status.code, UInt(status), "\(error)")
            }
        }
    }
}
