// Test hosts as network namespaces on a shared underlay switch (or, `routed: true`, each in its
// own subnet behind one routing namespace), and real `weft` processes in them. Everything a
// TestNet creates carries its own prefix and is removed by `cleanup()`, also when a test fails;
// it only ever signals the processes it started.
import Foundation
import XCTest
@testable import WeftRouter

enum Shell {
    /// Runs a command to completion; returns its exit status and combined output.
    @discardableResult
    static func run(_ args: [String], check: Bool = true) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if check && process.terminationStatus != 0 {
            throw ShellError(description: "\(args.joined(separator: " ")) exited \(process.terminationStatus): \(output)")
        }
        return (process.terminationStatus, output)
    }
}

struct ShellError: Error, CustomStringConvertible { let description: String }

/// Integration tests need root for namespaces; without it they say so and skip.
func requireRoot() throws {
    try XCTSkipUnless(getuid() == 0, "integration tests need root (network namespaces); skipped")
}

/// The built binaries, next to the test bundle (or $WEFT_BIN_DIR).
func binary(_ name: String) -> String {
    if let dir = ProcessInfo.processInfo.environment["WEFT_BIN_DIR"] { return "\(dir)/\(name)" }
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.pathComponents.count > 1 {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return name
}

final class TestNet {
    struct Host {
        let index: Int
        let namespace: String
        /// The address other routers name it by: IPv4, or IPv6 on an IPv6-only host.
        let address: String
        let socket: String
        let dataDir: String
        /// fd00::N on a dual-stack or IPv6-only host (flat underlay).
        var address6: String? = nil
    }

    /// Which families a host's underlay has (flat underlay only): 198.18.0.N/24, fd00::N/64.
    enum UnderlayStack { case ipv4, ipv6, dual }

    let prefix: String
    let directory: String
    /// The bridge namespace (flat) or the routing namespace (routed) every host's veth ends in.
    let switchNamespace: String
    /// Each host in its own /30 behind `switchNamespace`, which forwards between them. The
    /// kernel's neighbour table is shared by all namespaces (gc_thresh3, 1024 here): 50+ hosts on
    /// one flat L2 fill it, which looks like a Weft failure. Routed, there are two entries a host.
    let routed: Bool
    private(set) var hosts: [Host] = []
    /// Workload namespaces (`<prefix>-wN`) from addWorkload().
    private(set) var workloads: [String] = []
    /// NAT gateway namespaces (`<prefix>-gN`) from addHostBehindNAT().
    private var gateways: [String] = []
    private var routers: [Int: Process] = [:]
    private var background: [Process] = []
    /// The `weft` binary the routers and `cli` run: the build's (or $WEFT_BIN_DIR's) unless a
    /// test installs another one (PackageInstallTests).
    var weft = binary("weft")
    /// A command every router and `cli` call runs under, e.g. one that hides a folder first.
    var wrapper: [String] = []

    /// `count` hosts, 198.18.0.(index)/24 on the underlay (and/or fd00::(index)/64 by `stack`);
    /// host indexes start at 1. Routed, host `index` is 198.18.0.0 + 4·index + 2 in a /30 whose
    /// .1 is the routing namespace.
    init(hosts count: Int, routed: Bool = false, stack: UnderlayStack = .ipv4, file: StaticString = #filePath) throws {
        self.routed = routed
        let tag = String(UInt32.random(in: 0..<0xFFFFFF), radix: 36)
        prefix = "wt\(tag)"
        directory = NSTemporaryDirectory() + "weft-it-\(tag)"
        switchNamespace = "\(prefix)-sw"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try Shell.run(["ip", "netns", "add", switchNamespace])
            if routed {
                try Shell.run(["ip", "netns", "exec", switchNamespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            } else {
                try Shell.run(["ip", "-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
                try Shell.run(["ip", "-n", switchNamespace, "link", "set", "br0", "up"])
            }
            for _ in 0..<count { try addHost(stack: stack) }
        } catch {
            cleanup()
            throw error
        }
    }

    @discardableResult
    func addHost(mtu: Int = 1500, stack: UnderlayStack = .ipv4) throws -> Host {
        let index = hosts.count + 1
        let ns = "\(prefix)-h\(index)"
        try Shell.run(["ip", "netns", "add", ns])
        let outside = "\(prefix)h\(index)"
        try Shell.run(["ip", "-n", switchNamespace, "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns])
        try Shell.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        try Shell.run(["ip", "-n", ns, "link", "set", "eth0", "mtu", "\(mtu)", "up"])
        var address: String
        var address6: String?
        if routed {
            let gateway = Self.routedAddress(index, 1)
            address = Self.routedAddress(index, 2)
            try Shell.run(["ip", "-n", switchNamespace, "addr", "add", "\(gateway)/30", "dev", outside])
            try Shell.run(["ip", "-n", switchNamespace, "link", "set", outside, "mtu", "\(mtu)", "up"])
            try Shell.run(["ip", "-n", ns, "addr", "add", "\(address)/30", "dev", "eth0"])
            try Shell.run(["ip", "-n", ns, "route", "add", "default", "via", gateway])
        } else {
            address = "198.18.0.\(index)"
            try Shell.run(["ip", "-n", switchNamespace, "link", "set", outside, "master", "br0", "mtu", "\(mtu)", "up"])
            if stack != .ipv6 { try Shell.run(["ip", "-n", ns, "addr", "add", "\(address)/24", "dev", "eth0"]) }
            if stack != .ipv4 {
                address6 = "fd00::\(index)"
                // nodad: usable at once (duplicate address detection would hold it for a second).
                try Shell.run(["ip", "-n", ns, "addr", "add", "fd00::\(index)/64", "dev", "eth0", "nodad"])
                if stack == .ipv6 { address = "fd00::\(index)" }
            }
        }
        let host = Host(index: index, namespace: ns, address: address, socket: "\(directory)/h\(index).sock",
                        dataDir: "\(directory)/h\(index)", address6: address6)
        hosts.append(host)
        return host
    }

    /// A host behind its own masquerading NAT gateway (`nft masquerade fully-random`: every
    /// mapping gets a random public port, as carrier-grade and cloud NATs do). The gateway
    /// `<prefix>-gN` takes the place a routed host has on the underlay (its public address is
    /// what a routed host `N` would have); the host is 100.64.N.2/24 behind it, `lanMTU` on that
    /// hop. The host's `address` is the private one: nothing outside can dial it. Routed only.
    @discardableResult
    func addHostBehindNAT(lanMTU: Int = 1500) throws -> Host {
        precondition(routed, "a NAT gateway needs the routed underlay")
        let index = hosts.count + 1
        let gateway = "\(prefix)-g\(index)", ns = "\(prefix)-h\(index)"
        try Shell.run(["ip", "netns", "add", gateway])
        gateways.append(gateway)
        let outside = "\(prefix)h\(index)"
        try Shell.run(["ip", "-n", switchNamespace, "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", gateway])
        try Shell.run(["ip", "-n", switchNamespace, "addr", "add", "\(Self.routedAddress(index, 1))/30", "dev", outside])
        try Shell.run(["ip", "-n", switchNamespace, "link", "set", outside, "up"])
        try Shell.run(["ip", "-n", gateway, "link", "set", "lo", "up"])
        try Shell.run(["ip", "-n", gateway, "addr", "add", "\(Self.routedAddress(index, 2))/30", "dev", "eth0"])
        try Shell.run(["ip", "-n", gateway, "link", "set", "eth0", "up"])
        try Shell.run(["ip", "-n", gateway, "route", "add", "default", "via", Self.routedAddress(index, 1)])
        try Shell.run(["ip", "netns", "exec", gateway, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        try Shell.run(["ip", "netns", "exec", gateway, "nft", "add table ip nat"])
        try Shell.run(["ip", "netns", "exec", gateway, "nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }"])
        try Shell.run(["ip", "netns", "exec", gateway, "nft", "add rule ip nat post oifname \"eth0\" masquerade fully-random"])

        try Shell.run(["ip", "netns", "add", ns])
        try Shell.run(["ip", "-n", gateway, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", ns])
        try Shell.run(["ip", "-n", gateway, "addr", "add", "100.64.\(index).1/24", "dev", "lan0"])
        try Shell.run(["ip", "-n", gateway, "link", "set", "lan0", "mtu", "\(lanMTU)", "up"])
        try Shell.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        try Shell.run(["ip", "-n", ns, "addr", "add", "100.64.\(index).2/24", "dev", "eth0"])
        try Shell.run(["ip", "-n", ns, "link", "set", "eth0", "mtu", "\(lanMTU)", "up"])
        try Shell.run(["ip", "-n", ns, "route", "add", "default", "via", "100.64.\(index).1"])
        let host = Host(index: index, namespace: ns, address: "100.64.\(index).2", socket: "\(directory)/h\(index).sock",
                        dataDir: "\(directory)/h\(index)")
        hosts.append(host)
        return host
    }

    /// The NAT gateway namespace of host `index` (from addHostBehindNAT).
    func gateway(_ index: Int) -> String { "\(prefix)-g\(index)" }

    /// Gives host `index`'s NAT gateway another public address (198.19.N.2/30), as when a
    /// provider renumbers it or the host roams: the old address goes, and with it (the kernel
    /// drops masqueraded mappings of a removed address) every mapping. Returns the new address.
    @discardableResult
    func renumberGateway(_ index: Int) throws -> String {
        let outside = "\(prefix)h\(index)", gw = gateway(index)
        let (near, far) = ("198.19.\(index).1", "198.19.\(index).2")
        try Shell.run(["ip", "-n", switchNamespace, "addr", "add", "\(near)/30", "dev", outside])
        try Shell.run(["ip", "-n", gw, "addr", "flush", "dev", "eth0"])
        try Shell.run(["ip", "-n", gw, "addr", "add", "\(far)/30", "dev", "eth0"])
        try Shell.run(["ip", "-n", gw, "route", "replace", "default", "via", near])
        return far
    }

    /// Address `offset` (1: the routing namespace, 2: the host) of host `index`'s /30.
    private static func routedAddress(_ index: Int, _ offset: Int) -> String {
        let n = 198 << 24 | 18 << 16 | (4 * index + offset)
        return "\(n >> 24 & 255).\(n >> 16 & 255).\(n >> 8 & 255).\(n & 255)"
    }

    /// Takes host `index` off the underlay (its switch-side veth down) or puts it back: a partition
    /// that leaves the router and its sockets running.
    func setUnderlay(_ index: Int, up: Bool) throws {
        try Shell.run(["ip", "-n", switchNamespace, "link", "set", "\(prefix)h\(index)", up ? "up" : "down"])
    }

    /// Destroys host `index`'s TCP sockets to host `peer` (`ss -K`): its router sees those links
    /// close at once, while `peer`, if cut off, learns of it only when it can send again.
    func resetConnections(_ index: Int, to peer: Int) throws {
        try Shell.run(["ip", "netns", "exec", host(index).namespace, "ss", "-K", "dst", host(peer).address])
    }

    /// A bare network namespace `<prefix>-wN` for a workload to attach; removed by cleanup().
    func addWorkload() throws -> String {
        let ns = "\(prefix)-w\(workloads.count + 1)"
        try Shell.run(["ip", "netns", "add", ns])
        workloads.append(ns)
        return ns
    }

    func host(_ index: Int) -> Host { hosts[index - 1] }

    /// A name that resolves to `address` inside host `index` only: `ip netns exec` mounts
    /// /etc/netns/<namespace>/hosts over /etc/hosts (removed by cleanup()).
    func addHostsEntry(_ index: Int, name: String, address: String) throws {
        let dir = "/etc/netns/\(host(index).namespace)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "127.0.0.1 localhost\n::1 localhost\n\(address) \(name)\n".write(toFile: "\(dir)/hosts", atomically: true, encoding: .utf8)
    }

    func nickname(_ index: Int) -> String { "\(prefix)-nick-\(index)" }

    /// Starts `weft launch` in host `index`; its log goes to `<dir>/h<index>.log`. `environment`
    /// is added to the router's (e.g. WEFT_PIPELINE).
    @discardableResult
    func launch(_ index: Int, peers: [Int] = [], password: String? = "correct horse battery", extraArgs: [String] = [],
                peerAddresses: [String] = [], environment extra: [String: String] = [:]) throws -> Process {
        let h = host(index)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = wrapper + ["ip", "netns", "exec", h.namespace, weft, "launch",
                             "--nickname", nickname(index), "--socket", h.socket, "--data-dir", h.dataDir,
                             "--log-level", "debug"] + metricsOff(extraArgs) + extraArgs + peers.map { host($0).address } + peerAddresses
        var environment = ProcessInfo.processInfo.environment
        environment["WEFT_PASSWORD"] = password
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let log = "\(directory)/h\(index).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        routers[index] = process
        return process
    }

    /// Metrics are off unless a test asks for them with its own `--metrics-addr`.
    private func metricsOff(_ args: [String]) -> [String] {
        args.contains("--metrics-addr") ? [] : ["--metrics-addr", "off"]
    }

    func router(_ index: Int) -> Process? { routers[index] }

    /// Routers on hosts 1…count, each but the first told only of host 1: gossip makes the mesh.
    func launchStar(_ count: Int, extraArgs: [String] = []) throws {
        try launch(1, extraArgs: extraArgs)
        for index in 2...count { try launch(index, peers: [1], extraArgs: extraArgs) }
    }

    /// Routers in a line 1–2–3 where hosts 1 and 3 cannot reach each other's underlay address.
    func launchLine(password: String? = "correct horse battery", extraArgs: [String] = []) throws {
        try Shell.run(["ip", "-n", host(1).namespace, "route", "add", "blackhole", "\(host(3).address)/32"])
        try Shell.run(["ip", "-n", host(3).namespace, "route", "add", "blackhole", "\(host(1).address)/32"])
        try launch(2, password: password, extraArgs: extraArgs)
        try launch(1, peers: [2], password: password, extraArgs: extraArgs)
        try launch(3, peers: [2], password: password, extraArgs: extraArgs)
    }

    func log(_ index: Int) -> String {
        (try? String(contentsOfFile: "\(directory)/h\(index).log", encoding: .utf8)) ?? ""
    }

    func kill(_ index: Int, signal: Int32 = SIGKILL) {
        guard let process = routers[index], process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    func connections(_ index: Int) throws -> [ConnectionStatus] {
        try JSONDecoder().decode([ConnectionStatus].self, from: Data(try control(index, "/v1/status/connections")))
    }

    /// The established connection of host `index` to host `peer`, if any.
    func connection(_ index: Int, to peer: Int) throws -> ConnectionStatus? {
        try connections(index).first { $0.state == .established && $0.nickname == nickname(peer) }
    }

    /// `weft status peers --json` of host `index`: its topology.
    func peers(_ index: Int) throws -> [PeerStatus] {
        try JSONDecoder().decode([PeerStatus].self, from: Data(try control(index, "/v1/status/peers")))
    }

    /// `weft status --json` of host `index`.
    func status(_ index: Int) throws -> RouterStatus {
        try JSONDecoder().decode(RouterStatus.self, from: Data(try control(index, "/v1/status")))
    }

    private func control(_ index: Int, _ path: String) throws -> [UInt8] {
        let (status, body) = try ControlClient(socketPath: host(index).socket, timeoutSeconds: 5).request(method: "GET", path: path)
        guard status == 200 else { throw ShellError(description: "GET \(path) answered \(status)") }
        return body
    }

    func cli(_ index: Int, _ args: [String]) throws -> (status: Int32, output: String) {
        try Shell.run(wrapper + [weft] + args + ["--socket", host(index).socket], check: false)
    }

    /// Starts a long-running helper (tcpdump, ping) inside a namespace; stopped by cleanup().
    func startBackground(namespace: String, _ args: [String], output: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace] + args
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        background.append(process)
        return process
    }

    struct Capture {
        let process: Process
        let path: String
        /// The UDP datagrams captured (read after `stopCapture`).
        func datagrams() throws -> [(src: String, dst: String, payload: [UInt8])] { try udpDatagrams(inPcap: path) }
        func bytes() -> Data { (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data() }
    }

    /// tcpdump on `interface` of `namespace` into `<dir>/<name>.pcap`; returns once tcpdump
    /// says it listens (under emulation that takes seconds, and a fixed pause lost packets).
    /// Immediate mode: otherwise the kernel hands packets over in blocks, up to a second late,
    /// and a capture stopped sooner keeps none of them.
    func startCapture(_ name: String, namespace: String, interface: String, filter: String) throws -> Capture {
        let path = "\(directory)/\(name).pcap", log = "\(directory)/tcpdump-\(name).log"
        let process = try startBackground(namespace: namespace, ["tcpdump", "--immediate-mode", "-i", interface, "-U", "-s", "0", "-w", path, filter], output: log)
        let listening = waitUntil(timeout: 20) {
            !process.isRunning || ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("listening on")
        }
        guard listening && process.isRunning else {
            throw ShellError(description: "tcpdump did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return Capture(process: process, path: path)
    }

    /// Lets the last packets reach the file, then stops tcpdump.
    func stopCapture(_ capture: Capture) {
        usleep(300_000)
        stopBackground(capture.process)
    }

    func stopBackground(_ process: Process) {
        if process.isRunning {
            process.interrupt()
            let deadline = Date().addingTimeInterval(3)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held.
    @discardableResult
    func waitUntil(timeout: TimeInterval, _ condition: () throws -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? condition()) == true { return true }
            usleep(200_000)
        }
        return (try? condition()) == true
    }

    func cleanup() {
        for process in routers.values where process.isRunning {
            process.terminate()
        }
        let deadline = Date().addingTimeInterval(5)
        for process in routers.values {
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        for process in background { stopBackground(process) }
        for ns in workloads { _ = try? Shell.run(["ip", "netns", "del", ns], check: false) }
        for host in hosts { _ = try? Shell.run(["ip", "netns", "del", host.namespace], check: false) }
        for host in hosts { try? FileManager.default.removeItem(atPath: "/etc/netns/\(host.namespace)") }
        for ns in gateways { _ = try? Shell.run(["ip", "netns", "del", ns], check: false) }
        _ = try? Shell.run(["ip", "netns", "del", switchNamespace], check: false)
        if ProcessInfo.processInfo.environment["WEFT_KEEP_TEST_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
