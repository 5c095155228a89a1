import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// Why the fast datapath cannot be used at all.
public enum ODPError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The ovs_* generic netlink families are missing and the kernel could not load them.
    case moduleUnavailable

    public var description: String {
        switch self {
        case .moduleUnavailable: return "kernel has no openvswitch module"
        }
    }
}

/// A datapath as OVS_DP_CMD_GET reports it.
public struct DatapathInfo: Sendable, Equatable {
    public let name: String
    /// ifindex of its internal port (port 0, a netdev of the same name): the `datapath` argument
    /// of every other call.
    public let ifindex: Int32
    public let userFeatures: UInt32
    /// Packets that matched a flow, missed (upcalled), and were lost (upcall could not be queued).
    public let hits: UInt64
    public let misses: UInt64
    public let lost: UInt64
    public let flows: UInt64
}

public enum VportType: Sendable, Equatable {
    case netdev, `internal`, gre, vxlan, geneve
    case other(UInt32)

    init(raw: UInt32) {
        switch Int(raw) {
        case ovsAttr(OVS_VPORT_TYPE_NETDEV): self = .netdev
        case ovsAttr(OVS_VPORT_TYPE_INTERNAL): self = .internal
        case ovsAttr(OVS_VPORT_TYPE_GRE): self = .gre
        case ovsAttr(OVS_VPORT_TYPE_VXLAN): self = .vxlan
        case ovsAttr(OVS_VPORT_TYPE_GENEVE): self = .geneve
        default: self = .other(raw)
        }
    }
}

/// A datapath port as OVS_VPORT_CMD_GET reports it.
public struct VportInfo: Sendable, Equatable {
    public let portNo: UInt32
    public let type: VportType
    public let name: String
    /// Netlink port ids its misses go to (several only with VPORT_PIDS); [0] = no upcalls.
    public let upcallPIDs: [UInt32]
}

private let maxDPAttr = Int(__OVS_DP_ATTR_MAX.rawValue) - 1
private let maxVportAttr = Int(__OVS_VPORT_ATTR_MAX.rawValue) - 1
private let maxFlowAttr = Int(__OVS_FLOW_ATTR_MAX.rawValue) - 1
private let maxPacketAttr = Int(__OVS_PACKET_ATTR_MAX.rawValue) - 1
/// genlmsghdr + struct ovs_header { int dp_ifindex; }: the fixed part of every OVS message.
private let ovsFixedSize = genlHeaderSize + MemoryLayout<ovs_header>.size

/// Features asked for on every datapath: upcall packets may end unaligned (no padding copy),
/// and a vport may carry several upcall pids. Per-CPU dispatch stays off, so vport pids count.
private let datapathFeatures = UInt32(OVS_DP_F_UNALIGNED) | UInt32(OVS_DP_F_VPORT_PIDS)

/// The fixed header and attributes of one OVS reply; valid only inside the reply callback.
private struct OVSMessage {
    let cmd: UInt8
    let datapath: Int32
    let attributes: AttributeTable

    init?(_ nlh: UnsafePointer<nlmsghdr>, family: GenericNetlinkFamily, maxType: Int) {
        guard nlh.pointee.nlmsg_type == family.id,
              Int(mnl_nlmsg_get_payload_len(nlh)) >= ovsFixedSize,
              let payload = mnl_nlmsg_get_payload(nlh) else { return nil }
        cmd = payload.load(as: UInt8.self)
        datapath = payload.loadUnaligned(fromByteOffset: genlHeaderSize, as: Int32.self)
        attributes = AttributeTable(message: nlh, offset: ovsFixedSize, maxType: maxType)
    }
}

/// Client of the Open vSwitch kernel datapath over generic netlink (one socket, requests
/// serialized), bound to the network namespace it was opened in. Datapaths are per namespace.
public final class ODPClient: @unchecked Sendable {
    private let socket: NetlinkSocket
    private let datapathFamily: GenericNetlinkFamily
    private let vportFamily: GenericNetlinkFamily
    private let flowFamily: GenericNetlinkFamily
    private let packetFamily: GenericNetlinkFamily
    /// A dup of the namespace fd given to `open(inNamespaceFd:)`, for the upcall socket.
    private let namespaceFd: Int32?

    private init(socket: NetlinkSocket, families: [GenericNetlinkFamily], namespaceFd: Int32?) {
        self.socket = socket
        datapathFamily = families[0]
        vportFamily = families[1]
        flowFamily = families[2]
        packetFamily = families[3]
        self.namespaceFd = namespaceFd
    }

    deinit { if let namespaceFd { close(namespaceFd) } }

    /// Opens a client in the calling thread's namespace, resolving the four OVS families (this
    /// is where a missing module shows: `ODPError.moduleUnavailable`).
    public static func open() throws -> ODPClient {
        try open(namespaceFd: nil)
    }

    /// Opens a client whose sockets live in the namespace `fd` refers to (the caller's thread
    /// stays put), like `RouteNetlink.inNamespace`; the fd may be closed afterwards.
    public static func open(inNamespaceFd fd: Int32) throws -> ODPClient {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw NetlinkError(operation: "duplicate namespace fd \(fd)", errno: errno) }
        do {
            return try NetworkNamespace.perform(inNamespaceFd: fd) { try open(namespaceFd: copy) }
        } catch {
            close(copy)
            throw error
        }
    }

    private static func open(namespaceFd: Int32?) throws -> ODPClient {
        let socket = try NetlinkSocket(bus: NETLINK_GENERIC)
        var families: [GenericNetlinkFamily] = []
        for name in [OVS_DATAPATH_FAMILY, OVS_VPORT_FAMILY, OVS_FLOW_FAMILY, OVS_PACKET_FAMILY] {
            guard let family = try socket.genericFamily(named: name) else { throw ODPError.moduleUnavailable }
            families.append(family)
        }
        return ODPClient(socket: socket, families: families, namespaceFd: namespaceFd)
    }

    // MARK: Datapaths

    /// Creates datapath `name` (its internal port 0 becomes a netdev `name`) with the features
    /// Weft needs and returns its ifindex. One that exists is adopted: features and the upcall
    /// pid of port 0 are set again, so a restarted router keeps its flows and ports.
    public func createDatapath(name: String, upcallPID: UInt32) throws -> Int32 {
        let operation = "create datapath '\(name)'"
        try checkName(name, operation)
        var ifindex: Int32?
        do {
            try request(operation, datapathFamily, cmd: OVS_DP_CMD_NEW, datapath: 0,
                        flags: NLM_F_ECHO, build: { m in
                m.putString(ovsAttr(OVS_DP_ATTR_NAME), name)
                m.putU32(ovsAttr(OVS_DP_ATTR_UPCALL_PID), upcallPID)
                m.putU32(ovsAttr(OVS_DP_ATTR_USER_FEATURES), datapathFeatures)
            }, onReply: { ifindex = $0.datapath })
        } catch let exists as NetlinkError where exists.errno == EEXIST {
            do {
                try request("adopt datapath '\(name)'", datapathFamily, cmd: OVS_DP_CMD_SET, datapath: 0,
                            flags: NLM_F_ECHO, build: { m in
                    m.putString(ovsAttr(OVS_DP_ATTR_NAME), name)
                    m.putU32(ovsAttr(OVS_DP_ATTR_USER_FEATURES), datapathFeatures)
                }, onReply: { ifindex = $0.datapath })
            } catch let error as NetlinkError where error.errno == ENODEV {
                throw NetlinkError(operation: operation, errno: EEXIST,
                                   detail: "a network device named '\(name)' exists and is not a datapath")
            }
            if let ifindex { try setUpcallPID(datapath: ifindex, portNo: 0, pid: upcallPID) }
        }
        guard let ifindex else { throw missingReply(operation) }
        return ifindex
    }

    /// The datapath called `name`, or nil: how a router finds the one it left behind.
    public func datapath(named name: String) throws -> DatapathInfo? {
        let operation = "look up datapath '\(name)'"
        try checkName(name, operation)
        var found: DatapathInfo?
        do {
            try request(operation, datapathFamily, cmd: OVS_DP_CMD_GET, datapath: 0, build: { m in
                m.putString(ovsAttr(OVS_DP_ATTR_NAME), name)
            }, onReply: { reply in
                let a = reply.attributes
                let stats = a.bytes(ovsAttr(OVS_DP_ATTR_STATS)) ?? []
                func stat(_ i: Int) -> UInt64 {
                    stats.count >= 32 ? stats.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) } : 0
                }
                found = DatapathInfo(name: a.string(ovsAttr(OVS_DP_ATTR_NAME)) ?? name, ifindex: reply.datapath,
                                     userFeatures: a.u32(ovsAttr(OVS_DP_ATTR_USER_FEATURES)) ?? 0,
                                     hits: stat(0), misses: stat(1), lost: stat(2), flows: stat(3))
            })
        } catch let error as NetlinkError where error.errno == ENODEV {
            return nil
        }
        return found
    }

    /// Deletes the datapath with all its ports and flows; one that is not there is success.
    public func deleteDatapath(name: String) throws {
        let operation = "delete datapath '\(name)'"
        try checkName(name, operation)
        do {
            try request(operation, datapathFamily, cmd: OVS_DP_CMD_DEL, datapath: 0, build: { m in
                m.putString(ovsAttr(OVS_DP_ATTR_NAME), name)
            })
        } catch let error as NetlinkError where error.errno == ENODEV {
            return
        }
    }

    // MARK: Vports

    /// Adds a VXLAN vport: the kernel creates a collect-metadata vxlan netdev `name` listening
    /// on UDP `port` (one vport per port). Returns its port number. EEXIST/EADDRINUSE (the port
    /// is taken, possibly by a vport whose deletion has not finished yet) is retried briefly.
    public func createVXLANVport(datapath: Int32, name: String, port: UInt16, upcallPID: UInt32) throws -> UInt32 {
        let operation = "create VXLAN vport '\(name)' on UDP \(port)"
        try checkName(name, operation)
        var attempt = 0
        while true {
            do {
                return try createVport(operation, datapath: datapath, type: OVS_VPORT_TYPE_VXLAN, name: name,
                                       upcallPID: upcallPID) { m in
                    m.nest(ovsAttr(OVS_VPORT_ATTR_OPTIONS)) {
                        m.putU16(Int(OVS_TUNNEL_ATTR_DST_PORT), port)  // host order: the kernel swaps it
                    }
                }
            } catch let error as NetlinkError where error.errno == EADDRINUSE || error.errno == EEXIST {
                attempt += 1
                if attempt < 5 {
                    usleep(20_000)
                    continue
                }
                throw NetlinkError(operation: operation, errno: error.errno, detail: error.detail ??
                    "UDP port \(port) is used by another VXLAN device, or a device named '\(name)' exists")
            }
        }
    }

    /// Attaches the existing netdev `ifname` (a veth end) as a port; from then on the datapath
    /// receives all of its traffic. Returns its port number.
    public func createNetdevVport(datapath: Int32, ifname: String, upcallPID: UInt32) throws -> UInt32 {
        let operation = "attach '\(ifname)' to datapath \(datapath)"
        try checkName(ifname, operation)
        return try createVport(operation, datapath: datapath, type: OVS_VPORT_TYPE_NETDEV, name: ifname,
                               upcallPID: upcallPID) { _ in }
    }

    /// The ports of a datapath, port 0 (its internal port) included: for cleanup and adoption.
    public func vports(datapath: Int32) throws -> [VportInfo] {
        let operation = "list vports of datapath \(datapath)"
        var result: [VportInfo] = []
        try retryingInterruptedDump {
            result = []
            try request(operation, vportFamily, cmd: OVS_VPORT_CMD_GET, datapath: datapath,
                        flags: NLM_F_DUMP, ack: false, build: { _ in }, onReply: { reply in
                let a = reply.attributes
                guard reply.datapath == datapath, let portNo = a.u32(ovsAttr(OVS_VPORT_ATTR_PORT_NO)) else { return }
                let pids = (a.bytes(ovsAttr(OVS_VPORT_ATTR_UPCALL_PID)) ?? []).withUnsafeBytes { raw in
                    (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) }
                }
                result.append(VportInfo(portNo: portNo, type: VportType(raw: a.u32(ovsAttr(OVS_VPORT_ATTR_TYPE)) ?? 0),
                                        name: a.string(ovsAttr(OVS_VPORT_ATTR_NAME)) ?? "", upcallPIDs: pids))
            })
        }
        return result
    }

    /// Removes a port (a netdev is released, a VXLAN netdev destroyed); a missing one is success.
    public func deleteVport(datapath: Int32, portNo: UInt32) throws {
        let operation = "delete vport \(portNo) of datapath \(datapath)"
        do {
            try request(operation, vportFamily, cmd: OVS_VPORT_CMD_DEL, datapath: datapath, build: { m in
                m.putU32(ovsAttr(OVS_VPORT_ATTR_PORT_NO), portNo)
            })
        } catch let error as NetlinkError where error.errno == ENODEV {
            return
        }
    }

    /// Points a port's misses at `pid` (an upcall socket's port id): for ports made before it.
    public func setUpcallPID(datapath: Int32, portNo: UInt32, pid: UInt32) throws {
        try request("set upcall pid of vport \(portNo) of datapath \(datapath) to \(pid)", vportFamily,
                    cmd: OVS_VPORT_CMD_SET, datapath: datapath, build: { m in
            m.putU32(ovsAttr(OVS_VPORT_ATTR_PORT_NO), portNo)
            m.putU32(ovsAttr(OVS_VPORT_ATTR_UPCALL_PID), pid)
        })
    }

    private func createVport(_ operation: String, datapath: Int32, type: ovs_vport_type, name: String,
                             upcallPID: UInt32, options: (MessageBuilder) -> Void) throws -> UInt32 {
        var portNo: UInt32?
        try request(operation, vportFamily, cmd: OVS_VPORT_CMD_NEW, datapath: datapath,
                    flags: NLM_F_ECHO, build: { m in
            m.putU32(ovsAttr(OVS_VPORT_ATTR_TYPE), type.rawValue)
            m.putString(ovsAttr(OVS_VPORT_ATTR_NAME), name)
            m.putU32(ovsAttr(OVS_VPORT_ATTR_UPCALL_PID), upcallPID)
            options(m)
        }, onReply: { reply in
            if let no = reply.attributes.u32(ovsAttr(OVS_VPORT_ATTR_PORT_NO)) { portNo = no }
        })
        guard let portNo else { throw missingReply(operation) }
        return portNo
    }

    // MARK: Flows

    /// Installs a flow. If one with the same key exists (EEXIST) and the same mask, its actions
    /// are replaced in place (SET); with another mask it is deleted and the flow created anew.
    public func createFlow(datapath: Int32, key: FlowKey, mask: FlowKey, actions: [FlowAction]) throws {
        let operation = "create flow in datapath \(datapath)"
        let body: (MessageBuilder) -> Void = { m in
            m.nest(ovsAttr(OVS_FLOW_ATTR_KEY)) { m.putFlowKey(key) }
            m.nest(ovsAttr(OVS_FLOW_ATTR_MASK)) { m.putFlowKey(mask) }
            m.nest(ovsAttr(OVS_FLOW_ATTR_ACTIONS)) { m.putActions(actions) }
        }
        do {
            try request(operation, flowFamily, cmd: OVS_FLOW_CMD_NEW, datapath: datapath,
                        flags: NLM_F_CREATE | NLM_F_EXCL, build: body)
        } catch let error as NetlinkError where error.errno == EEXIST {
            if try flow(datapath: datapath, key: key)?.mask == mask {
                try request("replace actions of flow in datapath \(datapath)", flowFamily, cmd: OVS_FLOW_CMD_SET,
                            datapath: datapath, build: body)
            } else {
                try deleteFlow(datapath: datapath, key: key)
                try request(operation, flowFamily, cmd: OVS_FLOW_CMD_NEW, datapath: datapath,
                            flags: NLM_F_CREATE | NLM_F_EXCL, build: body)
            }
        }
    }

    /// Removes the flow installed with exactly this (unmasked) key; false when there was none.
    @discardableResult
    public func deleteFlow(datapath: Int32, key: FlowKey) throws -> Bool {
        do {
            try request("delete flow in datapath \(datapath)", flowFamily, cmd: OVS_FLOW_CMD_DEL,
                        datapath: datapath, build: { m in
                m.nest(ovsAttr(OVS_FLOW_ATTR_KEY)) { m.putFlowKey(key) }
            })
            return true
        } catch let error as NetlinkError where error.errno == ENOENT {
            return false
        }
    }

    /// Every flow of the datapath with its stats: for expiry and for tests.
    public func flows(datapath: Int32) throws -> [FlowInfo] {
        var result: [FlowInfo] = []
        try retryingInterruptedDump {
            result = []
            try request("list flows of datapath \(datapath)", flowFamily, cmd: OVS_FLOW_CMD_GET, datapath: datapath,
                        flags: NLM_F_DUMP, ack: false, build: { _ in }, onReply: { reply in
                if let info = parseFlow(reply.attributes) { result.append(info) }
            })
        }
        return result
    }

    /// Removes every flow of the datapath (a DEL without key): at startup and on topology change.
    public func flushFlows(datapath: Int32) throws {
        try request("flush flows of datapath \(datapath)", flowFamily, cmd: OVS_FLOW_CMD_DEL,
                    datapath: datapath, build: { _ in })
    }

    /// The flow installed with exactly this key, or nil.
    private func flow(datapath: Int32, key: FlowKey) throws -> FlowInfo? {
        var found: FlowInfo?
        do {
            try request("look up flow in datapath \(datapath)", flowFamily, cmd: OVS_FLOW_CMD_GET,
                        datapath: datapath, build: { m in
                m.nest(ovsAttr(OVS_FLOW_ATTR_KEY)) { m.putFlowKey(key) }
            }, onReply: { found = parseFlow($0.attributes) })
        } catch let error as NetlinkError where error.errno == ENOENT {
            return nil
        }
        return found
    }

    // MARK: Packets

    /// Sends `packet` through `actions` as if it had arrived with `key`'s metadata (in_port,
    /// tunnel): how the router forwards the packet that caused a miss.
    public func execute(datapath: Int32, packet: [UInt8], key: FlowKey, actions: [FlowAction]) throws {
        let operation = "execute a \(packet.count)-byte packet in datapath \(datapath)"
        guard packet.count >= 14, packet.count <= netlinkBufferSize - 1024 else {
            throw NetlinkError(operation: operation, errno: packet.count < 14 ? EINVAL : EMSGSIZE,
                               detail: "packets of 14…\(netlinkBufferSize - 1024) bytes only")
        }
        try request(operation, packetFamily, cmd: OVS_PACKET_CMD_EXECUTE, datapath: datapath, build: { m in
            m.putBytes(ovsAttr(OVS_PACKET_ATTR_PACKET), packet)
            m.nest(ovsAttr(OVS_PACKET_ATTR_KEY)) { m.putFlowKey(key) }
            m.nest(ovsAttr(OVS_PACKET_ATTR_ACTIONS)) { m.putActions(actions) }
        })
    }

    /// Opens a socket for miss upcalls in the client's namespace; give its `pid` to
    /// `createDatapath`/`create…Vport`/`setUpcallPID`.
    public func openUpcallSocket() throws -> UpcallSocket {
        let family = packetFamily.id
        if let namespaceFd {
            return try NetworkNamespace.perform(inNamespaceFd: namespaceFd) { try UpcallSocket(packetFamily: family) }
        }
        return try UpcallSocket(packetFamily: family)
    }

    // MARK: Helpers

    /// One OVS request: genl header (datapath family: version 2, for the user-features
    /// semantics; others 1), ovs_header, attributes; ACKed unless it is a dump.
    private func request<Cmd: RawRepresentable>(
        _ operation: @autoclosure () -> String, _ family: GenericNetlinkFamily, cmd: Cmd, datapath: Int32,
        flags: Int32 = 0, ack: Bool = true, build: (MessageBuilder) -> Void,
        onReply: ((OVSMessage) -> Void)? = nil
    ) throws where Cmd.RawValue: BinaryInteger {
        let version: UInt8 = family.id == datapathFamily.id ? UInt8(OVS_DATAPATH_VERSION) : 1
        let maxType: Int
        switch family.id {
        case datapathFamily.id: maxType = maxDPAttr
        case vportFamily.id: maxType = maxVportAttr
        case flowFamily.id: maxType = maxFlowAttr
        default: maxType = maxPacketAttr
        }
        try socket.request(operation(), type: Int(family.id), flags: NLM_F_REQUEST | (ack ? NLM_F_ACK : 0) | flags,
                           build: { m in
            m.putGenlHeader(cmd: UInt8(cmd.rawValue), version: version)
            m.putHeader(ovs_header.self) { $0.dp_ifindex = datapath }
            build(m)
        }, onMessage: { nlh in
            if let onReply, let message = OVSMessage(nlh, family: family, maxType: maxType) { onReply(message) }
        })
    }

    private func missingReply(_ operation: String) -> NetlinkError {
        NetlinkError(operation: operation, errno: EPROTO, detail: "the kernel's reply was missing or incomplete")
    }
}

/// A flow from a GET or dump reply.
private func parseFlow(_ a: AttributeTable) -> FlowInfo? {
    guard let key = a[ovsAttr(OVS_FLOW_ATTR_KEY)] else { return nil }
    let stats = a.bytes(ovsAttr(OVS_FLOW_ATTR_STATS)) ?? []
    func stat(_ i: Int) -> UInt64 {
        stats.count >= 16 ? stats.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) } : 0
    }
    return FlowInfo(key: parseFlowKey(key),
                    mask: a[ovsAttr(OVS_FLOW_ATTR_MASK)].map(parseFlowKey) ?? FlowKey(),
                    actions: a[ovsAttr(OVS_FLOW_ATTR_ACTIONS)].map(parseActions) ?? [],
                    packets: stat(0), bytes: stat(1), usedMillis: a.u64(ovsAttr(OVS_FLOW_ATTR_USED)))
}

/// A netlink socket that receives the datapath's miss upcalls. Its port id is the upcall pid to
/// hand to the datapath and vports; the kernel unicasts each miss to it. One reader at a time.
public final class UpcallSocket: @unchecked Sendable {
    /// The netlink port id: the `upcallPID` for datapaths and vports.
    public let pid: UInt32
    /// Times the kernel reported that upcalls were dropped because this socket's buffer was full.
    public private(set) var overflows = 0
    private let socket: NetlinkSocket
    private let packetFamily: UInt16
    private let buffer: UnsafeMutableRawBufferPointer

    fileprivate init(packetFamily: UInt16) throws {
        socket = try NetlinkSocket(bus: NETLINK_GENERIC)
        socket.setReceiveBuffer(4 << 20)
        pid = socket.portID
        self.packetFamily = packetFamily
        // A whole upcall in one read: a 64 KiB packet plus key and headers.
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 80 * 1024, alignment: 8)
    }

    deinit { buffer.deallocate() }

    /// Waits up to `timeoutMillis` (-1 = forever) and returns the misses queued by then
    /// (empty on timeout); ACTION upcalls and other messages are skipped.
    public func receive(timeoutMillis: Int32) throws -> [Miss] {
        var misses: [Miss] = []
        let family = packetFamily
        let (_, overflowed) = try socket.receiveUnsolicited(timeoutMillis: timeoutMillis, buffer: buffer) { nlh in
            guard nlh.pointee.nlmsg_type == family,
                  Int(mnl_nlmsg_get_payload_len(nlh)) >= ovsFixedSize,
                  let payload = mnl_nlmsg_get_payload(nlh),
                  payload.load(as: UInt8.self) == UInt8(OVS_PACKET_CMD_MISS.rawValue) else { return }
            let datapath = payload.loadUnaligned(fromByteOffset: genlHeaderSize, as: Int32.self)
            let a = AttributeTable(message: nlh, offset: ovsFixedSize, maxType: maxPacketAttr)
            guard let packet = a.bytes(ovsAttr(OVS_PACKET_ATTR_PACKET)) else { return }
            let key = a[ovsAttr(OVS_PACKET_ATTR_KEY)].map(parseFlowKey) ?? FlowKey()
            misses.append(Miss(datapath: datapath, key: key, packet: packet))
        }
        overflows += overflowed
        return misses
    }
}
