// Admission under a password being retired because of a revocation (docs/protocol.md §3.11,
// REFUSE 14): during the grace it admits only identity keys already pinned here, so a revoked
// host cannot come back with a fresh key under the password it knew. Pure; the router asks it
// at admission with the link's keyring mark and the pins' decision, before anything is pinned.
import WeftWire

public enum RetiringPassword {
    /// The refusal of a link whose password is `pinnedOnly` (its keyring entry is marked) and whose
    /// key the pins would see for the first time; nil admits it as far as this rule goes. A
    /// revoked key or a name pinned to another key is left to the pin check (REFUSE 13, 12): the
    /// more precise reason.
    public static func refusal(pinnedOnly: Bool, pin: PinDecision, fingerprint: @autoclosure () -> String) -> Refuse? {
        guard pinnedOnly, case .firstSight = pin else { return nil }
        return Refuse(code: .retiringPasswordUnknownKey,
                      text: "this password is being retired; join with the current one (your identity \(fingerprint()) is not known here)")
    }
}
