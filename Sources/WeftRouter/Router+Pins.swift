// Trust on first use wired into the router (docs/protocol.md §3.10): the pins read from and saved
// to <data-dir>/identity-pins.json (IdentityPinStore.swift), and the one check every claim of a
// peer name with a key goes through, from gossip (Router.swift's gossip receive) or from a link's
// authenticated handshake.
import Foundation
import Logging
import WeftCrypto
import WeftMesh
import WeftWire

extension Router {
    /// Reads the pins (refusing a damaged file: it is never overwritten) and pins this router's
    /// own key. Runs before anything listens.
    func loadPins() throws {
        identityPins = try IdentityPinStore.load(dataDir: config.dataDir, own: config.name, ownKey: config.identity.publicKey)
        logger.info("identity pins loaded", metadata: ["file": "\(identityPins.path ?? "-")", "pins": "\(identityPins.pins.keys.count)"])
    }

    /// Whether `key` may be `name`'s: the key must derive the name and match the key pinned for
    /// it, if any (pinned now if none is). A refusal is counted (weft_identity_refusals_total),
    /// shown in status (`pinConflicts`) and logged once per (name, key) (per name when the key does
    /// not derive it). Gossip calls it for every entry that would change the topology; a link's
    /// establishment is to call it with the key its handshake authenticated (`.link(address:)`)
    /// and refuse the link when it is refused.
    @discardableResult
    func pinCheck(name: PeerName, key: [UInt8], source: PinSource) -> PinCheck {
        let result = identityPins.check(name: name, key: key, source: source)
        guard case .refused(let why, let firstReport) = result else { return result }
        metrics.identityRefusals[IdentityPinStore.reasonLabel(why) + " " + source.label, default: 0] += 1
        if firstReport {
            var metadata: Logger.Metadata = [
                "peer": "\(name)", "offered": "\(IdentityKey.fingerprint(publicKey: key))", "source": "\(source)",
                "reason": "\(IdentityPinStore.reasonLabel(why))",
            ]
            let message: Logger.Message
            switch why {
            case .otherKey(let pinned):
                metadata["pinned"] = "\(IdentityKey.fingerprint(publicKey: pinned))"
                message = "refused a claim of a pinned peer name with another identity key (an impostor, or that router's key was replaced); the pinned key stays"
            case .nameNotDerived:
                message = "refused a claim of a peer name with a key that does not derive it (forged or damaged)"
            case .revoked:
                message = "refused a revoked identity key"
            }
            logger.warning(message, metadata: metadata)
        }
        return result
    }

    /// The link side of `pinCheck`: the REFUSE for a handshake whose authenticated key may not be
    /// `name`'s here, nil when it may. The link already refused a key that does not derive the
    /// hello's name (REFUSE 11), so what is left is a pinned name with another key or a revoked key.
    func pinRefusal(name: PeerName, key: [UInt8], address: String) -> Refuse? {
        guard case .refused(let why, _) = pinCheck(name: name, key: key, source: .link(address: address)) else { return nil }
        return IdentityPinStore.refuse(why, name: name, key: key)
    }

    /// Writes the pins made since the last write (called every tick). A failure is logged once
    /// per run of failures; the pins stay in memory and the write is tried again next tick.
    func savePinsIfChanged() {
        guard identityPins.dirty else { return }
        do {
            try identityPins.save()
            pinSaveFailing = false
        } catch {
            if !pinSaveFailing {
                logger.error("cannot save the identity pins; they are kept in memory and saved when the file can be written",
                             metadata: ["file": "\(identityPins.path ?? "-")", "error": "\(error)"])
            }
            pinSaveFailing = true
        }
    }
}
