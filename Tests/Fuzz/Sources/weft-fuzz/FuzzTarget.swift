// What a fuzz target is (a name, the code one input runs, its seeds) and the cursor the targets
// read their input with. A target traps only when Weft broke a promise: a decoder that traps,
// an encoding that does not decode back, a write outside its buffer (AddressSanitizer).

struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable (UnsafeRawBufferPointer) -> Void
    /// Inputs made with the real encoders, for the corpus in Tests/Fuzz/corpus/<name>/.
    let seeds: @Sendable () -> [[UInt8]]

    static let all: [FuzzTarget] = wireTargets + datapathTargets + [linkTarget] + controlTargets
}

/// Reads a fuzz input front to back; past the end it yields zeros and empty arrays, so a target
/// never has to bail out on a short input.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }
    var remaining: Int { max(0, bytes.count - offset) }

    mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }

    mutating func take(_ count: Int) -> [UInt8] {
        let n = min(max(0, count), remaining)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    mutating func rest() -> [UInt8] { take(remaining) }
}

/// A broken promise: traps, so libFuzzer saves the input.
func expect(_ condition: @autoclosure () -> Bool, _ what: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant broken: \(what())") }
}
