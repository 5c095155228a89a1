// The known word nearest to a mistyped one, for the CLI's "did you mean" (an unknown subcommand).
public enum Suggestion {
    /// The candidate closest to `word`, when it is close enough to be a typo of it: at most two
    /// edits (an adjacent swap counts as one) and fewer than half of the word's letters; or the
    /// one candidate that `word` abbreviates. Nil when nothing is that close.
    public static func nearest(_ word: String, among candidates: [String]) -> String? {
        let prefixed = candidates.filter { $0.hasPrefix(word) }
        if prefixed.count == 1, word.count >= 2 { return prefixed[0] }
        let scored = candidates.map { (candidate: $0, edits: distance(word, $0)) }
        guard let best = scored.min(by: { $0.edits < $1.edits }),
              best.edits <= 2, best.edits * 2 < max(word.count, 2),
              scored.filter({ $0.edits == best.edits }).count == 1 else { return nil }
        return best.candidate
    }

    /// Edits (insert, delete, substitute, swap two adjacent letters) that turn `a` into `b`.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let substitution = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + substitution)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
