// Wiring between the gossip links and the sleeve data plane: a session per established link,
// a forwarding table rebuilt whenever links or routes change, heartbeats, and status.
import Foundation
import NIOCore
import WeftCrypto
import WeftDatapath
import WeftMesh
import WeftWire

/// Data-plane state the router owns on its event loop.
final class SleeveState: @unchecked Sendable {  // confined to the router's event loop
    let engine: SleeveEngine
    /// The forwarding and MAC tables both datapaths read; installed and purged from here.
    let forwarding: Forwarding
    var sessions: [PeerName: SleeveSession] = [:]

    /// Path-MTU probing, each session on its own clock (WeftMesh ProbeSchedule).
    var probes: [PeerName: ProbeSchedule] = [:]

    init(engine: SleeveEngine, forwarding: Forwarding) {
        self.engine = engine
        self.forwarding = forwarding
    }

    /// Runs the probing rounds that are due. A published MTU that changed is gossiped by the
    /// router's tick, which compares the own entry with the links every time (Router.tick).
    func probeTick(now: NIODeadline) {
        let t = Router.seconds(now)
        for (name, session) in sessions {
            var schedule = probes[name] ?? ProbeSchedule(connectedAt: t)
            if schedule.resultsAreDue(now: t) {
                let round = session.finishProbeRound()
                if let round {
                    let settled = PathMTU.settle(published: session.publishedMTU, previousRound: session.lastRoundMTU, round: round)
                    session.lastRoundMTU = round
                    session.publishedMTU = settled
                }
                schedule.endRound(now: t, answered: round != nil, randomUnit: .random(in: 0..<1))
            }
            if schedule.startRound(now: t) {
                engine.sendProbes(to: session, sizes: schedule.sizes(ladder: engine.probeLadder(for: session), current: session.pathPayloadBytes))
            }
            probes[name] = schedule
        }
    }
}

/// The data-plane part of a connection's status.
struct DataPlaneStatus {
    var mode: String?
    var cipher: String?
    var mtu: Int?
    var keyEpoch: Int?
    var counters: SleeveCounters.Snapshot?
    /// Why the data plane is not (yet) proven, for `reason`.
    var heartbeat: String?

    static let none = DataPlaneStatus()
}

extension Router {
    /// The cipher both ends can use: AES-256-GCM when both report AES-NI, else ChaCha20-Poly1305.
    static func negotiateCipher(local: UInt8, remote: UInt8) -> DataCipher {
        (local & remote & DataCipher.aes256GCM.helloBit) != 0 ? .aes256GCM : .chaCha20Poly1305
    }

    /// The sleeve keys of `keys` for this link: nil when its data plane is not encrypted.
    func packetKeys(for link: Link, _ keys: LinkKeys?) -> (tx: PacketKey, rx: PacketKey)? {
        guard let keys, let hello = link.remoteHello,
              LinkPolicy.encrypted(passwordSet: passwordSet, trusted: link.trusted) else { return nil }
        let cipher = Self.negotiateCipher(local: link.localHello.ciphers, remote: hello.ciphers)
        return (PacketKey(cipher: cipher, key: link.isInitiator ? keys.udpInitiatorToResponder : keys.udpResponderToInitiator),
                PacketKey(cipher: cipher, key: link.isInitiator ? keys.udpResponderToInitiator : keys.udpInitiatorToResponder))
    }

    /// A new session for a link that just became established, to the address the link came
    /// from (either family). Nil without a data plane, or for an IPv6 peer when this host has
    /// no IPv6 (the link then carries gossip only).
    func makeSleeveSession(for link: Link) -> SleeveSession? {
        guard let hello = link.remoteHello, let ip = link.remoteIP, let engine = sleeve?.engine,
              let address = engine.address(ip: ip, port: hello.sleevePort) else { return nil }
        let pair = packetKeys(for: link, link.linkKeys)
        let keys = SessionKeys(txEpoch: link.epoch, tx: pair?.tx, rx: pair.map { [(link.epoch, $0.rx)] } ?? [])
        let shortId = topology.peers[hello.name]?.shortId ?? hello.shortId
        return SleeveSession(peerShortId: shortId, keys: keys, address: address, underlayMTU: engine.underlayMTU)
    }

    /// Rebuilds the forwarding table from the established links and the current routes.
    func refreshForwarding() {
        guard let sleeve else { return }
        let live = Set(established.keys)
        for name in sleeve.sessions.keys where !live.contains(name) {
            sleeve.sessions[name] = nil
            sleeve.probes[name] = nil
        }
        for (name, link) in established where sleeve.sessions[name] == nil {
            if let session = makeSleeveSession(for: link) {
                sleeve.sessions[name] = session
                // Only the new session is probed soon; the others keep their own rounds.
                sleeve.probes[name] = ProbeSchedule(connectedAt: Self.seconds(.now()))
            }
        }
        // The data-plane threads address sessions by short id, which a collision may change.
        for (name, session) in sleeve.sessions {
            if let id = topology.peers[name]?.shortId { session.peerShortId = id }
        }
        let table = ForwardingTable.build(topology: topology, routes: dataPlaneRoutes, sessions: sleeve.sessions, pathMTU: pathMTU())
        sleeve.forwarding.install(table)
        sleeve.forwarding.macs.purge(keeping: Set(topology.peers.values.map(\.shortId)).subtracting([table.ownShortId]))
        // Routes or neighbours changed: flows decided on the old ones may now be wrong.
        fastdpState?.engine.revalidate()
    }

    /// The overlay MTU of the whole route to every reachable peer (WeftMesh PathMTU): the live
    /// measurement of the first hop, the gossiped ones of the others. Not capped by our own
    /// overlay MTU: relayed frames never cross our bridge.
    func pathMTU() -> [PeerName: Int] {
        let firstHop = sleeve?.sessions.mapValues(\.pathMTU) ?? [:]
        return dataPlaneRoutes.pathMTU(peers: topology.peers, firstHop: firstHop)
    }

    /// Whether `link`'s data plane has stopped answering heartbeats (DataPlaneHealth): the
    /// sleeve's, unless the link is on fastdp; false for a link without one (it carries gossip
    /// only, and no route can avoid that).
    func isDataPlaneDown(_ link: Link) -> Bool {
        guard let name = link.remoteName, let session = sleeve?.sessions[name], let up = link.establishedAt else { return false }
        return DataPlaneHealth.isDown(secondsSinceAnswer: session.secondsSinceHeartbeatAck(now: SleeveEngine.monotonicNanos()),
                                      secondsUp: Date().timeIntervalSince(up), onFastdp: modeDecision(for: link).mode == .fastdp)
    }

    /// Logs each link whose data plane went down or came back since the own entry said so (the
    /// tick's rebuild of the own entry then gossips the change).
    func logDataPlaneHealthChanges() {
        let published = topology.own.connections
        for (name, link) in established {
            let said = published.first { $0.remote == name }?.dataPlaneDown ?? false
            if said != isDataPlaneDown(link) {
                logger.info(said ? "data plane answers heartbeats again: forwarded traffic may cross it" : "data plane does not answer heartbeats: forwarded traffic avoids it",
                            metadata: ["peer": "\(name)"])
            }
        }
    }

    /// What status shows of a connection's data plane.
    func sleeveStatus(for name: PeerName?) -> DataPlaneStatus {
        guard let name, let sleeve, let session = sleeve.sessions[name] else { return .none }
        var heartbeat: String?
        let since = session.secondsSinceHeartbeatAck(now: SleeveEngine.monotonicNanos())
        if since == nil {
            heartbeat = "sleeve: waiting for the first heartbeat answer from \(session.remoteAddressText)"
        } else if let since, since > DataPlaneHealth.silenceLimit {
            heartbeat = String(format: "sleeve: no heartbeat answer from %@ for %.0f s", session.remoteAddressText, since)
        }
        return DataPlaneStatus(mode: "sleeve", cipher: session.cipher?.rawValue, mtu: mtu(of: session),
                               keyEpoch: Int(session.keys.txEpoch), counters: session.counters.snapshot(), heartbeat: heartbeat)
    }
}

extension Router {
    /// The overlay MTU, read here only: HostNetwork owns it (it set the bridge and the TAP to
    /// it at launch); before that, what --mtu asked for; nil when neither says.
    var overlayMTU: Int? { hostNetwork?.overlayMTU ?? config.mtu }

    /// The MTU of frames to a directly connected peer over sleeve: the overlay MTU, or less
    /// where the path to the peer carries less (path MTU probing).
    func mtu(of session: SleeveSession) -> Int { min(overlayMTU ?? session.pathMTU, session.pathMTU) }

    /// Starts the sleeve threads on the router's TAP device. Runs before the event loop takes
    /// over, on the caller's thread.
    func startSleeve(tapFD: Int32, underlayMTU: Int) throws {
        let engine: SleeveEngine
        let forwarding = Forwarding()
        do {
            engine = try SleeveEngine(forwarding: forwarding, tapFD: tapFD, port: config.port, underlayMTU: underlayMTU)
        } catch {
            throw ConfigError("\(error); is another router using UDP port \(config.port)? use --port")
        }
        engine.start()
        sleeve = SleeveState(engine: engine, forwarding: forwarding)
        logger.info("sleeve started", metadata: ["udpPort": "\(config.port)", "overlayMTU": "\(overlayMTU ?? 0)", "underlayMTU": "\(underlayMTU)"])
    }
}
