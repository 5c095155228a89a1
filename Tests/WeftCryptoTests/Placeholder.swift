import XCTest
final class PlaceholderWeftCryptoTests: XCTestCase { func testNothing() {} }
