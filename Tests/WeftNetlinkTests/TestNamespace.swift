import Foundation
import XCTest
@testable import WeftNetlink

/// Runs `ip` (tests only: the module itself never shells out) and returns its stdout.
@discardableResult
func ip(_ arguments: String..., allowFailure: Bool = false, file: StaticString = #filePath,
        line: UInt = #line) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    if process.terminationStatus != 0 && !allowFailure {
        XCTFail("ip \(arguments.joined(separator: " ")) failed: \(String(decoding: stderr, as: UTF8.self))",
                file: file, line: line)
    }
    return String(decoding: stdout, as: UTF8.self)
}

/// A throwaway network namespace `<prefix><random>` (prefix `wnl` unless given) with an open fd
/// and a RouteNetlink inside it.
final class TestNamespace {
    let name: String
    let fd: Int32
    let netlink: RouteNetlink

    private init(name: String, fd: Int32, netlink: RouteNetlink) {
        self.name = name
        self.fd = fd
        self.netlink = netlink
    }

    static func create(prefix: String = "wnl") throws -> TestNamespace {
        let name = prefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try ip("netns", "add", name)
        do {
            let fd = try NetworkNamespace.open(name: name)
            do {
                return TestNamespace(name: name, fd: fd, netlink: try RouteNetlink.inNamespace(fd: fd))
            } catch {
                close(fd)
                throw error
            }
        } catch {
            _ = try? ip("netns", "del", name, allowFailure: true)
            throw error
        }
    }

    func delete() {
        close(fd)
        _ = try? ip("netns", "del", name, allowFailure: true)
    }
}

/// Skips unless root; creates `count` namespaces, runs `body`, and deletes them whatever happens.
func withNamespaces(_ count: Int, prefix: String = "wnl", _ body: ([TestNamespace]) throws -> Void) throws {
    guard getuid() == 0 else {
        throw XCTSkip("needs root: creates network namespaces with `ip netns add`")
    }
    var namespaces: [TestNamespace] = []
    defer { namespaces.forEach { $0.delete() } }
    for _ in 0..<count { namespaces.append(try TestNamespace.create(prefix: prefix)) }
    try body(namespaces)
}

/// Identity of the calling thread's network namespace.
func currentThreadNamespace() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")) ?? "?"
}
