// The first line of a password file, whatever its line ending, and the warnings for what is
// probably a mistake in it.
import XCTest
@testable import WeftRouter

final class PasswordTextTests: XCTestCase {
    private func read(_ text: String) throws -> PasswordText { try PasswordText(Array(text.utf8), source: "password file p") }

    func testOneLineEndingIsStrippedWhateverTheSystem() throws {
        for text in ["correct horse battery", "correct horse battery\n", "correct horse battery\r\n"] {
            let password = try read(text)
            XCTAssertEqual(password.password, "correct horse battery", text.debugDescription)
            XCTAssertEqual(password.warnings, [], text.debugDescription)
        }
    }

    func testProbableMistakesAreWarnedAboutAndKept() throws {
        let trailing = try read("correct horse battery \n")
        XCTAssertEqual(trailing.password, "correct horse battery ")
        XCTAssertTrue(trailing.warnings.first?.contains("begins or ends with a space or tab") == true, "\(trailing.warnings)")
        let control = try read("correct\thorse battery\r\r\n")
        XCTAssertEqual(control.password, "correct\thorse battery\r")
        XCTAssertTrue(control.warnings.first?.contains("password file p contains control characters") == true, "\(control.warnings)")
        let lines = try read("correct horse battery\nsecond line\n")
        XCTAssertEqual(lines.password, "correct horse battery")
        XCTAssertEqual(lines.warnings, ["password file p has more than one line; only the first is the password"])
        XCTAssertEqual(try read("correct horse battery\n\n\r\n").warnings, [], "blank lines after it are fine")
        XCTAssertThrowsError(try PasswordText([0x61, 0xFF, 0x0A], source: "p"))
        XCTAssertEqual(PasswordText(verbatim: " with blanks\r\n").password, " with blanks\r\n")
    }
}

extension PasswordTextTests {
    /// The probe's case: a file written with CR LF gives the PSK its LF twin gives.
    func testLaunchPasswordFileWithCRLFGivesTheSamePassword() throws {
        let dir = NSTemporaryDirectory() + "weft-pw-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "correct horse battery\r\n".write(toFile: "\(dir)/crlf", atomically: true, encoding: .utf8)
        try "correct horse battery\n".write(toFile: "\(dir)/lf", atomically: true, encoding: .utf8)
        let crlf = try LaunchInputs.password(file: "\(dir)/crlf", environment: [:])
        XCTAssertEqual(crlf?.password, "correct horse battery")
        XCTAssertEqual(crlf, try LaunchInputs.password(file: "\(dir)/lf", environment: [:]))
    }
}
