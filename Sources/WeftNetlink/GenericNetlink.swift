import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// A generic netlink family as the controller (nlctrl) describes it. Family ids and multicast
/// group ids are assigned when the family registers, so they are always looked up by name.
struct GenericNetlinkFamily: Sendable, Equatable {
    let name: String
    /// The nlmsg_type of this family's messages.
    let id: UInt16
    /// The family's version as registered (informational; requests carry their own).
    let version: UInt32
    /// Multicast group name → group id (for NETLINK_ADD_MEMBERSHIP).
    let multicastGroups: [String: UInt32]
}

/// Size of `struct genlmsghdr` {cmd, version, reserved}, the fixed header of every genl message.
let genlHeaderSize = MemoryLayout<genlmsghdr>.size

private let maxCtrlAttr = Int(__CTRL_ATTR_MAX) - 1
private let maxCtrlGroupAttr = Int(__CTRL_ATTR_MCAST_GRP_MAX) - 1

extension MessageBuilder {
    /// Appends the genl header; a family's own fixed header (if any) follows with `putHeader`.
    func putGenlHeader(cmd: UInt8, version: UInt8) {
        putHeader(genlmsghdr.self) {
            $0.cmd = cmd
            $0.version = version
        }
    }
}

extension NetlinkSocket {
    /// Resolves a family by name with CTRL_CMD_GETFAMILY; nil when the kernel has no such
    /// family (ENOENT: not built in, module not loaded and not auto-loadable).
    func genericFamily(named name: String) throws -> GenericNetlinkFamily? {
        var found: GenericNetlinkFamily?
        do {
            try request("resolve generic netlink family '\(name)'", type: Int(GENL_ID_CTRL),
                        flags: NLM_F_REQUEST | NLM_F_ACK, build: { m in
                m.putGenlHeader(cmd: UInt8(CTRL_CMD_GETFAMILY), version: 1)
                m.putString(Int(CTRL_ATTR_FAMILY_NAME), name)
            }, onMessage: { nlh in
                guard Int(mnl_nlmsg_get_payload_len(nlh)) >= genlHeaderSize else { return }
                let table = AttributeTable(message: nlh, offset: genlHeaderSize, maxType: maxCtrlAttr)
                guard let id = table.u16(Int(CTRL_ATTR_FAMILY_ID)) else { return }
                var groups: [String: UInt32] = [:]
                if let list = table[Int(CTRL_ATTR_MCAST_GROUPS)] {
                    // An array: nests numbered 1…n, each {GRP_NAME, GRP_ID}.
                    for (_, entry) in AttributeTable.ordered(nested: list) {
                        let group = AttributeTable(nested: entry, maxType: maxCtrlGroupAttr)
                        if let groupName = group.string(Int(CTRL_ATTR_MCAST_GRP_NAME)),
                           let groupID = group.u32(Int(CTRL_ATTR_MCAST_GRP_ID)) {
                            groups[groupName] = groupID
                        }
                    }
                }
                found = GenericNetlinkFamily(
                    name: table.string(Int(CTRL_ATTR_FAMILY_NAME)) ?? name, id: id,
                    version: table.u32(Int(CTRL_ATTR_VERSION)) ?? 0, multicastGroups: groups)
            })
        } catch let error as NetlinkError where error.errno == ENOENT {
            return nil
        }
        guard let found else {
            throw NetlinkError(operation: "resolve generic netlink family '\(name)'", errno: EPROTO,
                               detail: "the reply carried no family id")
        }
        return found
    }
}
