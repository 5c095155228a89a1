// `weft doctor`: the host and router checks of WeftRouter/Doctor.swift, as text or JSON.
import ArgumentParser
import Foundation
import WeftHost
import WeftRouter

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host (and the router on --socket, if one answers) for known overlay problems.",
        discussion: "Checks: \(Doctor.checks.map(\.name).joined(separator: ", ")). Exit status 0 when no check fails, 1 otherwise.")

    @Flag(help: "Print a JSON array of {check, status, detail, fix}.")
    var json = false
    @Option(name: .customLong("sample-seconds"), help: "How long to watch the IP fragmentation counters.")
    var sampleSeconds: Double = 3
    @OptionGroup var socket: SocketOption

    func run() throws {
        guard sampleSeconds >= 0, sampleSeconds <= 60 else { throw ValidationError("--sample-seconds must be within 0…60") }
        let facts = DoctorHost.gather(socketPath: socket.path, sampleSeconds: sampleSeconds)
        let checks = Doctor.run(facts)
        if json {
            try printJSON(checks)
        } else {
            if let router = facts.router {
                print("router \(router.name) (\(router.nickname)) on \(socket.path)")
            } else {
                print("host checks only: \(facts.routerProblem ?? "no router answers on \(socket.path)")")
            }
            print(Doctor.text(checks))
        }
        if checks.contains(where: { $0.status == .fail }) { throw ExitCode(ExitStatus.failed) }
    }
}
