// Builds the status documents from the router's state. Runs on the router's event loop.
import Foundation
import NIOCore
import WeftControl
import WeftCrypto
import WeftHost
import WeftMesh
import WeftWire

extension Router {
    func status() -> RouterStatus {
        let connections = connectionStatus()
        var counts: [String: Int] = [:]
        for state in [ConnectionState.connecting, .established, .failed, .retrying] { counts[state.rawValue] = 0 }
        for c in connections { counts[c.state.rawValue, default: 0] += 1 }
        return RouterStatus(
            name: config.name.description, nickname: config.nickname, port: config.port, encryption: passwordSet,
            pskId: keyring?.active?.id.description, trustedSubnets: config.trustedSubnets.map(\.text),
            protocolVersion: Int(LinkVersion.maximum), peers: topologyPeers.count, connections: counts,
            targets: targetAddresses, uptimeSeconds: Int(Date().timeIntervalSince(started)), fastdp: fastdpStatus,
            overlayMTU: overlayMTU ?? 0, ipalloc: ipam.map { ipam in
                let manager = ipam.manager
                return IPAllocSummary(range: "\(manager.range)", seeded: manager.ledger.isSeeded, used: manager.allocations.byHolder.count,
                                      free: manager.allocations.freeCount(owned: manager.ownedBlocks),
                                      refusedPools: Dictionary(uniqueKeysWithValues: manager.refusedPools.map { ("\($0.key)", $0.value) }))
            }, identity: config.identity.fingerprint, pinnedIdentities: identityPins.pins.keys.count, pinConflicts: identityPins.conflicts)
    }

    func peerStatus() -> [PeerStatus] {
        refreshIfPending()
        let routes = self.routes
        // The next hop is the one forwarded traffic takes (a connection whose data plane is down is avoided).
        let forwarding = dataPlaneRoutes
        let pathMTU = self.pathMTU()
        let overlay = overlayMTU
        let conflicts = Dictionary(grouping: identityPins.conflicts, by: \.name)
        return topologyPeers.values.sorted { $0.name < $1.name }.map { entry in
            PeerStatus(name: entry.name.description, nickname: entry.nickname, uid: String(entry.uid, radix: 16),
                       shortId: Int(entry.shortId), version: entry.version,
                       connections: entry.connections.filter(\.established).count,
                       reachable: routes.isReachable(entry.name),
                       nextHop: forwarding.nextHop(to: entry.name)?.description, isSelf: entry.name == config.name,
                       pathMtu: pathMTU[entry.name].map { min($0, overlay ?? $0) },
                       // The key gossip carries (pinned), else the one a link authenticated.
                       identity: entry.identity != PeerEntry.noIdentity ? IdentityKey.fingerprint(publicKey: entry.identity)
                           : established[entry.name]?.remoteIdentity.map(IdentityKey.fingerprint),
                       pinConflicts: conflicts[entry.name.description] ?? [],
                       revoked: isRevoked(entry.name))
        }
    }

    func topologyStatus() -> TopologyStatus {
        refreshIfPending()
        let routes = self.routes
        return TopologyStatus.build(selfName: config.name, entries: Array(topologyPeers.values), reachable: routes.isReachable,
                                    own: connectionStatus())
    }

    func connectionStatus() -> [ConnectionStatus] {
        var result: [ConnectionStatus] = []
        let passwordSet = self.passwordSet
        let activeId = keyring?.active?.id.description
        var coveredTargets = Set<String>()
        for link in allLinks {
            if let target = link.targetAddress { coveredTargets.insert(target) }
            let established = link.isEstablished
            let data = established ? sleeveStatus(for: link.remoteName) : .none
            // The mode (docs/design.md §5); `reason` explains a link off its preferred mode, but a sleeve
            // that does not answer heartbeats comes first: nothing crosses such a link.
            let decision = established ? modeDecision(for: link) : nil
            let mode = decision.map { dataPlaneMode(of: link, decision: $0) }
            let onFastdp = mode == .fastdp
            let reason = !established ? "handshake in progress"
                : (onFastdp ? nil : (data.heartbeat ?? decision?.reason)) ?? (trustPending(link) ? Self.trustPendingReason : nil)
            result.append(ConnectionStatus(
                peer: link.remoteName?.description, nickname: link.remoteHello?.nickname, address: link.socketAddress,
                direction: link.direction, state: established ? .established : .connecting,
                encrypted: LinkPolicy.encrypted(passwordSet: passwordSet, trusted: link.trusted), trusted: link.trusted,
                mode: mode == .noDataPlane ? nil : mode?.rawValue, pskId: link.pskId?.description ?? (passwordSet && link.isInitiator ? activeId : nil),
                reason: reason, ready: established && data.mode != nil && (onFastdp || data.heartbeat == nil),
                connectionId: String(link.localHello.connectionId, radix: 16),
                since: link.establishedAt.map { ISO8601DateFormatter().string(from: $0) },
                cipher: data.cipher, mtu: onFastdp ? overlayMTU : data.mtu,
                underlay: link.remoteIP.map { ($0.isIPv4 ? UnderlayFamily.ipv4 : .ipv6).rawValue }, keyEpoch: established ? Int(link.epoch) : nil, counters: data.counters,
                lastRekeyAt: link.lastRekeyAt.map { ISO8601DateFormatter().string(from: $0) },
                unknownMessages: established ? link.unknownMessages : nil,
                gossipBytes: .init(sent: link.bytesSent, received: link.bytesReceived),
                identity: link.remoteIdentity.map(IdentityKey.fingerprint)))
            if established, let used = result[result.count - 1].pskId, used != activeId { result[result.count - 1].activePskId = activeId }
        }
        for target in allTargets where !coveredTargets.contains(target.address) {
            if let peer = target.peer, isEstablished(peer) { continue }
            let state: ConnectionState = target.authFailure ? .failed : (target.failures == 0 || target.connecting ? .connecting : .retrying)
            let reason = target.authFailure ? target.reason ?? "failed" : DialReport.reason(
                lastFailure: target.reason, failures: target.failures, dialing: target.connecting,
                secondsToRetry: Double((target.nextAttempt - .now()).nanoseconds) / 1e9)
            result.append(ConnectionStatus(
                peer: target.peer?.description, nickname: target.nickname, address: target.address, direction: .outbound,
                state: state, encrypted: passwordSet, trusted: false, mode: nil,
                pskId: activeId, reason: reason, ready: false, connectionId: nil, since: nil,
                cipher: nil, mtu: nil, keyEpoch: nil, counters: nil, lastRekeyAt: nil))
        }
        for failure in recentInboundFailures {
            result.append(ConnectionStatus(
                peer: nil, nickname: nil, address: failure.address, direction: .inbound, state: .failed,
                encrypted: passwordSet, trusted: false, mode: nil, pskId: failure.pskId, reason: failure.reason, ready: false,
                connectionId: nil, since: nil, cipher: nil, mtu: nil, keyEpoch: nil, counters: nil, lastRekeyAt: nil))
        }
        return result
    }
}
