// Address management wired into the router (docs/protocol.md §7): the pure AddressManager fed
// from IPAM_UPDATE and IPAM_REQUEST, its state saved to <data-dir>/ipam.json before anything it
// changed is gossiped, and the control API's allocations, which wait for the pool to be divided
// or for a peer to give space.
import Foundation
import NIOCore
import WeftMesh
import WeftWire

/// The router's address-management state; confined to the router's loop.
final class IPAMState {
    var manager: AddressManager
    let path: String
    let consensusSize: Int
    /// Allocations waiting for the pool to be divided or for space; failed at their deadline.
    var waiting: [(holder: String, promise: EventLoopPromise<String>, deadline: NIODeadline)] = []
    /// When a donor was last asked (asked again at most once a second).
    var asked: [PeerName: NIODeadline] = [:]

    init(manager: AddressManager, path: String, consensusSize: Int) {
        self.manager = manager
        self.path = path
        self.consensusSize = consensusSize
    }
}

extension Router {
    static let ipamFileName = "ipam.json"
    /// How long `weft attach` without an address waits for the pool or for space.
    static let allocationWait: TimeAmount = .seconds(20)

    /// Reads <data-dir>/ipam.json (refusing a damaged one: it is never overwritten) or starts
    /// an empty manager. Runs before anything listens.
    func loadIPAM() throws {
        guard let range = config.ipallocRange else { return }
        let consensus = config.ipallocConsensus ?? (1 + Set(config.initialPeers).count)
        let path = (config.dataDir as NSString).appendingPathComponent(Self.ipamFileName)
        var manager = AddressManager(local: config.name, range: range, consensusSize: consensus)
        if let data = FileManager.default.contents(atPath: path) {
            do {
                let saved = try JSONDecoder().decode(AddressManager.Saved.self, from: data)
                manager = try AddressManager(restoring: saved, local: config.name, range: range, consensusSize: consensus)
            } catch let error as AddressManager.SavedStateError {
                throw ConfigError("\(path): \(error)")
            } catch {
                throw ConfigError("\(path) is not Weft's address-management state (\(error)); restore it from a backup, or move it away to start with no addresses (the workloads it lists keep theirs but nothing protects them from reuse)")
            }
            logger.info("address management restored", metadata: [
                "range": "\(range)", "seeded": "\(manager.ledger.isSeeded)", "addresses": "\(manager.allocations.byHolder.count)",
            ])
        }
        ipam = IPAMState(manager: manager, path: path, consensusSize: consensus)
    }

    /// Saves, then sends `update` to every established link but `except`'s.
    func publishIPAM(_ update: AddressManager.Update?, except: PeerName? = nil) {
        guard let ipam, let update, !update.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(Array(try encoder.encode(ipam.manager.saved)) + [10], to: ipam.path, mode: 0o600)
        } catch {
            // Not gossiped: a vote or a gift nobody can rely on after a restart must not leave.
            logger.error("cannot save the address-management state; not sending it", metadata: ["file": "\(ipam.path)", "error": "\(error)"])
            return
        }
        let payload = update.encode(range: ipam.manager.range)
        for (name, link) in established where name != except {
            link.send(type: MessageType.ipamUpdate.rawValue, payload: payload)
        }
        serveWaiting()
    }

    func ipamLinkUp(_ link: Link) {
        guard let ipam else { return }
        link.send(type: MessageType.ipamUpdate.rawValue, payload: ipam.manager.fullUpdate.encode(range: ipam.manager.range))
    }

    func ipamReceived(_ link: Link, type: MessageType, payload: [UInt8]) {
        guard let ipam, let from = link.remoteName else { return link.countUnknownMessage() }
        switch type {
        case .ipamUpdate:
            let update: AddressManager.Update
            do { update = try .decode(payload) } catch {
                return link.fail("malformed address-management update: \(error)", refuse: .protocolError)
            }
            let refusedBefore = ipam.manager.refusedPools[from]
            let changed = ipam.manager.receive(update, from: from)
            if let why = ipam.manager.refusedPools[from], why != refusedBefore {
                logger.warning("not pooling addresses with this peer", metadata: ["peer": "\(from)", "reason": "\(why)"])
            }
            publishIPAM(changed, except: from)
            serveWaiting()
        case .ipamRequest:
            let gift = ipam.manager.donate(to: from)
            if gift != nil { logger.info("gave address space", metadata: ["peer": "\(from)"]) }
            publishIPAM(gift)
        default:
            link.countUnknownMessage()
        }
    }

    /// A proposal when the pool is still undivided, and the deadlines of waiting allocations.
    func ipamTick(now: NIODeadline) {
        guard let ipam else { return }
        if !ipam.manager.ledger.isSeeded {
            publishIPAM(ipam.manager.proposeIfDue(reachable: Array(established.keys), needed: !ipam.waiting.isEmpty))
        }
        guard !ipam.waiting.isEmpty else { return }
        serveWaiting()
        let late = ipam.waiting.filter { now >= $0.deadline }
        ipam.waiting.removeAll { now >= $0.deadline }
        for entry in late {
            let why: String
            if !ipam.manager.ledger.isSeeded {
                why = "the address range is not divided yet: \(ipam.manager.consensus.quorum) of \(ipam.consensusSize) routers must be connected (--ipalloc-init consensus=N)"
            } else {
                why = "no free address in \(ipam.manager.range) on this router or the peers it is connected to"
            }
            entry.promise.fail(ControlAPIError(.serviceUnavailable, why))
        }
    }

    /// Retries the waiting allocations; asks a donor, or proposes the division, as needed.
    private func serveWaiting() {
        guard let ipam, !ipam.waiting.isEmpty else { return }
        let reachable = Array(established.keys)
        var still: [(holder: String, promise: EventLoopPromise<String>, deadline: NIODeadline)] = []
        var updates: [AddressManager.Update] = []
        for entry in ipam.waiting {
            let (outcome, update) = ipam.manager.allocate(for: entry.holder, reachable: reachable)
            if let update { updates.append(update) }
            switch outcome {
            case .allocated(let address):
                entry.promise.succeed("\(address)/\(ipam.manager.range.prefixLength)")
            case .needSpace(let donor):
                askForSpace(donor)
                still.append(entry)
            case .waitingForSeed, .exhausted:
                still.append(entry)
            }
        }
        ipam.waiting = still
        for update in updates { publishIPAM(update) }
    }

    private func askForSpace(_ donor: PeerName) {
        guard let ipam, let link = established[donor] else { return }
        let now = NIODeadline.now()
        if let last = ipam.asked[donor], now - last < .seconds(1) { return }
        ipam.asked[donor] = now
        link.send(type: MessageType.ipamRequest.rawValue, payload: [])
    }
}

/// The control API's view (AddressHost); calls arrive on the router's loop.
final class RouterAddressHost: AddressHost, @unchecked Sendable {  // confined to router.loop
    let router: Router
    init(router: Router) { self.router = router }

    func allocate(holder: String) -> EventLoopFuture<String> {
        let promise = router.loop.makePromise(of: String.self)
        guard let ipam = router.ipam else {
            promise.fail(ControlAPIError(.badRequest, "address management is off"))
            return promise.futureResult
        }
        ipam.waiting.append((holder, promise, .now() + Router.allocationWait))
        router.ipamTick(now: .now())   // at once when the pool is divided; else at the tick
        return promise.futureResult
    }

    func take(cidr: String, holder: String) throws -> String? {
        guard let ipam = router.ipam, let address = IPAddress(String(cidr.split(separator: "/").first ?? "")) else { return nil }
        var (outcome, update) = ipam.manager.take(address, for: holder)
        // A workload of this router that is gone (its namespace deleted without detach) gives
        // its address back rather than blocking it forever.
        if case .held(let peer, let other) = outcome, peer == router.config.name {
            // The same namespace named another way (by a pid in it): it has the address already.
            if router.hostNetwork?.sameNamespace(other, holder) == true { return nil }
            if !isLive(other) {
                router.publishIPAM(ipam.manager.release(other))
                (outcome, update) = ipam.manager.take(address, for: holder)
            }
        }
        func describe(_ peer: PeerName) -> String {
            let nickname = router.topologyPeers[peer]?.nickname
            return peer == router.config.name ? "this router" : "router \(peer)\(nickname.map { " (\($0))" } ?? "")"
        }
        switch outcome {
        case .taken:
            router.publishIPAM(update)
            return nil
        case .held(let peer, let other):
            throw ControlAPIError(.conflict, "\(address) is already held by \(other) on \(describe(peer)): attach without an address to get a free one, or detach that workload first")
        case .outsideRange(let alsoOn):
            router.publishIPAM(update)
            guard !alsoOn.isEmpty else { return nil }
            let warning = "\(address) (outside --ipalloc-range) is also given to " + alsoOn.map { "\($0.holder) on \(describe($0.router))" }.joined(separator: ", ")
            router.logger.warning("an address given by hand is in use elsewhere", metadata: ["address": "\(address)", "holder": "\(holder)", "detail": "\(warning)"])
            return warning
        }
    }

    /// Whether `holder` is a workload this router still has attached (the host always is).
    private func isLive(_ holder: String) -> Bool {
        guard holder != AddressHolder.host, let workloads = router.hostNetwork?.workloads else { return true }
        return workloads.contains { AddressHolder.workload(namespace: $0.namespace, pid: $0.pid) == holder }
    }

    func release(holder: String) {
        guard let ipam = router.ipam else { return }
        router.publishIPAM(ipam.manager.release(holder))
    }

    func ipamStatus() -> IPAMStatus {
        let manager = router.ipam!.manager
        let range = manager.range
        var blocksOf: [PeerName: [Int]] = [:]
        for (block, claim) in manager.ledger.claims.enumerated() { blocksOf[claim.owner, default: []].append(block) }
        let routes = router.routes
        let shares = blocksOf.keys.sorted().map { name -> IPAMShare in
            let blocks = blocksOf[name]!
            let usable = range.usableAddresses(inBlocks: blocks)
            let used = manager.announcements[name]?.holdings.count ?? 0
            return IPAMShare(name: "\(name)", nickname: router.topologyPeers[name]?.nickname, isSelf: name == router.config.name,
                             reachable: routes.isReachable(name), blocks: blocks.count,
                             addresses: usable, used: used, free: usable - min(usable, UInt64(used)))
        }
        return IPAMStatus(range: "\(range)", seeded: manager.ledger.isSeeded,
                          seed: manager.ledger.seed.map { "\($0.by)/\($0.nonce)" }, consensusSize: router.ipam!.consensusSize,
                          shares: shares, refusedPools: Dictionary(uniqueKeysWithValues: manager.refusedPools.map { ("\($0.key)", $0.value) }))
    }

    func removePeer(_ text: String) throws -> String {
        guard let ipam = router.ipam else { return "address management is off" }
        let peers = router.topologyPeers
        let owners = Set(ipam.manager.ledger.claims.map(\.owner))
        guard let peer = PeerName(text) ?? peers.values.first(where: { $0.nickname == text })?.name
                ?? owners.first(where: { "\($0)" == text }) else {
            throw ControlAPIError(.notFound, "no peer named \(text) owns address space (weft ipam lists them)")
        }
        guard peer != router.config.name else { throw ControlAPIError(.badRequest, "\(text) is this router") }
        guard !router.isEstablished(peer), !router.routes.isReachable(peer) else {
            throw ControlAPIError(.conflict, "\(text) is connected to the mesh: stop it first (rmpeer is for routers that are gone)")
        }
        let (blocks, update) = ipam.manager.reclaim(from: peer)
        router.publishIPAM(update)
        router.logger.warning("took a departed router's address space", metadata: ["peer": "\(peer)", "blocks": "\(blocks)"])
        return blocks == 0 ? "\(text) owns no address space" : "took \(blocks) blocks of \(text)'s address space"
    }
}
