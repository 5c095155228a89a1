// Fuzz targets of the gossip link's codecs (WeftWire/Link.swift, RekeyMessages.swift,
// Topology.swift, GossipDigest.swift, Revocation.swift), the topology merge
// (WeftMesh/Topology.swift) and the revocation set's merge (WeftMesh/RevocationSet.swift).
import WeftMesh
import WeftWire

let sampleHello = Hello(name: PeerName(bytes: [0x02, 0, 0, 0, 0, 1]), nickname: "host-1", uid: 7, connectionId: 0x100,
                        gossipPort: 6783, sleevePort: 6783, shortId: 1, trustsRemote: true, fastdpCapable: true, overlays: 1, ciphers: 1)

func samplePeerName(_ n: Int) -> PeerName { PeerName(bytes: [0x02, 0, 0, 0, 0, UInt8(n)]) }

func sampleConnection(from n: Int, to m: Int) -> ConnectionEntry {
    let address = m == 3 ? "[fd00::3]:6783" : "10.0.0.\(m):6783"
    let mtu: Int? = m == 2 ? 1420 : nil
    // Every data-plane report in the seeds, and none (a router from before the report).
    let modes: [DataPlaneReport.Mode?] = [nil, .noDataPlane, .sleeve, .fastdp]
    let dataPlane = modes[(n + m) % modes.count].map { DataPlaneReport(mode: $0, encrypted: n % 2 == 0) }
    return ConnectionEntry(remote: samplePeerName(m), address: address, established: true, outbound: n < m, mtu: mtu, dataPlane: dataPlane)
}

/// Three peers, each connected to the other two.
let samplePeers: [PeerEntry] = (1...3).map { (n: Int) -> PeerEntry in
    let connections = (1...3).filter { $0 != n }.map { sampleConnection(from: n, to: $0) }
    return PeerEntry(name: samplePeerName(n), nickname: "host-\(n)", uid: UInt64(n), version: UInt64(n), shortId: UInt16(n), connections: connections)
}

/// decode(bytes) must not trap; whatever decodes must encode to something that decodes to it.
func roundTrip<T: Equatable>(_ bytes: [UInt8], _ decode: ([UInt8]) throws -> T, _ encode: (T) -> [UInt8], _ what: String) {
    guard let value = try? decode(bytes) else { return }
    let again = try? decode(encode(value))
    expect(again == value, "\(what) does not decode back to itself")
}

/// The first byte picks which of two messages the rest is (even: `first`, odd: `second`); round trip.
func roundTripEither<A: Equatable, B: Equatable>(_ data: UnsafeRawBufferPointer,
                                                 _ first: (decode: ([UInt8]) throws -> A, encode: (A) -> [UInt8], what: String),
                                                 _ second: (decode: ([UInt8]) throws -> B, encode: (B) -> [UInt8], what: String)) {
    var input = FuzzInput(data)
    let kind = input.u8()
    let body = input.rest()
    if kind & 1 == 0 {
        roundTrip(body, first.decode, first.encode, first.what)
    } else {
        roundTrip(body, second.decode, second.encode, second.what)
    }
}

let wireTargets: [FuzzTarget] = [
    FuzzTarget(name: "preamble", run: { data in
        roundTrip(Array(data), Preamble.decode, { $0.encode() }, "preamble")
    }, seeds: { [Preamble(hasPassword: true, pskId: [1, 2, 3, 4, 5, 6, 7, 8]).encode(), Preamble(hasPassword: false, pskId: [UInt8](repeating: 0, count: 8)).encode()] }),

    // The frame reader over a stream cut into reads of arbitrary sizes, under either cap.
    FuzzTarget(name: "frame", run: { data in
        var input = FuzzInput(data)
        let limit = input.u8() & 1 == 0 ? FrameLimits.beforeHandshake : FrameLimits.afterHandshake
        var decoder = FrameDecoder(limit: limit)
        while !input.isAtEnd {
            decoder.append(input.take(Int(input.u8()) + 1))
            do {
                while let body = try decoder.next() { expect(!body.isEmpty && body.count <= limit, "frame of \(body.count) bytes under cap \(limit)") }
            } catch { return }
        }
    }, seeds: { [[0] + FrameDecoder.frame([MessageType.helloPlain.rawValue] + sampleHello.encode()) + FrameDecoder.frame([1, 2, 3]),
                 [1, 0, 0, 0x10, 0, 1] + [UInt8](repeating: 0xAA, count: 64)] }),

    FuzzTarget(name: "hello", run: { data in
        roundTrip(Array(data), Hello.decode, { $0.encode() }, "hello")
    }, seeds: { [sampleHello.encode(), sampleHello.encode() + [9, 9]] }),

    FuzzTarget(name: "refuse", run: { data in
        roundTrip(Array(data), Refuse.decode, { $0.encode() }, "refuse")
    }, seeds: { [Refuse(code: .unknownPSKId, text: "unknown password id").encode(), Refuse(code: .protocolError, text: "é").encode()] }),

    FuzzTarget(name: "rekey", run: { data in
        roundTripEither(data, (RekeyInit.decode, { $0.encode() }, "rekey init"), (RekeyResponse.decode, { $0.encode() }, "rekey response"))
    }, seeds: { [[0] + RekeyInit(epoch: 1, pskId: [UInt8](repeating: 0, count: 8), ephemeral: [UInt8](repeating: 7, count: 32)).encode(),
                 [1] + RekeyResponse(epoch: 1, status: RekeyResponse.accepted, ephemeral: [UInt8](repeating: 9, count: 32)).encode()] }),

    FuzzTarget(name: "password", run: { data in
        roundTripEither(data, (PasswordOffer.decode, { $0.encode() }, "password offer"), (PasswordUse.decode, { $0.encode() }, "password use"))
    }, seeds: { [[0] + PasswordOffer(psk: [UInt8](repeating: 0x11, count: 32)).encode(),
                 [1] + PasswordUse(newId: [1, 2, 3, 4, 5, 6, 7, 8], oldId: [8, 7, 6, 5, 4, 3, 2, 1], graceSeconds: 600).encode(),
                 [1] + PasswordUse(newId: [1, 2, 3, 4, 5, 6, 7, 8], oldId: [8, 7, 6, 5, 4, 3, 2, 1], graceSeconds: 600, pinnedOnly: true).encode()] }),

    // A GOSSIP payload decoded and merged into a topology, then the routes and dial candidates
    // of what came of it; also the digests that travel beside it.
    FuzzTarget(name: "topology", run: { data in
        var input = FuzzInput(data)
        let mode = input.u8()
        let body = input.rest()
        if mode & 1 == 1 {
            roundTrip(body, GossipDigest.decode, { $0.encode() }, "gossip digest")
            return
        }
        roundTrip(body, TopologyUpdate.decode, { $0.encode() }, "topology update")
        guard let update = try? TopologyUpdate.decode(body) else { return }
        var topology = Topology(own: samplePeers[0])
        let own = topology.own
        _ = topology.merge(update)
        expect(topology.own.name == own.name && topology.own.uid == own.uid && topology.own.connections == own.connections,
               "a merge changed more of our own entry than its version and short id")
        let routes = topology.routes()
        _ = routes.reachable
        _ = topology.dialCandidates(connected: [])
        _ = topology.broadcastNextHops(from: Array(topology.peers.keys))
        let full = topology.fullUpdate()
        guard full.peers.count <= TopologyUpdate.maxPeers else { return }
        expect((try? TopologyUpdate.decode(full.encode())) == full, "a merged topology does not encode to what decodes back")
    }, seeds: { [[0] + TopologyUpdate(peers: samplePeers).encode(),
                 [1] + GossipDigest.summary(of: samplePeers.map(PeerVersion.init)).encode(),
                 [1] + GossipDigest.full(samplePeers.map(PeerVersion.init), wantsReply: true).encode()] }),

    // REVOCATIONS decoded and merged twice: the second merge must add nothing and every
    // record's key must then be revoked (add-only, idempotent).
    FuzzTarget(name: "revocations", run: { data in
        roundTrip(Array(data), RevocationList.decode, { $0.encode() }, "revocations")
        guard let list = try? RevocationList.decode(Array(data)) else { return }
        var set = RevocationSet()
        set.merge(list.records)
        expect(set.merge(list.records).isEmpty, "merging the same revocations twice changed the set")
        expect(list.records.allSatisfy { set.contains(key: $0.key) }, "a merged revocation is not in the set")
        expect(RevocationSet(set.sorted) == set, "the set rebuilt from its list differs")
    }, seeds: { [RevocationList(records: (1...3).map {
        Revocation(key: [UInt8](repeating: UInt8($0), count: 32), name: samplePeerName($0), nickname: "host-\($0)", revokedBy: samplePeerName(1), at: 1_764_800_000)
    }).encode(), RevocationList(records: []).encode()] }),
]
