// Session rekeying and password rotation (docs/design.md §6, protocol.md §3.7–3.8), on the router's
// event loop: the schedule, `weft rotate-key`, the keyring commands and the mesh-wide rotation.
import Foundation
import NIOCore
import WeftControl
import WeftCrypto
import WeftDatapath
import WeftMesh
import WeftWire

/// Router state for rekeys and rotations. Confined to the router's event loop.
final class KeyWork: @unchecked Sendable {
    /// Callers waiting for a link's rekey to end (rotate-key, password use).
    var waiters: [ObjectIdentifier: [EventLoopPromise<String?>]] = [:]
    /// Peers that acknowledged an offered PSK, by PSK id.
    var acks: [PSKID: Set<PeerName>] = [:]
    /// Rotations run one after another.
    var rotationChain: EventLoopFuture<Void>?
}

extension Router {
    static let rekeyMessageLimit: UInt64 = 1 << 60

    // MARK: schedule

    /// Rekeys links whose keys are older than `--rekey-interval` or have sealed too many
    /// messages, and retires passwords whose grace period has ended. Called from tick().
    func keyTick(now: NIODeadline) {
        for link in established.values where link.canRekey && !link.rekeyInProgress {
            let age = now - link.keysSince
            // The link's dialer keeps the schedule; the other side steps in 30 s late.
            let due = link.isInitiator ? config.rekeyInterval : config.rekeyInterval + .seconds(30)
            let udpCount = sleeve?.sessions[link.remoteName!]?.txCounterValue ?? 0
            if age >= due || link.sealedMessages >= Self.rekeyMessageLimit || udpCount >= Self.rekeyMessageLimit {
                link.startRekey(psk: nil)
            }
        }
        guard let keyring else { return }
        let due = keyring.due(at: Date())
        guard !due.isEmpty else { return }
        for id in due {
            try? keyring.retire(id)
            logger.info("password retired", metadata: ["pskId": "\(id)", "reason": "grace period over"])
        }
        saveKeyring()
        closeLinks(using: Set(due))
    }

    /// Links still under a retired password are closed: they reconnect under the active one,
    /// or are refused if the peer knows only the retired one.
    func closeLinks(using retired: Set<PSKID>) {
        for link in established.values where link.pskId.map(retired.contains) == true {
            link.fail("password \(link.pskId!) retired", refuse: .unknownPSKId)
        }
    }

    func saveKeyring() {
        do { try keyring?.save() } catch {
            logger.error("cannot save the keyring", metadata: ["error": "\(error)"])
        }
    }

    // MARK: rekey callbacks from links

    func link(_ link: Link, acceptEpoch epoch: UInt8, keys: LinkKeys) {
        guard let name = link.remoteName, let session = sleeve?.sessions[name], let pair = packetKeys(for: link, keys) else { return }
        session.update { $0.receiving(epoch: epoch, key: pair.rx) }
    }

    func link(_ link: Link, sendEpoch epoch: UInt8, keys: LinkKeys) {
        guard let name = link.remoteName, let session = sleeve?.sessions[name] else { return }
        let pair = packetKeys(for: link, keys)
        session.update { $0.sending(epoch: epoch, key: pair?.tx) }
    }

    func linkRekeyEnded(_ link: Link, failure: String?) {
        if failure == nil { metrics.rekeys += 1 }
        if failure == nil {
            logger.info("link rekeyed", metadata: ["peer": "\(link.remoteName.map { "\($0)" } ?? "?")", "epoch": "\(link.epoch)",
                                                  "pskId": "\(link.pskId?.description ?? "none")"])
        }
        for promise in keyWork.waiters.removeValue(forKey: ObjectIdentifier(link)) ?? [] { promise.succeed(failure) }
    }

    /// Starts a rekey of `link` and completes when it has ended (nil) or failed (the reason).
    func rekey(_ link: Link, psk: PreSharedKey?) -> EventLoopFuture<String?> {
        let promise = loop.makePromise(of: String?.self)
        if !link.canRekey {
            promise.succeed("no keys to rotate (no password)")
        } else if link.startRekey(psk: psk) || link.rekeyInProgress {
            keyWork.waiters[ObjectIdentifier(link), default: []].append(promise)
            loop.scheduleTask(in: .seconds(10)) {
                if let index = self.keyWork.waiters[ObjectIdentifier(link)]?.firstIndex(where: { $0.futureResult === promise.futureResult }) {
                    self.keyWork.waiters[ObjectIdentifier(link)]?.remove(at: index)
                    promise.succeed("timed out")
                }
            }
        } else {
            promise.succeed("could not start")
        }
        return promise.futureResult
    }

    // MARK: weft rotate-key

    func rotateKeys(peer: String?) -> EventLoopFuture<[RotateKeyResult]> {
        let links = established.values.filter { link in
            guard let peer else { return true }
            return link.remoteName?.description == peer || link.remoteHello?.nickname == peer
        }.sorted { $0.remoteName! < $1.remoteName! }
        if let peer, links.isEmpty {
            return loop.makeFailedFuture(ControlAPIError(.notFound, "no established connection to \(peer)"))
        }
        let before = links.map { Int($0.epoch) }
        let futures = links.map { rekey($0, psk: nil) }
        return EventLoopFuture.whenAllComplete(futures, on: loop).map { outcomes in
            var results: [RotateKeyResult] = []
            for (index, link) in links.enumerated() {
                var text = "rotated"
                if case .success(let failure?) = outcomes[index] { text = failure }
                results.append(RotateKeyResult(peer: link.remoteName!.description, nickname: link.remoteHello?.nickname ?? "",
                                               oldEpoch: before[index], newEpoch: Int(link.epoch), result: text))
            }
            return results
        }
    }

    // MARK: password messages

    func handlePasswordMessage(_ link: Link, type: MessageType, payload: [UInt8]) {
        guard let keyring, let peer = link.remoteName else { return }
        do {
            switch type {
            case .passwordOffer:
                // Offers spread through the mesh: each router that learns a PSK passes it on,
                // so peers without a direct connection to the rotating router get it too.
                let offer = try PasswordOffer.decode(payload)
                let psk = PreSharedKey(key: offer.psk)
                if keyring.state(of: psk.id) != .retired, keyring.add(psk, state: .accepted) {
                    saveKeyring()
                    logger.info("password offered by peer", metadata: ["peer": "\(peer)", "pskId": "\(psk.id)"])
                    for other in established.values where other !== link && other.canRekey {
                        other.send(type: MessageType.passwordOffer.rawValue, payload: payload)
                    }
                }
                if keyring.accepted(psk.id) != nil {
                    let ack = psk.id.bytes + config.name.bytes
                    keyWork.acks[psk.id, default: []].insert(config.name)
                    floodAck(ack, except: nil)
                }
            case .passwordAck:
                // "Peer P holds PSK X", flooded once per (X, P) so the rotating router hears it.
                var reader = ByteReader(payload)
                let id = PSKID(bytes: try reader.bytes(8, "acknowledged psk id"))
                let holder = try reader.peerName("acknowledging peer")
                if keyWork.acks[id, default: []].insert(holder).inserted { floodAck(payload, except: link) }
            case .passwordUse:
                let use = try PasswordUse.decode(payload)
                let id = PSKID(bytes: use.newId)
                let wasActive = keyring.active?.id == id
                // The payload is passed on as it came, so its pinned-only flag travels with it.
                switchPassword(to: id, retiring: PSKID(bytes: use.oldId), grace: Double(use.graceSeconds), pinnedOnly: use.pinnedOnly,
                               except: link)
                if !wasActive, keyring.active?.id == id {
                    for other in established.values where other !== link && other.canRekey {
                        other.send(type: MessageType.passwordUse.rawValue, payload: payload)
                    }
                }
            default:
                break
            }
        } catch {
            link.fail("malformed password message: \(error)", refuse: .protocolError)
        }
    }

    private func floodAck(_ payload: [UInt8], except: Link?) {
        for other in established.values where other !== except && other.canRekey {
            other.send(type: MessageType.passwordAck.rawValue, payload: payload)
        }
    }

    /// Makes `id` active here, schedules the old one's retirement, and moves every link not
    /// yet under it (but `except`, whose other end does that) to it by rekeying; `pinnedOnly`: the
    /// old one is retired because of a revocation (accepted only from pinned keys meanwhile,
    /// §3.11). Returns the links it rekeys with each rekey's outcome (nil: moved; else why not).
    @discardableResult
    func switchPassword(to id: PSKID, retiring old: PSKID?, grace: Double, pinnedOnly: Bool = false,
                        except: Link?) -> [(link: Link, outcome: EventLoopFuture<String?>)] {
        guard let keyring, let psk = keyring.accepted(id) else { return [] }
        if keyring.active?.id != id {
            try? keyring.use(id)
            logger.info("password switched", metadata: ["pskId": "\(id)"])
        }
        if let old, old != PSKID.zero, old != id {
            keyring.scheduleRetirement(old, at: Date().addingTimeInterval(grace), pinnedOnly: pinnedOnly)
        }
        saveKeyring()
        return established.values.filter { $0 !== except && $0.pskId != id && $0.canRekey }.map { ($0, rekey($0, psk: psk)) }
    }

    /// `weft password use ID`: switches, waits for the links' rekeys and says how many moved;
    /// peers that lack the password are named (their links stay on the one they use), with a
    /// warning when no connection could move at all.
    func usePassword(_ id: PSKID) -> EventLoopFuture<String> {
        let moves = switchPassword(to: id, retiring: nil, grace: 0, except: nil)
        let unmoved = established.count - moves.count
        return EventLoopFuture.whenAllComplete(moves.map(\.outcome), on: loop).map { outcomes in
            let lacking = zip(moves, outcomes).compactMap { move, outcome -> PeerLabel? in
                if case .success(nil) = outcome { return nil }
                let name = move.link.remoteName
                return PeerLabel(name: name?.description ?? "?", nickname: move.link.remoteHello?.nickname,
                                 uses: move.link.pskId?.description ?? "none")
            }
            return PasswordUseReport.sentence(id: id.description, alreadyOn: unmoved, moved: moves.count - lacking.count, lacking: lacking)
        }
    }

    /// A peer that joined under an older password (it was down during a rotation) is handed
    /// the active one and moved to it.
    func catchUpPassword(_ link: Link) {
        guard let keyring, let active = keyring.active, let linkPSK = link.pskId, linkPSK != active.id, link.canRekey else { return }
        let entry = keyring.entries.first { $0.id == linkPSK.description }
        let retireAt = entry?.retireAt.flatMap { ISO8601DateFormatter().date(from: $0) }
        let grace = max(1, retireAt.map { $0.timeIntervalSinceNow } ?? 0)
        link.send(type: MessageType.passwordOffer.rawValue, payload: PasswordOffer(psk: active.key).encode())
        // A password retired because of a revocation stays pinned-only on the late peer too.
        link.send(type: MessageType.passwordUse.rawValue,
                  payload: PasswordUse(newId: active.id.bytes, oldId: linkPSK.bytes, graceSeconds: PasswordUse.wireGrace(grace),
                                       pinnedOnly: entry?.pinnedOnly ?? false).encode())
        _ = rekey(link, psk: active)
    }

    // MARK: weft rotate-password

    /// Offers `psk` to every directly connected peer, switches once they acknowledged (or after
    /// 5 s, naming those that did not), and retires the previous password after `grace`;
    /// `pinnedOnly` (the rotation of `weft revoke`): meanwhile the previous password is accepted
    /// only from identity keys pinned here, everywhere (PASSWORD_USE's flag, §3.11).
    func rotatePassword(to psk: PreSharedKey, grace: Double, pinnedOnly: Bool = false) -> EventLoopFuture<RotatePasswordResult> {
        let previous = keyWork.rotationChain ?? loop.makeSucceededVoidFuture()
        let result = previous.flatMap { () -> EventLoopFuture<RotatePasswordResult> in
            self.runRotation(psk: psk, grace: grace, pinnedOnly: pinnedOnly)
        }
        keyWork.rotationChain = result.map { _ in () }.recover { _ in () }
        return result
    }

    private func runRotation(psk: PreSharedKey, grace: Double, pinnedOnly: Bool) -> EventLoopFuture<RotatePasswordResult> {
        guard let keyring, let old = keyring.active else {
            return loop.makeFailedFuture(ControlAPIError(.conflict, "this router has no password; launch it with one first"))
        }
        if keyring.state(of: psk.id) == .retired {
            return loop.makeFailedFuture(ControlAPIError(.conflict, "password \(psk.id) was retired; choose a new one"))
        }
        keyring.add(psk, state: .accepted)
        saveKeyring()
        // Waits for the peers reachable now; a known peer that is down is reported, not awaited.
        // A revoked peer is neither awaited nor reported: it is never offered the password (§3.11).
        let revoked = Set(topology.peers.keys.filter(isRevoked))
        let peers = routes.reachable.subtracting([config.name]).subtracting(revoked)
        let known = Set(topology.peers.keys).subtracting([config.name]).subtracting(revoked)
        keyWork.acks[psk.id] = [config.name]
        for link in established.values where link.canRekey {
            link.send(type: MessageType.passwordOffer.rawValue, payload: PasswordOffer(psk: psk.key).encode())
        }
        let done = loop.makePromise(of: Void.self)
        let deadline = NIODeadline.now() + .seconds(5)
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { task in
            let acked: Set<PeerName> = self.keyWork.acks[psk.id] ?? []
            if acked.isSuperset(of: peers) || .now() >= deadline {
                task.cancel()
                done.succeed()
            }
        }
        return done.futureResult.flatMap {
            let acknowledged = self.keyWork.acks.removeValue(forKey: psk.id) ?? []
            let use = PasswordUse(newId: psk.id.bytes, oldId: old.id.bytes, graceSeconds: PasswordUse.wireGrace(grace), pinnedOnly: pinnedOnly)
            // Sent to every neighbour; each passes it on once it has switched (§3.8).
            for link in self.established.values where link.canRekey {
                link.send(type: MessageType.passwordUse.rawValue, payload: use.encode())
            }
            self.switchPassword(to: psk.id, retiring: old.id, grace: grace, pinnedOnly: pinnedOnly, except: nil)
            let waits = self.established.values.compactMap { link -> EventLoopFuture<String?>? in
                guard let waiters = self.keyWork.waiters[ObjectIdentifier(link)], !waiters.isEmpty else { return nil }
                let p = self.loop.makePromise(of: String?.self)
                self.keyWork.waiters[ObjectIdentifier(link), default: []].append(p)
                return p.futureResult
            }
            return EventLoopFuture.whenAllComplete(waits, on: self.loop).map { _ in
                let names = { (set: Set<PeerName>) in set.sorted().map { name in
                    "\(name) (\(self.topology.peers[name]?.nickname ?? "?"))" } }
                let retireAt = Keyring.timestamp(Date().addingTimeInterval(grace))
                let result = RotatePasswordResult(id: psk.id.description, previousId: old.id.description,
                                                  acknowledged: names(acknowledged.intersection(known)),
                                                  missing: names(known.subtracting(acknowledged)), retireAt: retireAt)
                return result
            }
        }
    }
}
