// The router: owns the mesh state and every gossip link, on one event loop. Control plane only;
// the data plane will run on its own threads and read routes from here.
import Foundation
import Logging
import NIOCore
import NIOPosix
import WeftControl
import WeftCrypto
import WeftHost
import WeftMesh
import WeftWire

/// An address the router dials, from the command line, `weft connect` or gossip.
struct Target {
    let address: String
    /// Named by an operator: retried forever. Learned from gossip: until forgotten or gone.
    var permanent: Bool
    var failures = 0
    var nextAttempt = NIODeadline.now()
    var reason: String?
    /// Authentication failures are "failed", transient ones "retrying".
    var authFailure = false
    var link: Link?
    /// A TCP connect is in flight (before a link exists).
    var connecting = false
    /// The peer this address led to last time.
    var peer: PeerName?
    var nickname: String?
    /// Its failing was logged; cleared, with a log line, when it connects (DialReport).
    var reportedFailing = false
}

/// An inbound attempt that was refused, shown in status for a while (both sides show the reason).
struct InboundFailure {
    var address: String
    var reason: String
    var pskId: String?
    var at: NIODeadline
}

/// Per-source token bucket against connection floods (protocol.md §3.9).
struct TokenBucket {
    var tokens: Double
    var last: NIODeadline
    static let capacity = 20.0
    static let perSecond = 20.0

    mutating func take(now: NIODeadline) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        tokens = min(Self.capacity, tokens + elapsed * Self.perSecond)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

public final class Router: @unchecked Sendable {  // confined to `loop`
    /// Trusted subnets change on SIGHUP (Reload.swift); the rest is fixed at launch.
    public internal(set) var config: RouterConfig
    let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let logger: Logger
    let uid: UInt64
    let started = Date()

    /// The topology gossip (WeftMesh/Gossip.swift): what this router knows of the mesh.
    private(set) var gossip: Gossip
    var topology: Topology { gossip.topology }
    var routes: Routes { gossip.routes() }
    /// The routes forwarded traffic takes: `routes` without connections whose data plane is down.
    var dataPlaneRoutes: Routes { gossip.dataPlaneRoutes() }
    var links: [ObjectIdentifier: Link] = [:]
    var established: [PeerName: Link] = [:]
    var targets: [String: Target] = [:]
    private var forgotten: Set<String> = []
    /// Peers removed by gossip since the last topology refresh, which waits for the tick (apply).
    private var removedSinceRefresh: Set<PeerName> = []
    private var refreshPending = false
    private var inboundFailures: [String: InboundFailure] = [:]
    private var loggedRefusals: Set<String> = []
    private var buckets: [String: TokenBucket] = [:]
    private var listener: Channel?
    private var control: ControlServer?
    /// The bridge, the router's TAP and the workloads (HostNetwork.swift); set by bind().
    private(set) var hostNetwork: HostNetwork?
    private var ticker: RepeatedTask?
    private var stopping = false
    private var lastHeartbeat = NIODeadline.now()
    /// What the dial candidates were last looked for in: they change only with the listings,
    /// the established links or the targets, and reading them scans every peer's connections.
    private var dialLook: (listing: UInt64, connected: Set<PeerName>, targets: Int)?
    /// When the one-shot timer for waiting gossip is set to fire (`scheduleForward`).
    private var forwardScheduledAt: Double?
    /// The sleeve data plane; nil until started (and in tests of the control plane alone).
    var sleeve: SleeveState?
    /// Whether the kernel fast datapath can be used, and why not.
    var fastdp = FastdpStatus(available: false, reason: "not probed yet", flows: 0)
    /// The fast datapath; nil where it is unavailable or disabled (Router+Fastdp.swift).
    var fastdpState: FastdpState?
    /// Address management (Router+IPAM.swift); nil with `--ipalloc-range off`.
    var ipam: IPAMState?
    /// Counts for /metrics and its listener (Metrics.swift).
    let metrics = RouterMetrics()
    /// The identity key first seen with each peer name (Router+Pins.swift); read from the data
    /// dir by bind(), in memory until then.
    var identityPins = IdentityPinStore(path: nil)
    /// The last write of the pins failed (logged once until one succeeds).
    var pinSaveFailing = false
    /// The mesh's revoked identity keys (Router+Revocations.swift); read from the data dir by
    /// bind(), which also feeds them to `identityPins`.
    var revocations = RevocationStore(path: nil)
    private let stopped: EventLoopPromise<Void>
    private let backoff = Backoff()

    static let maxPendingHandshakes = 64
    static let inboundFailureMemory: TimeAmount = .minutes(5)

    /// The password keyring; nil when the router runs without a password.
    let keyring: Keyring?
    var passwordSet: Bool { keyring?.active != nil }
    let keyWork = KeyWork()

    public init(config: RouterConfig, keyring: Keyring?, logger: Logger) {
        self.config = config
        self.keyring = keyring
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = group.next()
        self.uid = UInt64.random(in: 1...UInt64.max)
        let own = PeerEntry(name: config.name, nickname: config.nickname, uid: uid, version: 1,
                            shortId: Topology.initialShortId(for: config.name), connections: [],
                            identity: config.identity.publicKey)
        self.gossip = Gossip(own: own)
        self.stopped = loop.makePromise()
    }

    // Read-only views for status (RouterStatus.swift).
    var topologyPeers: [PeerName: PeerEntry] { topology.peers }
    var targetAddresses: [String] { targets.keys.sorted() }
    var allLinks: [Link] { links.values.sorted { $0.startedAt < $1.startedAt } }
    var allTargets: [Target] { targets.values.sorted { $0.address < $1.address } }
    var recentInboundFailures: [InboundFailure] { inboundFailures.values.sorted { $0.address < $1.address } }
    func isEstablished(_ peer: PeerName) -> Bool { established[peer] != nil }

    // MARK: lifecycle

    /// Binds the gossip port and the control socket, starts dialing, and blocks until the router
    /// has stopped (SIGTERM, SIGINT or `weft stop`).
    public func run() throws {
        do {
            try bind()
        } catch {
            // Nothing runs yet: complete the promise (NIO traps on a leaked one) and end the loop.
            hostNetwork?.close()
            stopped.succeed()
            try? group.syncShutdownGracefully()
            throw error
        }
        try loop.submit { self.startDialing() }.wait()
        let signals = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.loop.execute { self.shutdown(because: sig == SIGTERM ? "SIGTERM" : "SIGINT") }
            }
            source.resume()
            return source
        }
        let reload = installReloadSignal()
        try stopped.futureResult.wait()
        signals.forEach { $0.cancel() }
        reload.cancel()
        try? group.syncShutdownGracefully()
    }

    /// Binds the control socket and the gossip port. Runs on the caller's thread: it waits.
    private func bind() throws {
        try loadPins()
        try loadRevocations()
        try loadIPAM()
        try startMetrics()
        let host = try HostNetwork.start(config: config, logger: logger)
        hostNetwork = host
        try startSleeve(tapFD: host.tap.fd, underlayMTU: host.underlayMTU)
        if let sleeve { startFastdp(host: host, sleeve: sleeve) }
        do {
            control = try ControlServer.start(path: config.socketPath, group: group, loop: loop,
                                              api: .controlAPI(RouterControlDelegate(router: self)))
        } catch let error as ControlSocketError {
            throw ConfigError(error.description)
        }
        do {
            listener = try listenForGossip()
        } catch {
            control?.close()
            throw ConfigError("cannot listen on \(config.listenAddress) port \(config.port) (\(error)); is another router running? use --port")
        }
    }

    /// Gossip on every address of both families; on IPv4 alone where the kernel has no IPv6
    /// (the sleeve socket falls back the same way).
    private func listenForGossip() throws -> Channel {
        do {
            return try listen(on: config.listenAddress)
        } catch let error as IOError where config.listenAddress == RouterConfig.anyAddress && error.errnoCode == EAFNOSUPPORT {
            return try listen(on: "0.0.0.0")
        } catch where config.listenAddress == RouterConfig.anyAddress && (error is SocketAddressError || error is SocketAddressError.UnknownHost) {
            // IPv6 switched off by sysctl (net.ipv6.conf.all.disable_ipv6=1): "::" does not resolve.
            return try listen(on: "0.0.0.0")
        }
    }

    /// The gossip listener on `host`: `::` is one dual-stack socket (IPv4 peers arrive as
    /// ::ffff:a.b.c.d, which IPAddress reads as IPv4).
    private func listen(on host: String) throws -> Channel {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(self.linkHandler(direction: .inbound, target: nil))
                }
            }
        if host.contains(":") {
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.socket(SocketOptionLevel(IPPROTO_IPV6), SocketOptionName(IPV6_V6ONLY)), value: 0)
        }
        return try bootstrap.bind(host: host, port: config.port).wait()
    }

    private func startDialing() {
        for address in config.initialPeers { addTarget(address, permanent: true) }
        ticker = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(500)) { [self] _ in tick() }
        startFastdpHeartbeats()
        logger.info("router started", metadata: [
            "name": "\(config.name)", "nickname": "\(config.nickname)", "port": "\(config.port)",
            "encryption": "\(passwordSet)", "pskId": "\(keyring?.active?.id.description ?? "none")",
            "trustedSubnets": "\(config.trustedSubnets.map(\.text).joined(separator: ","))",
        ])
    }

    /// Closes every link with a goodbye, the listener and the control socket, then ends run().
    func shutdown(because why: String) {
        guard !stopping else { return }
        stopping = true
        logger.info("router stopping", metadata: ["reason": "\(why)"])
        ticker?.cancel()
        stopFastdp()
        sleeve?.engine.stop()
        for link in links.values { link.fail("router shutting down", refuse: .shuttingDown) }
        let closes = [listener?.close()].compactMap { $0 }
        control?.close()
        metrics.close()
        hostNetwork?.close()
        EventLoopFuture.andAllComplete(closes, on: loop).whenComplete { [self] _ in
            // Give the goodbyes a moment to leave before the loop goes away.
            loop.scheduleTask(in: .milliseconds(100)) { self.stopped.succeed() }
        }
    }

    // MARK: links

    private func linkHandler(direction: LinkDirection, target: String?) -> LinkChannelHandler {
        LinkChannelHandler(makeLink: { [self] channel in
            makeLink(channel: channel, direction: direction, target: target)
        }, onClose: { [self] link in
            linkClosed(link)
        })
    }

    private func makeLink(channel: Channel, direction: LinkDirection, target: String?) -> Link? {
        let remoteIP = channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        var rateLimited = false
        if direction == .inbound {
            guard !stopping else { return nil }
            let now = NIODeadline.now()
            let key = remoteIP?.description ?? "?"
            var bucket = buckets[key] ?? TokenBucket(tokens: TokenBucket.capacity, last: now)
            let allowed = bucket.take(now: now)
            buckets[key] = bucket
            let pending = links.values.filter { !$0.isEstablished }.count
            rateLimited = !allowed || pending >= Self.maxPendingHandshakes
            if rateLimited { logOnce("inbound connections rate-limited", address: key, reason: "rate limited") }
        }
        let hello = Hello(name: config.name, nickname: config.nickname, uid: uid, connectionId: UInt64.random(in: 0...UInt64.max),
                          gossipPort: UInt16(config.port), sleevePort: UInt16(config.port), shortId: topology.own.shortId,
                          trustsRemote: remoteIP.map(config.trusts) ?? false, fastdpCapable: fastdpState != nil,
                          overlays: fastdpState != nil ? 0b11 : 0b01, ciphers: DataCipher.helloBits(DataCipher.allowedOnThisCPU))
        let link = Link(direction: direction, channel: channel, targetAddress: target, localHello: hello, localPSK: keyring?.active,
                        identity: config.identity)
        link.delegate = self
        links[ObjectIdentifier(link)] = link
        if let target { targets[target]?.link = link }
        if rateLimited {
            // Refused right after our preamble (REFUSE 9, protocol.md §3.9), so the dialer hears why;
            // linkClosed counts it.
            loop.execute { link.fail("rate limited: too many connection attempts or half-open handshakes", refuse: .rateLimited) }
        }
        return link
    }

    private func linkClosed(_ link: Link) {
        links[ObjectIdentifier(link)] = nil
        let wasEstablished = link.establishedAt != nil
        metrics.linkClosed(link, wasEstablished: wasEstablished)
        if let name = link.remoteName, established[name] === link {
            established[name] = nil
            gossip.linkDown(name)
            logger.info("connection closed", metadata: ["peer": "\(name)", "address": "\(link.socketAddress)", "reason": "\(link.reason ?? "")"])
            ownConnectionsChanged()
        }
        let duplicate = link.refuseCode == .duplicateConnection
        if let address = link.targetAddress, var target = targets[address], target.link === link {
            target.link = nil
            // A dialer is established once it wrote message 3, so the responder's refusal of its
            // key comes on an established link; it is still a refusal that retrying cannot cure.
            if (wasEstablished && !Self.isIdentityRefusal(link.refuseCode)) || duplicate {
                target.failures = duplicate ? 0 : 1
                target.reason = duplicate ? nil : link.reason
                target.authFailure = false
                target.nextAttempt = .now() + .milliseconds(duplicate ? 1000 : Int64(1000 * backoff.delay(afterFailures: 1, randomUnit: .random(in: 0..<1))))
            } else {
                target.failures += 1
                target.reason = link.reason
                target.authFailure = Self.isAuthFailure(link.refuseCode)
                let schedule = target.authFailure ? Backoff.wrongPassword : backoff
                let delay = schedule.delay(afterFailures: target.failures, randomUnit: .random(in: 0..<1))
                target.nextAttempt = .now() + .milliseconds(Int64(delay * 1000))
                if target.authFailure {
                    logOnce("connection refused", address: address, reason: link.reason ?? "")
                } else {
                    reportFailing(&target, link.reason ?? "handshake failed", secondsToRetry: delay)
                }
            }
            targets[address] = target
        } else if link.direction == .inbound, !wasEstablished, !duplicate, let reason = link.reason,
                  link.refuseCode != nil || link.remotePreamble != nil {
            let key = link.remoteIP?.description ?? link.socketAddress
            inboundFailures[key] = InboundFailure(address: link.socketAddress, reason: reason, pskId: link.pskId?.description, at: .now())
            logOnce("refused inbound connection", address: key, reason: reason)
        }
    }

    /// Refusals of the authenticated key or of the name it claims (§3.10, §3.11): the dialer's
    /// link may have been established a moment when they come.
    static func isIdentityRefusal(_ code: RefuseCode?) -> Bool {
        switch code {
        case .identityMismatch, .identityPinned, .revoked, .retiringPasswordUnknownKey: return true
        default: return false
        }
    }

    static func isAuthFailure(_ code: RefuseCode?) -> Bool {
        switch code {
        // Retrying soon cannot help: another password, another weft version or another key is needed.
        case .unknownPSKId, .handshakeFailed, .passwordMismatch, .noCommonVersion: return true
        default: return isIdentityRefusal(code)
        }
    }

    /// Logs a refusal once per address and reason, so a peer that keeps retrying with a wrong
    /// password does not flood the log.
    private func logOnce(_ message: Logger.Message, address: String, reason: String) {
        let key = "\(address)|\(reason)"
        guard loggedRefusals.insert(key).inserted else { return }
        logger.warning(message, metadata: ["address": "\(address)", "reason": "\(reason)"])
    }

    // MARK: targets

    func addTarget(_ raw: String, permanent: Bool) {
        let address = Self.normalize(raw, defaultPort: RouterConfig.defaultPort)
        forgotten.remove(address)
        if var existing = targets[address] {
            existing.permanent = existing.permanent || permanent
            if permanent { existing.nextAttempt = .now() }
            targets[address] = existing
        } else {
            targets[address] = Target(address: address, permanent: permanent)
        }
    }

    func forgetTarget(_ raw: String) -> Bool {
        let address = Self.normalize(raw, defaultPort: RouterConfig.defaultPort)
        forgotten.insert(address)
        guard let target = targets.removeValue(forKey: address) else { return false }
        if let link = target.link, !link.isEstablished { link.fail("address forgotten", refuse: nil) }
        return true
    }

    /// `host` → `host:6783`; `[v6]:port` and `host:port` are kept.
    static func normalize(_ address: String, defaultPort: Int) -> String {
        if address.hasPrefix("[") { return address.contains("]:") ? address : "\(address):\(defaultPort)" }
        let colons = address.filter { $0 == ":" }.count
        if colons == 0 { return "\(address):\(defaultPort)" }
        if colons > 1 { return "[\(address)]:\(defaultPort)" }
        return address
    }

    static func split(_ address: String) -> (host: String, port: Int)? {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            let host = String(address[address.index(after: address.startIndex)..<close])
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
            return (host, port)
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        return (String(address[..<colon]), port)
    }

    private func dial(_ address: String) {
        guard var target = targets[address], target.link == nil else { return }
        guard let (host, port) = Self.split(address) else {
            target.reason = "'\(address)' is not host:port"
            target.authFailure = true
            target.nextAttempt = .now() + .hours(1)
            targets[address] = target
            return
        }
        target.nextAttempt = .now() + .seconds(3600)  // until the attempt ends
        target.connecting = true
        targets[address] = target
        let attempt = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(self.linkHandler(direction: .outbound, target: address))
                }
            }
            .connect(host: host, port: port)
        attempt.whenComplete { [self] _ in targets[address]?.connecting = false }
        attempt.whenFailure { [self] error in
                guard var target = targets[address], target.link == nil else { return }
                target.failures += 1
                target.authFailure = false
                target.reason = DialReport.connectFailure(address, error)
                let delay = backoff.delay(afterFailures: target.failures, randomUnit: .random(in: 0..<1))
                target.nextAttempt = .now() + .milliseconds(Int64(delay * 1000))
                reportFailing(&target, target.reason!, secondsToRetry: delay)
                targets[address] = target
            }
    }

    private func tick() {
        let now = NIODeadline.now()
        for link in links.values { link.tick(now: now) }
        var dialing = targets.values.filter { $0.connecting || ($0.link.map { !$0.isEstablished } ?? false) }.count
        for (address, target) in targets.sorted(by: { $0.value.nextAttempt < $1.value.nextAttempt })
        where target.link == nil && now >= target.nextAttempt && dialing < DialRules.maxConcurrent {
            if let peer = target.peer, established[peer] != nil { continue }
            // Already connected the other way (the peer dialed us): adopt that link.
            if let link = established.values.first(where: { $0.remoteGossipAddress == address }) {
                targets[address]?.peer = link.remoteName
                targets[address]?.nickname = link.remoteHello?.nickname
                continue
            }
            dial(address)
            dialing += 1
        }
        inboundFailures = inboundFailures.filter { now - $0.value.at < Self.inboundFailureMemory }
        buckets = buckets.filter { now - $0.value.last < .seconds(10) }
        if now - lastHeartbeat >= .seconds(1) {
            lastHeartbeat = now
            sleeve?.engine.sendHeartbeats()
            sampleThroughput()
        }
        logDataPlaneHealthChanges()
        sleeve?.probeTick(now: now)
        keyTick(now: now)
        apply(gossip.tick(now: Self.seconds(now)))
        // One rule for what the own entry says of each link (its MTU, data-plane mode and
        // encryption): rebuilt every tick, gossiped when it differs (fastdp ↔ sleeve, a new
        // session, a settled MTU), the refresh it needs just below. Links that come and go are
        // published where that happens.
        ownConnectionsChanged(refreshNow: false)
        refreshIfPending()
        ipamTick(now: now)
        savePinsIfChanged()
    }

    /// Carries out a refresh that waits for the tick. Status calls it first, so that what it
    /// shows (routes, `pathMtu`) is what the data plane uses, not a newer topology that the
    /// forwarding table has not taken yet.
    func refreshIfPending() {
        if refreshPending { refreshTopology() }
    }

    // MARK: gossip

    /// `refreshNow`: the data plane must follow at once (a link lost must not carry traffic any
    /// longer). A new link waits for the tick (0.5 s), the relayed path serving meanwhile: a
    /// router joining a mesh of 100 gains a link every few tenths of a second, and a refresh
    /// per link was a tenth of its event loop's work (docs/benchmarks.md "Mesh scale").
    private func ownConnectionsChanged(refreshNow: Bool = true) {
        let entries = established.values.sorted { $0.remoteName! < $1.remoteName! }.map { link in
            ConnectionEntry(remote: link.remoteName!, address: link.remoteGossipAddress, established: true, outbound: link.direction == .outbound,
                            mtu: sleeve?.sessions[link.remoteName!]?.publishedMTU, dataPlane: dataPlaneReport(of: link),
                            dataPlaneDown: isDataPlaneDown(link))
        }
        apply(gossip.setOwn(nickname: config.nickname, connections: entries, now: Self.seconds(.now())), refreshNow: refreshNow)
    }

    /// The gossip's clock: seconds of the monotonic clock.
    static func seconds(_ t: NIODeadline) -> Double { Double(t.uptimeNanoseconds) / 1e9 }

    /// Carries out what the gossip decided: its messages on the established links, and a
    /// refresh of forwarding and dial targets when the topology changed. `refreshNow` when this
    /// router lost a link or a path MTU changed: its data plane follows at once. Otherwise the refresh
    /// waits for the next tick (0.5 s): it costs a broadcast tree per source, O(N·E), and while
    /// 100 routers form a mesh the topology changes on nearly every message; refreshing per
    /// message was most of each router's CPU there (#12, docs/benchmarks.md "Mesh scale").
    private func apply(_ effects: GossipEffects, refreshNow: Bool = false) {
        for send in effects.sends { established[send.to]?.send(type: send.type.rawValue, payload: send.payload) }
        scheduleForward()
        guard effects.topologyChanged else { return }
        removedSinceRefresh.formUnion(effects.removed)
        refreshPending = true
        if refreshNow { refreshTopology() }
    }

    /// Gossip waiting to leave (Gossip.forwardDue: forwards at most 0.1 s away, a held-back own
    /// update at most 0.5 s) goes on a one-shot timer rather than the 0.5 s tick. A due time
    /// earlier than the timer set gets a timer of its own; the later one then finds nothing due.
    private func scheduleForward() {
        guard let due = gossip.forwardDue, forwardScheduledAt.map({ due < $0 }) ?? true else { return }
        forwardScheduledAt = due
        let delay = max(0, Int64((due - Self.seconds(.now())) * 1e9))
        loop.scheduleTask(in: .nanoseconds(delay)) { [self] in
            if forwardScheduledAt == due { forwardScheduledAt = nil }
            apply(gossip.forwardWaiting(now: Self.seconds(.now())))
        }
    }

    private func refreshTopology() {
        refreshPending = false
        let gone = removedSinceRefresh
        removedSinceRefresh = []
        // Learned addresses of removed peers are dropped (protocol.md §4.2); named ones stay.
        for (address, target) in targets where !target.permanent && target.link == nil {
            if let peer = target.peer, gone.contains(peer) || topology.peers[peer] == nil { targets[address] = nil }
        }
        refreshForwarding()
        addLearnedTargets()
    }

    /// Targets for peers learned from gossip that nothing dials yet. The first attempt is
    /// deferred on the side with the larger name (DialRules.firstAttemptDelay), so two routers
    /// that learn of each other together do not dial each other at once.
    private func addLearnedTargets() {
        let connected = Set(established.keys)
        let look = (listing: topology.listingGeneration, connected: connected, targets: targets.count)
        if let last = dialLook, last.listing == look.listing, last.targets == look.targets, last.connected == connected { return }
        dialLook = look
        let known = Set(targets.values.compactMap(\.peer))
        let now = NIODeadline.now()
        for candidate in topology.dialCandidates(connected: connected) where !known.contains(candidate.name) && !isRevoked(candidate.name) {
            let address = Self.normalize(candidate.address, defaultPort: RouterConfig.defaultPort)
            guard !forgotten.contains(address), targets[address] == nil else { continue }
            var target = Target(address: address, permanent: false)
            target.peer = candidate.name
            target.nickname = topology.peers[candidate.name]?.nickname
            let delay = DialRules.firstAttemptDelay(local: config.name, remote: candidate.name, randomUnit: .random(in: 0..<1))
            target.nextAttempt = now + .milliseconds(Int64(delay * 1000))
            targets[address] = target
        }
        dialLook?.targets = targets.count
    }
}

extension Router: LinkDelegate {
    func psk(for id: PSKID) -> PreSharedKey? {
        keyring?.accepted(id)
    }

    func linkAuthenticated(_ link: Link) -> Refuse? {
        guard let hello = link.remoteHello else { return Refuse(code: .protocolError, text: "no hello") }
        if stopping { return Refuse(code: .shuttingDown, text: "router shutting down") }
        if hello.name == config.name {
            return Refuse(code: .connectingToSelf, text: "connection to self (\(config.name))")
        }
        if let key = link.remoteIdentity {
            // Before the pin check, which would pin a key seen for the first time (§3.11).
            if let pskId = link.pskId, keyring?.isPinnedOnly(pskId) == true,
               let refusal = RetiringPassword.refusal(pinnedOnly: true, pin: identityPins.pins.decide(name: hello.name, key: key),
                                                      fingerprint: IdentityKey.fingerprint(publicKey: key)) {
                return refusal
            }
            if let refusal = pinRefusal(name: hello.name, key: key, address: "\(link.socketAddress)") { return refusal }
        }
        if let existing = established[hello.name], existing !== link {
            switch DuplicateConnections.resolve(local: config.name, remote: hello.name, newIsOutbound: link.direction == .outbound,
                                                existingIsOutbound: existing.direction == .outbound,
                                                existingUID: existing.remoteHello?.uid, newUID: hello.uid) {
            case .replaceExisting(let reason):
                existing.fail(reason, refuse: .duplicateConnection)
                linkClosedEarly(existing)
            case .refuseNew:
                return Refuse(code: .duplicateConnection, text: "duplicate connection to \(hello.name); keeping the other one")
            }
        }
        return nil
    }

    /// Forgets an established link at once when a newer one replaces it, rather than waiting for
    /// its channel to report closure, so the new link can take its place in the same turn.
    private func linkClosedEarly(_ link: Link) {
        if let name = link.remoteName, established[name] === link {
            established[name] = nil
            gossip.linkDown(name)
        }
    }

    func linkEstablished(_ link: Link) {
        guard let hello = link.remoteHello else { return }
        established[hello.name] = link
        // The target this link was dialed for; for an inbound link, the target of the peer that
        // dialed first (by its gossip address, or the peer it led to before): its recovery too.
        let gossipAddress = link.remoteGossipAddress
        let reached = link.targetAddress.map { [$0] }
            ?? targets.filter { $0.key == gossipAddress || $0.value.peer == hello.name }.map(\.key)
        for address in reached {
            guard var target = targets[address] else { continue }
            target.peer = hello.name
            target.nickname = hello.nickname
            reportRecovered(&target, inbound: link.targetAddress == nil)
            target.failures = 0
            target.reason = nil
            target.authFailure = false
            targets[address] = target
        }
        if let ip = link.remoteIP?.description { inboundFailures[ip] = nil }
        logger.info("connection established", metadata: [
            "peer": "\(hello.name)", "nickname": "\(hello.nickname)", "address": "\(link.socketAddress)",
            "direction": "\(link.direction.rawValue)", "encrypted": "\(LinkPolicy.encrypted(passwordSet: passwordSet, trusted: link.trusted))",
            "trusted": "\(link.trusted)",
        ])
        // Revocations first, so the peer refuses a revoked key before any topology names it (§3.11).
        sendRevocations(to: link)
        apply(gossip.linkUp(hello.name, now: Self.seconds(.now())))
        ownConnectionsChanged(refreshNow: false)
        catchUpPassword(link)
        ipamLinkUp(link)
    }

    func link(_ link: Link, received type: UInt8, payload: [UInt8]) {
        switch MessageType(rawValue: type) {
        case .gossip, .gossipDigest:
            guard let from = link.remoteName else { return }
            do {
                // The check reads and writes only the pins, never the gossip it is called from.
                let source = PinSource.gossip(from: from, address: link.socketAddress)
                apply(try gossip.receive(from: from, type: MessageType(rawValue: type)!, payload: payload, now: Self.seconds(.now()),
                                         admit: { pinCheck(name: $0.name, key: $0.identity, source: source).isAccepted }))
            } catch {
                link.fail("malformed gossip: \(error)", refuse: .protocolError)
            }
        case .passwordOffer, .passwordAck, .passwordUse:
            handlePasswordMessage(link, type: MessageType(rawValue: type)!, payload: payload)
        case .ipamUpdate, .ipamRequest:
            ipamReceived(link, type: MessageType(rawValue: type)!, payload: payload)
        case .revocations:
            revocationsReceived(link, payload: payload)
        default:
            // Reserved types (data-plane control) and unknown ones.
            link.countUnknownMessage()
        }
    }
}
