import Foundation
import XCTest
@testable import WeftCrypto

/// The package root, from this file's path (Tests/WeftCryptoTests/VectorTests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let vectorDirectory = packageRoot.appendingPathComponent("Keys/vectors")

func vectorFiles() throws -> [URL] {
    try FileManager.default.contentsOfDirectory(at: vectorDirectory, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "json" }
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
}

/// The cacophony file with one hex digit of one message's ciphertext changed.
func corruptedCacophony(message: Int) throws -> [UInt8] {
    let data = try Data(contentsOf: vectorDirectory.appendingPathComponent("noise-nnpsk0-cacophony.json"))
    var root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var vectors = root["vectors"] as! [[String: Any]]
    var messages = vectors[3]["messages"] as! [[String: Any]]
    var ciphertext = Array(messages[message]["ciphertext"] as! String)
    ciphertext[10] = ciphertext[10] == "0" ? "1" : "0"
    messages[message]["ciphertext"] = String(ciphertext)
    vectors[3]["messages"] = messages
    root["vectors"] = vectors
    return [UInt8](try JSONSerialization.data(withJSONObject: root))
}

final class VectorTests: XCTestCase {
    func testAllVectorFilesPass() throws {
        let files = try vectorFiles()
        XCTAssertTrue(files.contains { $0.lastPathComponent == "noise-nnpsk0-cacophony.json" })
        XCTAssertTrue(files.contains { $0.lastPathComponent == "weft-kdf.json" })
        XCTAssertTrue(files.contains { $0.lastPathComponent == "noise-xxpsk0-weft.json" })
        var passed = 0, failed = 0, weftEntries = 0
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: file))
            let report = VectorChecker.check(fileContents: bytes, fileName: file.lastPathComponent)
            for line in report.lines where !line.hasPrefix("ok ") { print(line) }
            passed += report.passed
            failed += report.failed
            let root = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
            weftEntries += (root["vectors"] as! [[String: Any]])
                .filter { ($0["protocol_name"] as? String)?.hasPrefix("weft_") == true }.count
        }
        XCTAssertEqual(failed, 0)
        XCTAssertGreaterThanOrEqual(weftEntries, 4)
        XCTAssertGreaterThanOrEqual(passed, 4 + weftEntries)
    }

    /// Weft's own vectors of its version-2 pattern, which no public suite has (noise-xxpsk0-weft.json,
    /// made with the noiseprotocol package; Keys/README.md): every one passes, both ciphers.
    func testXXpsk0VectorsPass() throws {
        let file = vectorDirectory.appendingPathComponent("noise-xxpsk0-weft.json")
        let bytes = [UInt8](try Data(contentsOf: file))
        let root = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        let names = (root["vectors"] as! [[String: Any]]).map { $0["protocol_name"] as? String ?? "" }
        XCTAssertEqual(Set(names), ["Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b", "Noise_XXpsk0_25519_AESGCM_BLAKE2b"])
        let report = VectorChecker.check(fileContents: bytes, fileName: file.lastPathComponent)
        XCTAssertEqual(report.failed, 0, report.lines.joined(separator: "\n"))
        let chaCha = names.filter { $0.contains("ChaChaPoly") }.count
        XCTAssertGreaterThanOrEqual(chaCha, 4)
        XCTAssertEqual(report.passed, DataCipher.aesGCMAvailable ? names.count : chaCha)
    }

    /// A changed static key must change message 2 (the responder's static key is in it, encrypted).
    func testCheckerCatchesWrongStaticKey() throws {
        let vector: [String: Any] = [
            "protocol_name": "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b",
            "init_ephemeral": String(repeating: "01", count: 32), "resp_ephemeral": String(repeating: "02", count: 32),
            "init_static": String(repeating: "03", count: 32), "resp_static": String(repeating: "04", count: 32),
            "init_psks": [String(repeating: "05", count: 32)], "resp_psks": [String(repeating: "05", count: 32)],
        ]
        // Produce the messages with the library, then check the vector against a different responder key.
        var i = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true, prologue: [], psk: [UInt8](repeating: 5, count: 32),
                                        staticPrivateKey: [UInt8](repeating: 3, count: 32), ephemeralPrivateKey: [UInt8](repeating: 1, count: 32))
        var r = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: false, prologue: [], psk: [UInt8](repeating: 5, count: 32),
                                        staticPrivateKey: [UInt8](repeating: 4, count: 32), ephemeralPrivateKey: [UInt8](repeating: 2, count: 32))
        let m1 = try i.writeMessage(payload: [1]); _ = try r.readMessage(m1)
        let m2 = try r.writeMessage(payload: [2]); _ = try i.readMessage(m2)
        let m3 = try i.writeMessage(payload: [3]); _ = try r.readMessage(m3)
        var good = vector
        good["messages"] = [["payload": "01", "ciphertext": Hex.encode(m1)], ["payload": "02", "ciphertext": Hex.encode(m2)],
                            ["payload": "03", "ciphertext": Hex.encode(m3)]]
        good["handshake_hash"] = Hex.encode(i.handshakeHash)
        var bad = good
        bad["resp_static"] = String(repeating: "06", count: 32)
        let json = try JSONSerialization.data(withJSONObject: ["vectors": [good, bad]])
        let report = VectorChecker.check(fileContents: [UInt8](json), fileName: "s.json")
        XCTAssertEqual(report.passed, 1, report.lines.joined(separator: "\n"))
        XCTAssertEqual(report.failed, 1)
        XCTAssertTrue(report.lines[1].contains("message 1"), report.lines[1])
    }

    func testCheckerCatchesCorruptHandshakeAndTransportMessages() throws {
        for message in [0, 1, 4] {
            let report = VectorChecker.check(fileContents: try corruptedCacophony(message: message), fileName: "bad.json")
            XCTAssertEqual(report.failed, 1, "message \(message)")
            XCTAssertEqual(report.passed, 3, "message \(message)")
            XCTAssertTrue(report.lines.contains { $0.hasPrefix("FAIL bad.json#3 ") && $0.contains("message \(message)") },
                          report.lines.joined(separator: "\n"))
        }
    }

    func testCheckerReportsBrokenFilesAndSkipsUnknownProtocols() {
        let notJSON = VectorChecker.check(fileContents: Array("{nope".utf8), fileName: "x.json")
        XCTAssertEqual(notJSON.failed, 1)
        XCTAssertTrue(notJSON.lines[0].hasPrefix("FAIL x.json"))
        let other = VectorChecker.check(
            fileContents: Array(#"{"vectors":[{"protocol_name":"Noise_XX_25519_ChaChaPoly_SHA256"}]}"#.utf8), fileName: "y.json")
        XCTAssertEqual(other.skipped, 1)
        XCTAssertEqual(other.failed, 0)
        XCTAssertEqual(other.lines, ["skip y.json#0 Noise_XX_25519_ChaChaPoly_SHA256"])
        let wrongKDF = VectorChecker.check(fileContents: Array(#"""
            {"vectors":[{"protocol_name":"weft_link_keys_v1","chaining_key":"\#(String(repeating: "00", count: 64))",
              "tcp_i2r":"00","tcp_r2i":"00","udp_i2r":"00","udp_r2i":"00"}]}
            """#.utf8), fileName: "z.json")
        XCTAssertEqual(wrongKDF.failed, 1)
    }
}

/// Runs the built `weft-vectors` executable.
final class WeftVectorsBinaryTests: XCTestCase {
    private func binary() throws -> URL {
        var directories: [URL] = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let exe = Bundle.main.executableURL { directories.append(exe.deletingLastPathComponent()) }
        directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for dir in directories {
            let candidate = dir.appendingPathComponent("weft-vectors")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw XCTSkip("weft-vectors not found next to the test bundle (looked in \(directories.map(\.path)))")
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, lines: [String]) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        return (process.terminationStatus, lines)
    }

    func testBinaryPassesKeysVectors() throws {
        let (status, lines) = try run(try vectorFiles().map(\.path))
        XCTAssertEqual(status, 0, lines.joined(separator: "\n"))
        let last = try XCTUnwrap(lines.last)
        XCTAssertTrue(last.range(of: #"^[0-9]+ passed, 0 failed(, [0-9]+ skipped)?$"#, options: .regularExpression) != nil, last)
        XCTAssertGreaterThanOrEqual(Int(last.split(separator: " ")[0]) ?? 0, 10)
    }

    func testBinaryFailsOnCorruptedCiphertext() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-vectors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("corrupt.json")
        try Data(try corruptedCacophony(message: 2)).write(to: bad)
        let (status, lines) = try run([bad.path])
        XCTAssertEqual(status, 1)
        XCTAssertEqual(lines.last, "3 passed, 1 failed, 0 skipped")
        XCTAssertTrue(lines.contains { $0.hasPrefix("FAIL corrupt.json#3") })
    }

    func testBinaryFailsOnUnreadableFile() throws {
        let (status, _) = try run(["/nonexistent/weft-vectors.json"])
        XCTAssertEqual(status, 1)
    }
}
