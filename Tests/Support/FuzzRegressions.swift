// The inputs that once crashed a fuzz target (Tests/Fuzz/regressions/<target>/, docs/fuzzing.md),
// for the unit tests that feed each to its decoder.
import Foundation

public enum FuzzRegressions {
    /// Tests/Fuzz/regressions, found from this file's place in the repository.
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/regressions")

    /// The bytes of regression input `name` of fuzz target `target`.
    public static func input(_ target: String, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(target).appendingPathComponent(name)))
    }
}
