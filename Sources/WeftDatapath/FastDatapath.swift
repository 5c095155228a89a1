// The fast datapath (docs/design.md §4): an Open vSwitch kernel datapath with a VXLAN vport, joined to
// the `weft` bridge by a veth pair. The kernel forwards by flows; packets no flow matches come
// up to a miss thread here, which decides (FastdpForwarding), executes the packet and installs
// the flow. Flows idle for `idleFlowMillis` expire; route, mode and MAC changes revalidate them.
import Foundation
import Glibc
import Synchronization
import WeftNetlink
import WeftWire

public final class FastDatapath: FrameHandoff, @unchecked Sendable {  // the miss thread owns `installed`; the rest is immutable, atomic or locked
    public static let vxlanVportName = "weft-vxlan"
    /// How long a flow may go unused before it is removed.
    static let idleFlowMillis: UInt64 = 10_000

    public let datapath: Int32
    public let ports: FastdpPorts
    /// The forwarding and MAC tables, shared with sleeve, and the way to its hand-off.
    private let forwarding: Forwarding
    /// The miss thread's client (execute, flows) and the control plane's (heartbeats, stats):
    /// one netlink socket each, so neither waits for the other.
    private let missClient: ODPClient
    private let controlClient: Mutex<ODPClient>
    private let upcalls: UpcallSocket
    /// Installed flows: their actions and when they were installed (CLOCK_MONOTONIC ms).
    /// Miss thread only.
    private var installed: [FlowKey: (actions: [FlowAction], since: UInt64)] = [:]
    /// Flows installed now (for status and metrics).
    public let flowCount = Atomic<Int>(0)
    private let revalidateRequested = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchGroup()

    /// Creates (or adopts) datapath `name`, its VXLAN vport on UDP `vxlanPort` and a netdev vport
    /// for `bridgeVeth` (the datapath end of the veth pair whose other end is a bridge port).
    /// Flows of an earlier run are flushed: they were decided with short ids that may be stale.
    public init(name: String, bridgeVeth: String, vxlanPort: UInt16, forwarding: Forwarding) throws {
        missClient = try ODPClient.open()
        let control = try ODPClient.open()
        controlClient = Mutex(control)
        upcalls = try missClient.openUpcallSocket()
        self.forwarding = forwarding
        let dp = try control.createDatapath(name: name, upcallPID: upcalls.pid)
        datapath = dp
        do {
            ports = try Self.setUpPorts(control, datapath: dp, bridgeVeth: bridgeVeth, vxlanPort: vxlanPort, upcallPID: upcalls.pid)
        } catch {
            // Half a datapath must not stay behind: the router runs on sleeve alone.
            _ = try? control.deleteDatapath(name: name)
            throw error
        }
    }

    private static func setUpPorts(_ control: ODPClient, datapath dp: Int32, bridgeVeth: String, vxlanPort: UInt16,
                                   upcallPID: UInt32) throws -> FastdpPorts {
        try control.flushFlows(datapath: dp)
        var bridgePort: UInt32?
        for vport in try control.vports(datapath: dp) {
            switch vport.type {
            case .vxlan:
                // Its UDP port cannot be read back: make it anew on ours.
                try control.deleteVport(datapath: dp, portNo: vport.portNo)
            case .netdev where vport.name == bridgeVeth:
                try control.setUpcallPID(datapath: dp, portNo: vport.portNo, pid: upcallPID)
                bridgePort = vport.portNo
            default:
                break
            }
        }
        let bridge = try bridgePort ?? control.createNetdevVport(datapath: dp, ifname: bridgeVeth, upcallPID: upcallPID)
        let vxlan: UInt32
        do {
            vxlan = try control.createVXLANVport(datapath: dp, name: Self.vxlanVportName, port: vxlanPort, upcallPID: upcallPID)
        } catch let error as NetlinkError where error.errno == EEXIST || error.errno == EADDRINUSE {
            throw DatapathError("UDP port \(vxlanPort) for the fastdp VXLAN vport is taken (\(error)); free it or use --port")
        }
        return FastdpPorts(bridge: bridge, vxlan: vxlan)
    }

    public func start() {
        forwarding.attach(fastdp: self)
        DataPlaneThread.start("weft-fastdp", finished: finished) { [self] in missLoop() }
    }

    /// Stops the miss thread and deletes the datapath: without a router nothing may keep
    /// forwarding by flows decided for a mesh that is gone.
    public func stop(deleteDatapath name: String) {
        forwarding.attach(fastdp: nil)
        stopping.store(true, ordering: .relaxed)
        _ = finished.wait(timeout: .now() + 3)
        controlClient.withLock { _ = try? $0.deleteDatapath(name: name) }
    }

    /// Asks the miss thread to re-check every flow (routes, modes or MACs changed).
    public func revalidate() { revalidateRequested.store(true, ordering: .relaxed) }

    // MARK: heartbeats

    /// Sends a heartbeat of `frameSize` bytes to neighbour `session` through the VXLAN vport.
    /// Control plane (router thread). Returns false when the kernel refused it.
    @discardableResult
    public func sendHeartbeat(to session: SleeveSession, own: UInt16, sourceMAC: [UInt8], frameSize: Int, now: Int64) -> Bool {
        let heartbeat = FastdpHeartbeat(sender: own, stamp: now, echo: session.fastdp.peerStamp.load(ordering: .relaxed))
        return tunnel(heartbeat.frame(source: sourceMAC, size: frameSize), source: own, destination: session.peerShortId, via: session)
    }

    /// Encapsulates `packet` towards neighbour `session` and sends it out of the VXLAN vport.
    private func tunnel(_ packet: [UInt8], source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool {
        guard let encapsulate = FastdpForwarding.tunnel(to: session, source: source, destination: destination) else { return false }
        return controlClient.withLock { client in
            (try? client.execute(datapath: datapath, packet: packet, key: FlowKey(inPort: ports.bridge),
                                 actions: encapsulate + [.output(port: ports.vxlan)])) != nil
        }
    }

    /// Sends one frame (from the TAP thread, which the bridge still gave it) to neighbour
    /// `session` through the VXLAN vport. A transitional path, one system call per frame, used
    /// until both bridges have learned that the peer's MACs are behind the datapath port.
    func handOff(_ frame: UnsafeRawPointer, length: Int, source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool {
        guard length >= Overhead.ethernetHeader else { return false }
        return tunnel([UInt8](UnsafeRawBufferPointer(start: frame, count: length)), source: source, destination: destination, via: session)
    }

    /// A heartbeat arrived from `tunnelSource` (16 bytes, IPv4 mapped): record it on the neighbour it names.
    private func received(_ heartbeat: FastdpHeartbeat, vni: UInt64, tunnelSource: [UInt8], table: ForwardingTable, now: Int64) {
        let (source, _) = FastdpWire.peers(vni: vni)
        guard source == heartbeat.sender, let session = table.session(source),
              table.neighbour(tunnelSource: tunnelSource) == source else { return }
        session.fastdp.heard(stamp: heartbeat.stamp, echo: heartbeat.echo, now: now)
    }

    // MARK: misses

    private func missLoop() {
        var lastRevalidate = SleeveEngine.monotonicNanos()
        var lastExpiry = lastRevalidate
        while !stopping.load(ordering: .relaxed) {
            let batch = (try? upcalls.receive(timeoutMillis: 100)) ?? []
            let table = forwarding.current
            let now = SleeveEngine.monotonicNanos()
            for miss in batch { handle(miss, table: table, now: now) }
            // MACs learned by sleeve do not call in: a periodic pass catches them too.
            if revalidateRequested.exchange(false, ordering: .relaxed) || now - lastRevalidate > 1_000_000_000 {
                revalidateFlows(table: table)
                lastRevalidate = now
            }
            if now - lastExpiry > 2_000_000_000 {
                expireIdleFlows()
                lastExpiry = now
            }
        }
    }

    private func handle(_ miss: Miss, table: ForwardingTable, now: Int64) {
        if miss.key.inPort == ports.vxlan, let ethernet = miss.key.ethernet, let tunnel = miss.key.tunnel,
           FastdpHeartbeat.isHeartbeat(destination: ethernet.destination) {
            if let heartbeat = FastdpHeartbeat(frame: miss.packet) {
                received(heartbeat, vni: tunnel.id, tunnelSource: tunnel.source16, table: table, now: now)
            }
            return
        }
        let plan = FastdpForwarding.plan(key: miss.key, table: table, macs: forwarding.macs, ports: ports)
        if let learn = plan.learn, forwarding.macs.learn(learn.mac, peer: learn.peer) {
            revalidateRequested.store(true, ordering: .relaxed)
        }
        if !plan.actions.isEmpty {
            _ = try? missClient.execute(datapath: datapath, packet: miss.packet, key: miss.key, actions: plan.actions)
        }
        for handoff in plan.handoffs {
            guard let session = table.session(handoff.hop) else { continue }
            _ = miss.packet.withUnsafeBytes { raw in
                raw.baseAddress.map {
                    forwarding.handToSleeve($0, length: raw.count, source: handoff.source, destination: handoff.destination, via: session)
                }
            }
        }
        guard plan.install else { return }
        let key = FastdpForwarding.flowKey(miss.key)
        if installed[key]?.actions == plan.actions { return }
        if (try? missClient.createFlow(datapath: datapath, key: key, mask: key.exactMask, actions: plan.actions)) != nil {
            installed[key] = (plan.actions, UInt64(now / 1_000_000))
            flowCount.store(installed.count, ordering: .relaxed)
        }
    }

    /// Deletes every flow whose decision would now differ: the next packet decides anew.
    private func revalidateFlows(table: ForwardingTable) {
        var changed = false
        for (key, entry) in installed {
            let plan = FastdpForwarding.plan(key: key, table: table, macs: forwarding.macs, ports: ports)
            if plan.install && plan.actions == entry.actions {
                // Packets of this flow never come up: keep their source MAC known when the table
                // forgot it (purged or started over), or sleeve would take them for local. A MAC
                // known elsewhere has moved: this flow then idles out.
                if let learn = plan.learn, forwarding.macs.lookup(learn.mac) == nil { forwarding.macs.learn(learn.mac, peer: learn.peer) }
                continue
            }
            _ = try? missClient.deleteFlow(datapath: datapath, key: key)
            installed[key] = nil
            changed = true
        }
        if changed { flowCount.store(installed.count, ordering: .relaxed) }
    }

    /// Removes flows unused for `idleFlowMillis` (the kernel's `used` is in CLOCK_MONOTONIC ms;
    /// a flow never hit counts from its installation), flows that are not ours (an earlier
    /// run's), and forgets flows the kernel no longer has.
    private func expireIdleFlows() {
        guard let flows = try? missClient.flows(datapath: datapath) else { return }
        let nowMillis = UInt64(SleeveEngine.monotonicNanos() / 1_000_000)
        var present = Set<FlowKey>()
        for flow in flows {
            let key = FastdpForwarding.flowKey(flow.key)
            guard let entry = installed[key], nowMillis <= (flow.usedMillis ?? entry.since) + Self.idleFlowMillis else {
                _ = try? missClient.deleteFlow(datapath: datapath, key: flow.key)
                continue
            }
            present.insert(key)
        }
        installed = installed.filter { present.contains($0.key) }
        flowCount.store(installed.count, ordering: .relaxed)
    }
}
