// What `weft password use ID` answers once the links' rekeys have ended: how many connections
// moved to the password, and a warning naming the peers that lack it (their links stay on the
// password they use). Pure wording, tested in memory.

/// A connected peer whose link did not move, and the password id that link still uses.
struct PeerLabel: Equatable {
    var name: String
    var nickname: String?
    var uses: String

    var text: String { "\(name)\(nickname.map { " (\($0))" } ?? "") on \(uses)" }
}

enum PasswordUseReport {
    static func sentence(id: String, alreadyOn: Int, moved: Int, lacking: [PeerLabel]) -> String {
        let plural = { (n: Int, word: String) in "\(n) \(word)\(n == 1 ? "" : "s")" }
        var done = "password \(id) is active; \(plural(moved, "connection")) moved to it"
        if alreadyOn > 0 { done += ", \(alreadyOn) already used it" }
        guard !lacking.isEmpty else { return done }
        let names = lacking.map(\.text).joined(separator: ", ")
        let olds = Set(lacking.map(\.uses))
        let goBack = olds.count == 1 ? " or go back with `weft password use \(olds.first!)`" : ""
        if moved == 0 && alreadyOn == 0 {
            return "warning: password \(id) is active here, but no connection can move to it: no connected peer knows it "
                + "(lacking it: \(names)). Their links stay on the password they use, and connections this router dials to them "
                + "will be refused; add it on them with `weft password add`\(goBack)"
        }
        return "\(done); warning: not moved, lacking it: \(names); add it on them with `weft password add`"
    }
}
