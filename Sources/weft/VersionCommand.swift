// `weft version [--json]` and `weft --version`: the release, the git commit (Plugins/BuildInfo),
// the protocol versions and the data-plane ciphers this CPU allows (WeftControl/VersionReport).
import ArgumentParser
import Foundation
import WeftControl

extension VersionReport {
    static var thisBuild: VersionReport { VersionReport(version: BuildInfo.version, commit: BuildInfo.commit) }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Show the version, git commit, protocol versions and the data-plane ciphers this CPU allows.")

    @Flag(help: "Print JSON: {version, commit, protocolVersions, ciphers}.")
    var json = false

    func run() throws {
        let report = VersionReport.thisBuild
        if json { try printJSON(report) } else { print(report.text) }
    }
}
