// The words an operator reads for a target that cannot be dialed (DialReport), in memory.
import NIOCore
@testable import WeftRouter
import XCTest

final class DialReportTests: XCTestCase {
    func testErrorsReadAsWords() {
        XCTAssertEqual(DialReport.describe(IOError(errnoCode: EHOSTUNREACH, reason: "connect")), "no route to host")
        XCTAssertEqual(DialReport.describe(IOError(errnoCode: ECONNREFUSED, reason: "connect")), "connection refused")
        XCTAssertEqual(DialReport.describe(ChannelError.connectTimeout(.seconds(5))), "timed out")
        XCTAssertEqual(DialReport.connectFailure("10.55.0.77:6783", IOError(errnoCode: EHOSTUNREACH, reason: "connect")),
                       "cannot connect to 10.55.0.77:6783: no route to host")
    }

    /// Between attempts: what failed and when the next try is; during one: that it is under way.
    func testReasonSaysRetryingOrConnectingNow() {
        let failure = "cannot connect to 10.55.0.77:6783: no route to host"
        XCTAssertEqual(DialReport.reason(lastFailure: failure, failures: 3, dialing: false, secondsToRetry: 7.2),
                       "cannot connect to 10.55.0.77:6783: no route to host (retrying in 8 s)")
        XCTAssertEqual(DialReport.reason(lastFailure: failure, failures: 3, dialing: true, secondsToRetry: 3600),
                       "connecting now (last attempt: cannot connect to 10.55.0.77:6783: no route to host)")
        XCTAssertEqual(DialReport.reason(lastFailure: nil, failures: 0, dialing: true, secondsToRetry: 3600), "connecting now")
        XCTAssertEqual(DialReport.reason(lastFailure: nil, failures: 0, dialing: false, secondsToRetry: 0), "waiting to connect")
        XCTAssertEqual(DialReport.reason(lastFailure: failure, failures: 1, dialing: false, secondsToRetry: -0.2), failure + " (retrying in 0 s)")
    }

    /// The recovery line says which side made the connection.
    func testRecoveredSaysWhoConnected() {
        XCTAssertEqual(DialReport.recoveredMessage("10.55.0.77:6783", failures: 1), "connected to 10.55.0.77:6783 again after 1 failed attempt")
        XCTAssertEqual(DialReport.recoveredMessage("10.55.0.77:6783", failures: 4, inbound: true),
                       "10.55.0.77:6783 recovered: its peer connected to this router after 4 failed attempts to dial it")
    }
}
