import XCTest
final class PlaceholderWeftWireTests: XCTestCase { func testNothing() {} }
