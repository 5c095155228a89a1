// The libFuzzer entry points of `weft-fuzz` (docs/fuzzing.md). One binary holds every target;
// WEFT_FUZZ_TARGET names the one a run exercises. `weft-fuzz --write-seeds DIR` writes each
// target's seed corpus (made with the real encoders) under DIR/<target>/ and exits.
import Foundation

/// The target of this run, chosen once in LLVMFuzzerInitialize.
nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func weftFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let arguments = (0..<Int(argc.pointee)).compactMap { argv.pointee?[$0].map { String(cString: $0) } }
    if let flag = arguments.firstIndex(of: "--write-seeds") {
        guard flag + 1 < arguments.count else { fail("--write-seeds needs a directory") }
        writeSeeds(under: arguments[flag + 1])
        exit(0)
    }
    let name = ProcessInfo.processInfo.environment["WEFT_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
        fail("set WEFT_FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: " "))")
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func weftFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("weft-fuzz: \(message)\n".utf8))
    exit(2)
}

func writeSeeds(under directory: String) {
    for target in FuzzTarget.all {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(target.name)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (index, seed) in target.seeds().enumerated() {
                try Data(seed).write(to: folder.appendingPathComponent(String(format: "seed-%02d", index)))
            }
        } catch {
            fail("cannot write seeds to \(folder.path): \(error)")
        }
    }
}
