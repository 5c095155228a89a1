// The router's Prometheus metrics (docs/design.md §8): what it counts for metrics alone, the
// `--metrics-addr` listener, and what it serves there: the figures at /metrics, the mesh page at /
// and its data at /topology.json (the text format, the handler and the page are WeftControl's
// MetricsServer and MeshPage). Every value is read on the router's loop from the state status
// reads, so a subsystem that is off simply contributes zeros or no series.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import WeftControl
import WeftDatapath
import WeftHost
import WeftWire

/// What the router counts for metrics alone, and the metrics listener. Confined to the
/// router's event loop.
final class RouterMetrics: @unchecked Sendable {
    static let defaultAddress = "127.0.0.1:6782"

    /// Links that closed before they were established, by reason (snake_case refusal code).
    var handshakeFailures: [String: UInt64] = [:]
    /// Refused claims of a peer name with an identity key (Router+Pins.swift), by
    /// "reason source" (the two labels of weft_identity_refusals_total).
    var identityRefusals: [String: UInt64] = [:]
    /// Completed session rekeys (docs/design.md §6), either side's.
    var rekeys: UInt64 = 0
    /// Unknown gossip-link messages counted by links that have closed; live links add theirs.
    private var closedLinksUnknownMessages: UInt64 = 0
    /// Gossip-connection bytes of links that have closed, each way; live links add theirs.
    private var closedLinksBytes = (sent: UInt64(0), received: UInt64(0))
    /// Sessions seen at the last scrape: when one goes away its drops move to `retiredDrops`,
    /// so the drop counters never go backwards.
    private var sessions: [ObjectIdentifier: SleeveSession] = [:]
    private var retiredDrops = DropCounts()
    var channel: Channel?
    /// Each sleeve session's counters at the last throughput sample, and the rates they gave.
    private var throughputSamples: [PeerName: LinkThroughput.Sample] = [:]
    private(set) var throughput: [PeerName: LinkThroughput] = [:]

    struct DropCounts {
        var badTag: UInt64 = 0, replay: UInt64 = 0, malformed: UInt64 = 0, tooBig: UInt64 = 0

        mutating func add(_ s: SleeveCounters.Snapshot) {
            badTag &+= s.dropBadTag
            replay &+= s.dropReplay
            malformed &+= s.dropMalformed
            tooBig &+= s.dropTooBig
        }
    }

    /// Counts a link that closed before it was established. Duplicate-connection resolution
    /// and shutdown are not failures.
    func linkClosed(_ link: Link, wasEstablished: Bool) {
        closedLinksUnknownMessages += UInt64(link.unknownMessages)
        closedLinksBytes.sent &+= link.bytesSent
        closedLinksBytes.received &+= link.bytesReceived
        guard !wasEstablished, link.reason != nil else { return }
        let code = link.refuseCode
        if code == .duplicateConnection || code == .shuttingDown { return }
        handshakeFailures[Self.reasonLabel(code), default: 0] += 1
    }

    /// Stable label values; a link that closed with no refusal is "closed".
    static func reasonLabel(_ code: RefuseCode?) -> String {
        switch code {
        case nil: return "closed"
        case .unknownPSKId: return "unknown_psk_id"
        case .handshakeFailed: return "handshake_failed"
        case .passwordMismatch: return "password_mismatch"
        case .noCommonVersion: return "no_common_version"
        case .duplicateConnection: return "duplicate_connection"
        case .connectingToSelf: return "connecting_to_self"
        case .protocolError: return "protocol_error"
        case .shuttingDown: return "shutting_down"
        case .rateLimited: return "rate_limited"
        case .handshakeTimeout: return "handshake_timeout"
        case .identityMismatch: return "identity_mismatch"
        case .identityPinned: return "identity_pinned"
        case .revoked: return "revoked"
        case .retiringPasswordUnknownKey: return "retiring_password_unknown_key"
        case .unknown: return "unknown"
        }
    }

    /// Drops of every session that ever existed, plus the ones no session can be charged with.
    func drops(live: [SleeveSession], stray: SleeveCounters.Snapshot?) -> DropCounts {
        let liveIds = Set(live.map(ObjectIdentifier.init))
        for (id, session) in sessions where !liveIds.contains(id) { retiredDrops.add(session.counters.snapshot()) }
        sessions = Dictionary(live.map { (ObjectIdentifier($0), $0) }, uniquingKeysWith: { a, _ in a })
        var total = retiredDrops
        for session in live { total.add(session.counters.snapshot()) }
        if let stray { total.add(stray) }
        return total
    }

    /// Unknown messages of every link that ever existed, so the counter never goes backwards.
    func unknownMessages(live: [Link]) -> UInt64 {
        live.reduce(closedLinksUnknownMessages) { $0 + UInt64($1.unknownMessages) }
    }

    /// Gossip-connection bytes of every link that ever existed, each way.
    func gossipBytes(live: [Link]) -> (sent: UInt64, received: UInt64) {
        live.reduce(closedLinksBytes) { ($0.sent &+ $1.bytesSent, $0.received &+ $1.bytesReceived) }
    }

    /// Takes the sessions' counters (once a second, from the router's tick) and keeps each
    /// link's rate since the previous sample; a peer without a session drops out.
    func sampleThroughput(_ sessions: [PeerName: SleeveSession], atNanos: Int64) {
        var samples: [PeerName: LinkThroughput.Sample] = [:]
        var rates: [PeerName: LinkThroughput] = [:]
        for (peer, session) in sessions {
            let counters = session.counters.snapshot()
            let sample = LinkThroughput.Sample(atNanos: atNanos, txBytes: counters.txBytes, rxBytes: counters.rxBytes)
            samples[peer] = sample
            if let earlier = throughputSamples[peer] {
                rates[peer] = LinkThroughput.between(earlier, sample, peer: peer.description)
            }
        }
        throughputSamples = samples
        throughput = rates
    }

    func close() {
        channel?.close(promise: nil)
        channel = nil
    }
}

extension RouterConfig {
    /// `--metrics-addr`: "HOST:PORT" (IPv6 as "[::1]:PORT") or "off". Returns the address, nil
    /// for off.
    public static func parseMetricsAddress(_ text: String) throws -> String? {
        if text == "off" { return nil }
        guard let (host, port) = Router.split(text), !host.isEmpty, (1...65535).contains(port) else {
            throw ConfigError("--metrics-addr \(text) is not HOST:PORT (like \(RouterMetrics.defaultAddress)) or off")
        }
        return text
    }
}

extension Router {
    /// Binds the metrics listener when `--metrics-addr` is not off. Runs on the caller's thread.
    func startMetrics() throws {
        guard let address = config.metricsAddress, let (host, port) = Self.split(address) else { return }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(MetricsHandler(loop: self.loop, endpoints: self.metricsEndpoints()))
                    }
                }
            }
        do {
            metrics.channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            throw ConfigError("cannot serve metrics on \(address) (\(DialReport.describe(error))); is another router using it? pass --metrics-addr HOST:PORT or off")
        }
        logger.info("metrics served", metadata: ["address": "http://\(address)/metrics", "page": "http://\(address)/"])
    }

    /// What the metrics listener serves: the exposition, the mesh page and the page's data.
    func metricsEndpoints() -> [String: MetricsEndpoint] {
        let page = Array(MeshPage.html.utf8)
        return [
            "/metrics": MetricsEndpoint(contentType: "text/plain; version=0.0.4; charset=utf-8") { [self] in Array(metricsText().utf8) },
            "/": MetricsEndpoint(contentType: "text/html; charset=utf-8") { page },
            MeshPage.dataPath: MetricsEndpoint(contentType: "application/json") { [self] in ControlJSON.encode(meshPageData()) },
        ]
    }

    /// Once a second, from the tick: the links' rates for the mesh page (only when it is served).
    func sampleThroughput() {
        guard metrics.channel != nil else { return }
        metrics.sampleThroughput(sleeve?.sessions ?? [:], atNanos: SleeveEngine.monotonicNanos())
    }

    /// The mesh page's data. Runs on the router's loop.
    func meshPageData() -> MeshPageData {
        MeshPageData(topology: topologyStatus(), connections: connectionStatus(),
                     throughput: metrics.throughput.values.sorted { $0.peer < $1.peer })
    }

    /// The exposition text. Runs on the router's loop.
    func metricsText() -> String {
        var out = PrometheusText()
        let passwordSet = config.psk != nil
        out.family("weft_router_info", .gauge, "The router's peer name and nickname.",
                   [([("peer", config.name.description), ("nickname", config.nickname)], 1)])
        out.family("weft_peers", .gauge, "Peers in the topology, this router included.", [([], UInt64(topologyPeers.count))])

        var connections: [[String]: UInt64] = [:]
        for state in [ConnectionState.connecting, .established, .failed, .retrying] {
            connections[[state.rawValue, "none", "\(passwordSet)"]] = 0
        }
        for c in connectionStatus() { connections[[c.state.rawValue, c.mode ?? "none", "\(c.encrypted)"], default: 0] += 1 }
        out.family("weft_connections", .gauge, "Connections by state, data-plane mode and encryption.",
                   connections.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { key, count in
                       ([("state", key[0]), ("mode", key[1]), ("encrypted", key[2])], count)
                   })

        let sessions = (sleeve?.sessions ?? [:]).sorted { $0.key < $1.key }
        let snapshots = sessions.map { ($0.key.description, $0.value.counters.snapshot()) }
        out.family("weft_connection_bytes_total", .counter, "Frame bytes carried per connection and direction (sleeve).",
                   snapshots.flatMap { peer, s in [([("peer", peer), ("direction", "tx")], s.txBytes), ([("peer", peer), ("direction", "rx")], s.rxBytes)] })
        out.family("weft_connection_frames_total", .counter, "Frames carried per connection and direction (sleeve).",
                   snapshots.flatMap { peer, s in [([("peer", peer), ("direction", "tx")], s.txFrames), ([("peer", peer), ("direction", "rx")], s.rxFrames)] })
        out.family("weft_connection_path_mtu_bytes", .gauge, "The overlay MTU usable towards each directly connected peer (path MTU probing).",
                   sessions.map { name, session in ([("peer", name.description)], UInt64(max(0, mtu(of: session)))) })
        out.family("weft_peer_path_mtu_bytes", .gauge, "The overlay MTU of the whole route to each reachable peer, relays included (status peers pathMtu).",
                   peerStatus().compactMap { p in p.pathMtu.map { ([("peer", p.name)], UInt64(max(0, $0))) } })

        let drops = metrics.drops(live: sessions.map(\.value), stray: sleeve?.engine.stray.snapshot())
        out.family("weft_sleeve_drops_total", .counter, "Sleeve packets dropped, by reason.", [
            ([("reason", "bad_tag")], drops.badTag), ([("reason", "replay")], drops.replay),
            ([("reason", "malformed")], drops.malformed), ([("reason", "too_big")], drops.tooBig),
        ])
        out.family("weft_handshake_failures_total", .counter, "Gossip links that closed before they were established, by reason.",
                   metrics.handshakeFailures.sorted { $0.key < $1.key }.map { ([("reason", $0.key)], $0.value) })
        out.family("weft_rekeys_total", .counter, "Session rekeys.", [([], metrics.rekeys)])
        out.family("weft_identity_refusals_total", .counter,
                   "Claims of a peer name with an identity key refused here (docs/protocol.md §3.10), by reason and where they came from.",
                   metrics.identityRefusals.sorted { $0.key < $1.key }.map { key, value in
                       let parts = key.split(separator: " ").map(String.init)
                       return ([("reason", parts[0]), ("source", parts[1])], value)
                   })
        out.family("weft_gossip_unknown_messages_total", .counter, "Gossip-link messages of an unknown type, ignored.",
                   [([], metrics.unknownMessages(live: allLinks))])
        let gossipBytes = metrics.gossipBytes(live: allLinks)
        out.family("weft_gossip_bytes_total", .counter, "Bytes of gossip connections on the wire (handshakes and frames), by direction.",
                   [([("direction", "tx")], gossipBytes.sent), ([("direction", "rx")], gossipBytes.received)])
        out.family("weft_overlay_mtu_bytes", .gauge, "MTU of the weft bridge, TAP and workload interfaces.",
                   [([], UInt64(overlayMTU ?? 0))])
        out.family("weft_fastdp_flows", .gauge, "Flows installed in the fast datapath (0 without fastdp).",
                   [([], UInt64(fastdpStatus.flows))])
        if let ipam {
            let owned = ipam.manager.ownedBlocks
            out.family("weft_ipam_addresses_used", .gauge, "Addresses of --ipalloc-range this router has given to workloads.",
                       [([], UInt64(ipam.manager.allocations.byHolder.count))])
            out.family("weft_ipam_addresses_free", .gauge, "Addresses of --ipalloc-range this router can still give without asking a peer.",
                       [([], ipam.manager.allocations.freeCount(owned: owned))])
        }
        return out.text
    }
}
