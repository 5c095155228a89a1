// weft-vectors FILE…: checks Noise (cacophony format) and Weft KDF test vectors; see Keys/README.md.
import Foundation
import WeftCrypto

let files = Array(CommandLine.arguments.dropFirst())
if files.isEmpty || files.contains("-h") || files.contains("--help") {
    let usage = "usage: weft-vectors FILE…\n  checks every vector in each {\"vectors\":[…]} file; exit status 1 on any failure\n"
    FileHandle.standardError.write(Data(usage.utf8))
    exit(files.isEmpty ? 2 : 0)
}

var passed = 0, failed = 0, skipped = 0
var unreadable = false
for path in files {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("weft-vectors: cannot read \(path)\n".utf8))
        unreadable = true
        continue
    }
    let report = VectorChecker.check(fileContents: [UInt8](data), fileName: (path as NSString).lastPathComponent)
    for line in report.lines { print(line) }
    passed += report.passed
    failed += report.failed
    skipped += report.skipped
}
print("\(passed) passed, \(failed) failed, \(skipped) skipped")
exit(failed > 0 || unreadable ? 1 : 0)
