// "Did you mean": the nearest command to a typo, and none when nothing is close.
import WeftControl
import XCTest

final class SuggestionTests: XCTestCase {
    private let commands = ["launch", "status", "connect", "forget", "stop", "attach", "detach", "ps", "expose", "hide", "reset",
                            "rotate-key", "password", "rotate-password", "doctor", "version"]

    func testTyposFindTheCommand() {
        XCTAssertEqual(Suggestion.nearest("stauts", among: commands), "status", "an adjacent swap is one edit")
        XCTAssertEqual(Suggestion.nearest("lanuch", among: commands), "launch")
        XCTAssertEqual(Suggestion.nearest("statu", among: commands), "status", "an abbreviation")
        XCTAssertEqual(Suggestion.nearest("docter", among: commands), "doctor")
        XCTAssertEqual(Suggestion.nearest("atach", among: commands), "attach")
        XCTAssertEqual(Suggestion.nearest("versoin", among: commands), "version")
    }

    func testNothingCloseSuggestsNothing() {
        XCTAssertNil(Suggestion.nearest("xyz", among: commands))
        XCTAssertNil(Suggestion.nearest("rotate", among: commands), "two commands start with it: no guess")
        XCTAssertNil(Suggestion.nearest("p", among: commands), "one letter is no typo of anything")
        XCTAssertNil(Suggestion.nearest("frobnicate", among: commands))
    }
}
