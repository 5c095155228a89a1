// The merge rule with identity keys (docs/protocol.md §4, §3.10): gossip screened by the pins,
// with real keys and the real name derivation. An entry whose key does not derive its name, or
// that offers a pinned name another key, is ignored (the held entry stays) and goes no further.
import XCTest
import WeftCrypto
import WeftWire
@testable import WeftMesh

final class IdentityGossipTests: XCTestCase {
    private func key(_ seed: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: seed, count: 32)) }
    private func name(_ k: IdentityKey) -> PeerName { PeerName(bytes: k.peerNameBytes) }

    private func entry(_ k: IdentityKey, uid: UInt64 = 1, version: UInt64 = 1, nickname: String = "n", identity: [UInt8]? = nil,
                       links: [PeerName] = []) -> PeerEntry {
        PeerEntry(name: name(k), nickname: nickname, uid: uid, version: version, shortId: Topology.initialShortId(for: name(k)),
                  connections: links.map { ConnectionEntry(remote: $0, address: "10.0.0.1:6783", established: true, outbound: true) },
                  identity: identity ?? k.publicKey)
    }

    /// Router A, its pins (its own key pinned), linked to B and C.
    private struct Fixture {
        var gossip: Gossip
        var pins = IdentityPins()
        /// What the real derivation would say; replaced to stand for an impostor who found a key
        /// deriving someone else's name (about 2^46 tries, docs/protocol.md §1).
        var derive: ([UInt8]) -> PeerName = { PeerName(bytes: IdentityKey.peerNameBytes(publicKey: $0)) }
        var refusals: [PinCheck] = []

        mutating func receive(_ entries: [PeerEntry], from: PeerName) throws -> GossipEffects {
            var pins = self.pins
            var refusals = self.refusals
            let derive = self.derive
            let effects = try gossip.receive(from: from, type: .gossip, payload: TopologyUpdate(peers: entries).encode(), now: 1) { entry in
                let check = pins.check(name: entry.name, key: entry.identity) { derive(entry.identity) }
                if !check.isAccepted { refusals.append(check) }
                return check.isAccepted
            }
            self.pins = pins
            self.refusals = refusals
            return effects
        }
    }

    private func fixture() -> (Fixture, a: IdentityKey, b: IdentityKey, c: IdentityKey) {
        let a = key(1), b = key(2), c = key(3)
        var f = Fixture(gossip: Gossip(own: entry(a, links: [name(b), name(c)])))
        _ = f.pins.check(name: name(a), key: a.publicKey) { self.name(a) }
        _ = f.gossip.linkUp(name(b), now: 0)
        _ = f.gossip.linkUp(name(c), now: 0)
        return (f, a, b, c)
    }

    func testAnEntryWithItsKeyIsPinnedAndMerged() throws {
        var (f, a, b, c) = fixture()
        let effects = try f.receive([entry(b, links: [name(a)]), entry(c, links: [name(a)])], from: name(b))
        XCTAssertTrue(effects.topologyChanged)
        XCTAssertEqual(f.gossip.topology.peers[name(c)]?.identity, c.publicKey)
        XCTAssertEqual(f.pins.keys[name(c)], c.publicKey, "pinned on first sight")
        XCTAssertEqual(f.pins.keys[name(b)], b.publicKey)
        XCTAssertTrue(f.refusals.isEmpty)
    }

    func testAnEntryWhoseKeyDoesNotDeriveItsNameIsIgnoredAndNotForwarded() throws {
        var (f, a, b, c) = fixture()
        _ = try f.receive([entry(b, links: [name(a)]), entry(c, links: [name(a)])], from: name(b))
        // C's name with another router's key (any password holder can gossip this).
        let forged = entry(c, version: 5, nickname: "forged", identity: key(9).publicKey, links: [name(a)])
        let effects = try f.receive([forged], from: name(b))
        XCTAssertFalse(effects.topologyChanged)
        XCTAssertTrue(effects.sends.isEmpty, "a refused entry goes no further")
        XCTAssertEqual(f.gossip.topology.peers[name(c)]?.version, 1, "the held entry stays")
        XCTAssertEqual(f.gossip.topology.peers[name(c)]?.identity, c.publicKey)
        XCTAssertEqual(f.refusals, [.refused(.nameNotDerived, firstReport: true)])
        // The same again, and with yet another key: refused, reported once for the name.
        _ = try f.receive([entry(c, version: 6, identity: key(9).publicKey)], from: name(b))
        _ = try f.receive([entry(c, version: 7, identity: key(10).publicKey)], from: name(b))
        XCTAssertEqual(f.refusals.last, .refused(.nameNotDerived, firstReport: false))
        // A name nobody has seen, with a key that is not its: not pinned, not merged.
        var unseen = entry(key(11))
        unseen.name = PeerName("02:00:00:00:00:77")!
        _ = try f.receive([unseen], from: name(b))
        XCTAssertNil(f.gossip.topology.peers[unseen.name])
        XCTAssertNil(f.pins.keys[unseen.name])
        // The zero key of a router without one is refused the same way.
        _ = try f.receive([entry(key(12), identity: PeerEntry.noIdentity)], from: name(b))
        XCTAssertNil(f.gossip.topology.peers[name(key(12))])
        // The real C's next version is still taken.
        _ = try f.receive([entry(c, version: 8, nickname: "real", links: [name(a)])], from: name(c))
        XCTAssertEqual(f.gossip.topology.peers[name(c)]?.nickname, "real")
    }

    func testAPinnedNameOfferedAnotherKeyIsIgnored() throws {
        var (f, a, b, c) = fixture()
        _ = try f.receive([entry(b, links: [name(a)]), entry(c, links: [name(a)])], from: name(b))
        // An impostor who found a key that derives C's name.
        let impostor = key(20)
        f.derive = { $0 == impostor.publicKey ? self.name(c) : PeerName(bytes: IdentityKey.peerNameBytes(publicKey: $0)) }
        let claim = entry(c, uid: 99, version: 50, nickname: "impostor", identity: impostor.publicKey, links: [name(a)])
        let effects = try f.receive([claim], from: name(b))
        XCTAssertFalse(effects.topologyChanged)
        XCTAssertTrue(effects.sends.isEmpty)
        XCTAssertEqual(f.gossip.topology.peers[name(c)]?.nickname, "n", "the pinned router's entry stays")
        XCTAssertEqual(f.refusals, [.refused(.otherKey(pinned: c.publicKey), firstReport: true)])
        XCTAssertEqual(f.pins.keys[name(c)], c.publicKey)
        // Our own name with another key: refused, and our version is not pushed above it.
        f.derive = { $0 == impostor.publicKey ? self.name(a) : PeerName(bytes: IdentityKey.peerNameBytes(publicKey: $0)) }
        let ownVersion = f.gossip.topology.own.version
        _ = try f.receive([entry(a, uid: 77, version: 40, identity: impostor.publicKey)], from: name(b))
        XCTAssertEqual(f.gossip.topology.own.version, ownVersion)
        XCTAssertEqual(f.refusals.last, .refused(.otherKey(pinned: a.publicKey), firstReport: true))
        // An earlier incarnation of this router (same key, other uid) still moves our version on.
        _ = try f.receive([entry(a, uid: 78, version: 40)], from: name(b))
        XCTAssertEqual(f.gossip.topology.own.version, 41)
    }

    func testEntriesAlreadyHeldAreNotScreenedAgain() throws {
        var (f, a, b, _) = fixture()
        let held = entry(b, links: [name(a)])
        _ = try f.receive([held], from: name(b))
        var calls = 0
        _ = try f.gossip.receive(from: name(b), type: .gossip, payload: TopologyUpdate(peers: [held]).encode(), now: 2) { _ in
            calls += 1
            return false
        }
        XCTAssertEqual(calls, 0, "an entry that changes nothing costs no check")
        XCTAssertNotNil(f.gossip.topology.peers[name(b)])
    }
}
