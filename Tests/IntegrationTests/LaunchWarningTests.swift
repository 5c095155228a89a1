// What `weft launch` warns about at start without refusing: no password (traffic and gossip
// unencrypted, said once) and a password file that others can read (named, with the fix).
import Foundation
import XCTest

final class LaunchWarningTests: XCTestCase {
    func testNoPasswordWarnsOnceThatTrafficIsUnencrypted() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.launch(1, password: nil)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        let warnings = net.log(1).split(separator: "\n").filter { $0.contains("unencrypted") }
        XCTAssertEqual(warnings.count, 1, net.log(1))
        XCTAssertTrue(warnings.first?.contains("traffic and gossip") == true, net.log(1))
    }

    func testPasswordFileReadableByOthersIsNamedWithTheFix() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let file = "\(net.directory)/password"
        try "correct horse battery\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(file, 0o644), 0)
        try net.launch(1, password: nil, extraArgs: ["--password-file", file])
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        let log = net.log(1)
        XCTAssertTrue(log.contains("password file \(file) is readable") && log.contains("chmod 600 \(file)"), log)
        XCTAssertFalse(log.contains("unencrypted"), log)
    }
}
