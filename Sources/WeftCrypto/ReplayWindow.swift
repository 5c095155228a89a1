// Anti-replay for sleeve packets (docs/design.md §3): a sliding window of 8192 counters kept as a ring
// of 64-bit words, in the manner of RFC 6479. `check` is called before the tag is verified and
// `commit` only after, so a forged packet can never move the window.

public struct ReplayWindow: Sendable {
    /// How far behind the highest accepted counter a packet may still arrive.
    public static let size: UInt64 = 8192 - 64
    private static let wordCount = 128  // 8192 bits; one word is kept free so a slide clears whole words
    private static let wordBits: UInt64 = 64

    private var words: [UInt64] = Array(repeating: 0, count: ReplayWindow.wordCount)
    /// Highest counter accepted so far; `nil` before the first packet.
    public private(set) var highest: UInt64?

    public init() {}

    /// Whether `counter` could be fresh: newer than the window, or inside it and not yet seen.
    public func check(_ counter: UInt64) -> Bool {
        guard let highest else { return true }
        if counter > highest { return true }
        if highest - counter >= Self.size { return false }
        let (word, bit) = Self.position(counter)
        return words[word] & (1 << bit) == 0
    }

    /// Marks `counter` as seen, sliding the window forward when it is the newest. Returns false
    /// (and changes nothing) when it is a replay or too old.
    @discardableResult
    public mutating func commit(_ counter: UInt64) -> Bool {
        guard check(counter) else { return false }
        if let highest, counter > highest {
            let oldWord = highest / Self.wordBits
            let newWord = counter / Self.wordBits
            let clear = min(newWord - oldWord, UInt64(Self.wordCount))
            var index = oldWord
            for _ in 0..<clear {
                index += 1
                words[Int(index % UInt64(Self.wordCount))] = 0
            }
        }
        if counter > highest ?? 0 || highest == nil { highest = counter }
        let (word, bit) = Self.position(counter)
        words[word] |= 1 << bit
        return true
    }

    private static func position(_ counter: UInt64) -> (Int, UInt64) {
        (Int((counter / wordBits) % UInt64(wordCount)), counter % wordBits)
    }
}
