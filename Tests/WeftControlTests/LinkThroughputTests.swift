// The mesh page's throughput figure (LinkThroughput.between), in memory.
import WeftControl
import XCTest

final class LinkThroughputTests: XCTestCase {
    func testRateIsBitsPerSecondOverTheInterval() {
        let earlier = LinkThroughput.Sample(atNanos: 5_000_000_000, txBytes: 1_000, rxBytes: 0)
        let later = LinkThroughput.Sample(atNanos: 7_000_000_000, txBytes: 251_000, rxBytes: 125)
        XCTAssertEqual(LinkThroughput.between(earlier, later, peer: "p"),
                       LinkThroughput(peer: "p", txBitsPerSecond: 1_000_000, rxBitsPerSecond: 500, intervalMs: 2_000))
    }

    /// A new session counts from zero, and no time passing is no interval: neither is a rate.
    func testNoRateAcrossACounterResetOrNoTime() {
        let earlier = LinkThroughput.Sample(atNanos: 5_000_000_000, txBytes: 9_000, rxBytes: 9_000)
        XCTAssertNil(LinkThroughput.between(earlier, .init(atNanos: 6_000_000_000, txBytes: 10, rxBytes: 9_500), peer: "p"))
        XCTAssertNil(LinkThroughput.between(earlier, .init(atNanos: 5_000_000_000, txBytes: 9_500, rxBytes: 9_500), peer: "p"))
        XCTAssertEqual(LinkThroughput.between(earlier, .init(atNanos: 6_000_000_000, txBytes: 9_000, rxBytes: 9_000), peer: "p")?.txBitsPerSecond, 0)
    }
}
