// contrib/weft.service must not drift from the CLI: its key lines are there, and every
// `weft launch` flag it (or the example /etc/default/weft) uses is accepted by the real binary.
// No privileges needed.
import Foundation
import XCTest

final class SystemdUnitTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func contrib(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("contrib/\(name)"), encoding: .utf8)
    }

    /// `KEY=value` lines of a unit or environment file, comments dropped.
    private func settings(_ text: String) -> [(key: String, value: String)] {
        text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { return nil }
            return (String(trimmed[..<eq]), String(trimmed[trimmed.index(after: eq)...]))
        }
    }

    private func value(_ key: String, in text: String) -> String? { settings(text).first { $0.key == key }?.value }

    /// `--flag` tokens of a command line.
    private func flags(_ line: String) -> [String] {
        line.split(separator: " ").map(String.init).filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=")[0]) }
    }

    func testUnitHasTheKeyLines() throws {
        let unit = try contrib("weft.service")
        XCTAssertTrue(["exec", "simple"].contains(value("Type", in: unit) ?? ""), "Type= must be exec or simple")
        XCTAssertEqual(value("LoadCredential", in: unit), "weft-password:/etc/weft/password")
        XCTAssertEqual(value("Restart", in: unit), "on-failure")
        XCTAssertEqual(value("ExecReload", in: unit), "/bin/kill -HUP $MAINPID")
        XCTAssertEqual(value("StateDirectory", in: unit), "weft")
        XCTAssertEqual(value("RuntimeDirectory", in: unit), "weft")
        XCTAssertEqual(value("EnvironmentFile", in: unit), "-/etc/default/weft")
        for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
            let caps = (value(key, in: unit) ?? "").split(separator: " ").map(String.init)
            XCTAssertTrue(caps.contains("CAP_NET_ADMIN") && caps.contains("CAP_NET_RAW"), "\(key)=\(caps)")
        }
        let exec = try XCTUnwrap(value("ExecStart", in: unit))
        XCTAssertTrue(exec.hasSuffix("/weft launch") || exec.contains("/weft launch "), exec)
        for needed in ["--password-file ${CREDENTIALS_DIRECTORY}/weft-password", "--data-dir /var/lib/weft",
                       "--socket /run/weft/weft.sock", "--trusted-subnets ${WEFT_TRUSTED_SUBNETS}", "$WEFT_PEERS"] {
            XCTAssertTrue(exec.contains(needed), "ExecStart lacks \(needed): \(exec)")
        }
    }

    /// Every flag in ExecStart and in the example environment file (also the commented-out
    /// suggestions) is listed by `weft launch --help`.
    func testEveryFlagIsKnownToWeftLaunch() throws {
        let unit = try contrib("weft.service")
        let defaults = try contrib("weft.default")
        let help = try Shell.run([binary("weft"), "launch", "--help"]).output
        let used = flags(try XCTUnwrap(value("ExecStart", in: unit)))
            + defaults.split(separator: "\n").filter { $0.contains("WEFT_OPTIONS=") }.flatMap { flags(String($0).replacingOccurrences(of: "\"", with: " ")) }
        XCTAssertTrue(used.contains("--password-file") && used.contains("--trusted-subnets-file"), "\(used)")
        for flag in Set(used) {
            let listed = help.range(of: "\\s\(flag)(\\s|=|$)", options: .regularExpression) != nil
            XCTAssertTrue(listed, "weft launch --help does not list \(flag)")
        }
    }

    /// The ExecStart line, with systemd's substitutions done as systemd does them, parses: the
    /// binary gets past argument parsing to validation (a bad --port stops it there).
    func testExecStartParses() throws {
        let unit = try contrib("weft.service")
        let defaults = try contrib("weft.default")
        let dir = NSTemporaryDirectory() + "weft-unit-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a long enough password\n".write(toFile: "\(dir)/weft-password", atomically: true, encoding: .utf8)
        try "10.0.0.0/8\n".write(toFile: "\(dir)/trusted", atomically: true, encoding: .utf8)
        var env = Dictionary(uniqueKeysWithValues: settings(defaults).map { ($0.key, $0.value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))) })
        env["WEFT_OPTIONS", default: ""] += " --trusted-subnets-file \(dir)/trusted"
        var args: [String] = []
        for word in try XCTUnwrap(value("ExecStart", in: unit)).split(separator: " ").map(String.init) {
            if word == "${CREDENTIALS_DIRECTORY}/weft-password" {
                args.append("\(dir)/weft-password")
            } else if word.hasPrefix("${"), word.hasSuffix("}") {
                args.append(env[String(word.dropFirst(2).dropLast())] ?? "")  // one argument, even when empty
            } else if word.hasPrefix("$") {
                args += (env[String(word.dropFirst())] ?? "").split(separator: " ").map(String.init)  // split on spaces
            } else {
                args.append(word)
            }
        }
        args[0] = binary("weft")
        args = args.map { $0 == "/var/lib/weft" ? "\(dir)/data" : $0 == "/run/weft/weft.sock" ? "\(dir)/weft.sock" : $0 }
        let result = try Shell.run(["env", "-u", "WEFT_PASSWORD"] + args + ["--port", "0"], check: false)
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("--port 0 is not a port number"), "\(args): \(result.output)")
    }

    func testSystemdAnalyzeVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is not installed")
        let dir = NSTemporaryDirectory() + "weft-unit-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // verify checks that ExecStart's binary exists: point it at the one under test.
        let unit = try contrib("weft.service").replacingOccurrences(of: "/usr/local/bin/weft", with: binary("weft"))
        try unit.write(toFile: "\(dir)/weft.service", atomically: true, encoding: .utf8)
        // The Documentation= pages are generated, not in the tree: PackageInstallTests verifies
        // them against the installed package.
        let result = try Shell.run([analyze, "verify", "--man=no", "\(dir)/weft.service"], check: false)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertFalse(result.output.contains("weft.service"), result.output)
    }
}
