import XCTest
final class PlaceholderWeftMeshTests: XCTestCase { func testNothing() {} }
