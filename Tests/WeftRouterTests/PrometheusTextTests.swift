// The hand-written Prometheus exposition: families, labels and escaping. (The integration test
// MetricsTests parses a live router's /metrics with the reference parser.)
import XCTest
import WeftControl
@testable import WeftRouter

final class PrometheusTextTests: XCTestCase {
    func testFamiliesHaveHelpTypeAndEscapedLabels() {
        var out = PrometheusText()
        out.family("weft_x_total", .counter, "Things.", [([("peer", "a\"b\\c\nd")], 3), ([], 4)])
        out.family("weft_empty", .gauge, "None yet.", [])
        XCTAssertEqual(out.text, """
            # HELP weft_x_total Things.
            # TYPE weft_x_total counter
            weft_x_total{peer="a\\"b\\\\c\\nd"} 3
            weft_x_total 4
            # HELP weft_empty None yet.
            # TYPE weft_empty gauge

            """)
    }

    func testHandshakeFailureReasonsAreSnakeCase() {
        XCTAssertEqual(RouterMetrics.reasonLabel(.passwordMismatch), "password_mismatch")
        XCTAssertEqual(RouterMetrics.reasonLabel(.unknownPSKId), "unknown_psk_id")
        XCTAssertEqual(RouterMetrics.reasonLabel(nil), "closed")
    }

    func testMetricsAddressParsing() throws {
        XCTAssertEqual(try RouterConfig.parseMetricsAddress("127.0.0.1:6782"), "127.0.0.1:6782")
        XCTAssertEqual(try RouterConfig.parseMetricsAddress("[::1]:9100"), "[::1]:9100")
        XCTAssertNil(try RouterConfig.parseMetricsAddress("off"))
        for bad in ["6782", "localhost", ":6782", "127.0.0.1:0", "127.0.0.1:70000"] {
            XCTAssertThrowsError(try RouterConfig.parseMetricsAddress(bad), bad)
        }
    }
}
