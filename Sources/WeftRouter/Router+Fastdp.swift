// The kernel fast datapath in the router (docs/design.md §4, §5): started at launch where the kernel has
// the openvswitch module, heartbeats through VXLAN on a timer, and the mode of every connection
// decided from what both ends said and what the heartbeats show (ModeSelection).
import Foundation
import NIOCore
import WeftControl
import WeftDatapath
import WeftHost
import WeftMesh
import WeftNetlink
import WeftWire

/// Fast-datapath state the router owns on its event loop.
final class FastdpState: @unchecked Sendable {  // confined to the router's event loop
    let engine: FastDatapath
    /// The last decision per peer, for status and to log changes once.
    var decisions: [PeerName: ModeDecision] = [:]
    var heartbeatTask: RepeatedTask?

    /// Heartbeats every 250 ms; a connection whose heartbeats (both ways) are older than a
    /// second goes on hold: with pings 200 ms apart, a handful at most are lost on the switch.
    static let heartbeatInterval: TimeAmount = .milliseconds(250)
    static let holdAfterNanos: Int64 = 1_000_000_000

    init(engine: FastDatapath) { self.engine = engine }
}

extension Router {
    /// Starts the fast datapath when enabled and the kernel can: the veth pair to the bridge,
    /// the datapath `weft-dp` with its VXLAN vport on --port + 1, the miss thread. Anything
    /// missing leaves every connection on sleeve, and status says why (once, plainly, in the log).
    func startFastdp(host: HostNetwork, sleeve: SleeveState) {
        guard config.fastdpEnabled else {
            fastdp = FastdpStatus(available: false, reason: "disabled by --no-fastdp", flows: 0)
            logger.info("fastdp unavailable", metadata: ["reason": "disabled by --no-fastdp"])
            return
        }
        do {
            _ = try ODPClient.open()
        } catch {
            let reason = (error as? ODPError)?.description ?? "cannot talk to the openvswitch module: \(error)"
            fastdp = FastdpStatus(available: false, reason: reason, flows: 0)
            logger.info("fastdp unavailable", metadata: ["reason": "\(reason)"])
            return
        }
        do {
            let veth = try host.attachDatapathVeth()
            let engine = try FastDatapath(name: WeftInterfaces.datapath, bridgeVeth: veth, vxlanPort: UInt16(FastdpWire.vxlanPort(routerPort: config.port)),
                                          forwarding: sleeve.forwarding)
            engine.start()
            fastdpState = FastdpState(engine: engine)
            fastdp = FastdpStatus(available: true, reason: nil, flows: 0)
            logger.info("fastdp started", metadata: [
                "datapath": "\(WeftInterfaces.datapath)", "vxlanPort": "\(FastdpWire.vxlanPort(routerPort: config.port))",
                "heartbeatBytes": "\(FastdpHeartbeat.size(overlayMTU: host.overlayMTU))",
            ])
        } catch {
            let reason = "cannot set up the datapath: \(error)"
            fastdp = FastdpStatus(available: false, reason: reason, flows: 0)
            logger.warning("fastdp unavailable", metadata: ["reason": "\(reason)"])
        }
    }

    func startFastdpHeartbeats() {
        guard let state = fastdpState else { return }
        state.heartbeatTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: FastdpState.heartbeatInterval) { [self] _ in
            fastdpTick()
        }
    }

    func stopFastdp() {
        guard let state = fastdpState else { return }
        state.heartbeatTask?.cancel()
        state.engine.stop(deleteDatapath: WeftInterfaces.datapath)
        fastdpState = nil
    }

    /// `fastdp` with the number of flows installed now.
    var fastdpStatus: FastdpStatus {
        var status = fastdp
        status.flows = fastdpState?.engine.flowCount.load(ordering: .relaxed) ?? 0
        return status
    }

    /// Whether this link may use fastdp at all: what both ends said in the handshake.
    func fastdpEligible(_ link: Link) -> Bool {
        guard fastdpState != nil, let hello = link.remoteHello, hello.fastdpCapable else { return false }
        return !LinkPolicy.encrypted(passwordSet: passwordSet, trusted: link.trusted)
    }

    /// Heartbeats to every eligible neighbour, then the mode of every connection re-decided.
    func fastdpTick() {
        guard let state = fastdpState, let sleeve, let overlayMTU else { return }
        let now = SleeveEngine.monotonicNanos()
        let own = topology.own.shortId
        var changed = false
        for (name, link) in established {
            guard let session = sleeve.sessions[name] else { continue }
            if let hello = link.remoteHello { session.fastdp.tunnelPort.store(UInt16(truncatingIfNeeded: FastdpWire.vxlanPort(routerPort: Int(hello.sleevePort))), ordering: .relaxed) }
            if fastdpEligible(link) {
                state.engine.sendHeartbeat(to: session, own: own, sourceMAC: config.name.bytes,
                                           frameSize: FastdpHeartbeat.size(overlayMTU: overlayMTU), now: now)
            }
            let decision = decideMode(link, session: session, now: now)
            let fastdpNow = decision.mode == .fastdp
            if session.fastdp.selected.exchange(fastdpNow, ordering: .relaxed) != fastdpNow { changed = true }
            if state.decisions[name] != decision {
                if state.decisions[name]?.mode != decision.mode || state.decisions[name] == nil {
                    logger.info("connection mode", metadata: [
                        "peer": "\(name)", "mode": "\(decision.mode.rawValue)", "reason": "\(decision.reason ?? "preferred")",
                    ])
                }
                state.decisions[name] = decision
            }
        }
        for name in state.decisions.keys where established[name] == nil { state.decisions[name] = nil }
        if changed { state.engine.revalidate() }
    }

    /// docs/design.md §5 for one connection, with the heartbeat evidence of its session.
    func decideMode(_ link: Link, session: SleeveSession?, now: Int64) -> ModeDecision {
        let heartbeats: ModeSelection.Heartbeats
        switch session?.fastdp.staleness(now: now) {
        case nil: heartbeats = .waiting
        case let stale? where stale <= FastdpState.holdAfterNanos: heartbeats = .ok
        case let stale?: heartbeats = .lost(seconds: Int((Double(stale) / 1e9).rounded(.up)))
        }
        var decision = ModeSelection.decide(passwordSet: passwordSet, trusted: link.trusted,
                                            localFastdp: fastdp.available ? nil : fastdp.reason,
                                            remoteFastdp: link.remoteHello?.fastdpCapable ?? false, heartbeats: heartbeats)
        // A heartbeat that cannot fit the underlay path says so, with the figures (docs/design.md §7).
        if decision.mode == .sleeve, decision.preferred == .fastdp, heartbeats != .ok, let session, fastdpState != nil, let overlayMTU {
            let family = session.remoteAddress.family
            let underlayPath = session.pathPayloadBytes + family.udpHeaders
            if underlayPath < overlayMTU + family.fastdpOverhead {
                decision.reason = "fastdp on hold: underlay path MTU \(underlayPath) too small for overlay MTU \(overlayMTU)"
            }
        }
        return decision
    }

    /// The data-plane mode of an established link, as status shows it and the gossip reports it:
    /// fastdp when so decided and the link has its sleeve session (which fastdp's flows are
    /// keyed on), sleeve with a session, no data plane without one.
    func dataPlaneMode(of link: Link, decision: ModeDecision) -> DataPlaneReport.Mode {
        guard let name = link.remoteName, sleeve?.sessions[name] != nil else { return .noDataPlane }
        return decision.mode == .fastdp ? .fastdp : .sleeve
    }

    /// What this router gossips of an established link's data plane (docs/protocol.md §4).
    func dataPlaneReport(of link: Link) -> DataPlaneReport {
        DataPlaneReport(mode: dataPlaneMode(of: link, decision: modeDecision(for: link)),
                        encrypted: LinkPolicy.encrypted(passwordSet: passwordSet, trusted: link.trusted))
    }

    /// The mode decision status shows for an established link.
    func modeDecision(for link: Link) -> ModeDecision {
        if let name = link.remoteName, let decision = fastdpState?.decisions[name] { return decision }
        return decideMode(link, session: link.remoteName.flatMap { sleeve?.sessions[$0] }, now: SleeveEngine.monotonicNanos())
    }
}
