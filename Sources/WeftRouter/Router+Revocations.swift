// Revocation wired into the router (docs/protocol.md §3.11): the set read from and saved to
// <data-dir>/revocations.json (RevocationStore.swift), REVOCATIONS on the links, what a router
// does when its set gains a key, and `weft revoke PEER` with the password rotation after it.
import Foundation
import Logging
import NIOCore
import WeftControl
import WeftCrypto
import WeftMesh
import WeftWire

extension Router {
    /// Reads the revocations (refusing a damaged file: it is kept) and hands every revoked key to
    /// the pins, so that gossip and handshakes refuse them from the first connection on. Runs
    /// after loadPins, before anything listens.
    func loadRevocations() throws {
        revocations = try RevocationStore.load(dataDir: config.dataDir)
        for record in revocations.set.sorted { identityPins.revoke(record.key) }
        logger.info("revocations loaded", metadata: ["file": "\(revocations.path ?? "-")", "revoked": "\(revocations.set.count)"])
    }

    /// Whether the topology's entry for `name` carries a revoked identity key.
    func isRevoked(_ name: PeerName) -> Bool {
        guard let key = topology.peers[name]?.identity, key != PeerEntry.noIdentity else { return false }
        return revocations.set.contains(key: key)
    }

    func isRevoked(link: Link) -> Bool {
        link.remoteIdentity.map(revocations.set.contains) ?? false
    }

    /// The whole set to a newly established link, before anything else goes on it (nothing when
    /// the set is empty).
    func sendRevocations(to link: Link) {
        guard revocations.set.count > 0 else { return }
        link.send(type: MessageType.revocations.rawValue, payload: RevocationList(records: revocations.set.sorted).encode())
    }

    /// REVOCATIONS from a neighbour: merged, and what it added passed on and acted on.
    func revocationsReceived(_ link: Link, payload: [UInt8]) {
        let list: RevocationList
        do { list = try RevocationList.decode(payload) } catch {
            link.fail("malformed revocations: \(error)", refuse: .protocolError)
            return
        }
        mergeRevocations(list.records, from: link)
    }

    /// Merges `records` (from `link`'s peer, or from `weft revoke` here when nil), and for what
    /// changed the set: persists it, feeds the keys to the pins, logs each record once, floods
    /// the records to every other established link (before anything sent later, which is what
    /// keeps a rotation's offer behind them, §3.11), then closes the links to revoked keys and
    /// drops the addresses learned for them. Returns the links it closed.
    @discardableResult
    func mergeRevocations(_ records: [Revocation], from link: Link?) -> [Link] {
        let changed = revocations.merge(records)
        guard !changed.isEmpty else { return [] }
        revocationsChanged(changed)
        let payload = RevocationList(records: changed).encode()
        for other in established.values where other !== link && !isRevoked(link: other) {
            other.send(type: MessageType.revocations.rawValue, payload: payload)
        }
        return actOnRevocations()
    }

    /// Records that changed the set: saved, fed to the pins and logged.
    private func revocationsChanged(_ changed: [Revocation]) {
        do { try revocations.save() } catch {
            logger.error("cannot save the revocations; they are kept in memory and saved with the next one",
                         metadata: ["file": "\(revocations.path ?? "-")", "error": "\(error)"])
        }
        for record in changed {
            identityPins.revoke(record.key)
            let own = record.key == config.identity.publicKey
            logger.warning(own ? "this router's identity key is revoked in the mesh; it cannot rejoin it with this key"
                               : "identity revoked", metadata: [
                "peer": "\(record.name)", "nickname": "\(record.nickname)",
                "identity": "\(IdentityKey.fingerprint(publicKey: record.key))", "revokedBy": "\(record.revokedBy)",
                "at": "\(RevocationStore.timestamp(record.at))",
            ])
        }
    }

    /// Closes every link, established or in its handshake, whose authenticated key is revoked
    /// (a sealed REFUSE 13 when established), and forgets the addresses learned for revoked
    /// peers; addresses an operator named stay (their dials are refused with REFUSE 13 at the
    /// handshake; `weft forget` drops them). The topology entry of a revoked peer is not removed
    /// here (Gossip has no removal of one entry): with its links closed it is unreachable and
    /// goes after the unreachable grace (§4.2), and its later entries are refused by the pins.
    private func actOnRevocations() -> [Link] {
        // A link with a reason is closing already.
        let closing = links.values.filter { isRevoked(link: $0) && $0.reason == nil }
        for link in closing {
            let name = link.remoteName ?? PeerName(bytes: IdentityKey.peerNameBytes(publicKey: link.remoteIdentity!))
            let refuse = IdentityPinStore.refuse(.revoked, name: name, key: link.remoteIdentity!)
            link.fail(refuse.text, refuse: .revoked)
        }
        for (address, target) in targets where !target.permanent {
            if let peer = target.peer, isRevoked(peer) || closing.contains(where: { $0.remoteName == peer }) {
                targets[address] = nil
            }
        }
        return closing
    }

    // MARK: weft revoke

    /// The peers `weft revoke PEER` chooses among: every topology entry with an identity key.
    func revocationCandidates() -> [PeerCandidate] {
        topology.peers.values.filter { $0.identity != PeerEntry.noIdentity }.map {
            PeerCandidate(name: $0.name, nickname: $0.nickname, fingerprint: IdentityKey.fingerprint(publicKey: $0.identity), key: $0.identity)
        }
    }

    /// `weft revoke PEER`: adds the record, floods it and closes the links to the key, then
    /// rotates the password (to `psk`, else a generated one) unless the router has none.
    func revoke(_ text: String, psk: PreSharedKey?, grace: Double) -> EventLoopFuture<RevokeResult> {
        let peer: PeerCandidate
        switch PeerSelector.select(text, among: revocationCandidates()) {
        case .success(let chosen): peer = chosen
        case .failure(let error):
            // Naming nobody is bad usage (exit 2); a peer not found or ambiguous is refused (exit 1).
            let refusal: ControlAPIError
            switch error {
            case .empty: refusal = ControlAPIError(.badRequest, error.description)
            case .notFound: refusal = ControlAPIError(.notFound, error.description)
            case .ambiguous: refusal = ControlAPIError(.conflict, error.description)
            }
            return loop.makeFailedFuture(refusal)
        }
        if peer.name == config.name {
            return loop.makeFailedFuture(ControlAPIError(.conflict, "\(peer.name) is this router; revoke it from another router of the mesh"))
        }
        if let held = revocations.set.record(forKey: peer.key) {
            return loop.makeFailedFuture(ControlAPIError(.conflict, "\(peer.name) (\(peer.fingerprint)) is already revoked, by "
                                                         + "\(held.revokedBy) at \(RevocationStore.timestamp(held.at))"))
        }
        let record = Revocation(key: peer.key, name: peer.name, nickname: peer.nickname, revokedBy: config.name,
                                at: UInt64(max(0, Date().timeIntervalSince1970)))
        let closed = mergeRevocations([record], from: nil)
        let status = Self.revocationStatus(record)
        guard let keyring, keyring.active != nil else {
            return loop.makeSucceededFuture(RevokeResult(revoked: status, closedLinks: closed.count, rotation: nil,
                                                         rotationSkipped: "this router runs without a password: there is none to rotate"))
        }
        // The offer goes out after the REVOCATIONS just sent, on the same links (§3.11). The old
        // password stays open during the grace only to keys pinned before: not to a fresh key of
        // the revoked host.
        return rotatePassword(to: psk ?? .generate(), grace: grace, pinnedOnly: true).map { rotation in
            RevokeResult(revoked: status, closedLinks: closed.count, rotation: rotation, rotationSkipped: nil)
        }.flatMapErrorThrowing { error in
            // The revocation stands whatever the rotation did; say why the password did not move.
            RevokeResult(revoked: status, closedLinks: closed.count, rotation: nil,
                         rotationSkipped: "the rotation failed (\(error)); run weft rotate-password")
        }
    }

    func revocationList() -> [RevocationStatus] { revocations.set.sorted.map(Self.revocationStatus) }

    static func revocationStatus(_ record: Revocation) -> RevocationStatus {
        RevocationStatus(name: record.name.description, nickname: record.nickname, identity: IdentityKey.fingerprint(publicKey: record.key),
                         revokedBy: record.revokedBy.description, at: RevocationStore.timestamp(record.at))
    }
}
