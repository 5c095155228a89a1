// `weft doctor`, the gathering layer: reads the facts the checks of Doctor.swift judge from this
// host (rtnetlink, /proc, /sys), the firewall tools when installed, and the router when one
// answers on the control socket. Best effort throughout: a fact that cannot be read is left out
// and the check says so.
import Foundation
import WeftControl
import WeftNetlink

public enum DoctorHost {
    /// Gathers every fact; takes `sampleSeconds` (the fragmentation counters are read at the
    /// start and again at the end).
    public static func gather(socketPath: String, sampleSeconds: Double) -> DoctorFacts {
        let start = Date()
        let before = ipCounters()
        var facts = DoctorFacts()
        facts.interfaces = interfaces()
        facts.kernelRelease = kernelRelease()
        facts.bridgeNetfilter = bridgeNetfilter()
        facts.openvswitchPresent = FileManager.default.fileExists(atPath: "/sys/module/openvswitch")
            || (read("/proc/modules") ?? "").split(separator: "\n").contains { $0.hasPrefix("openvswitch ") }
        facts.udpPortsBound = udpPortsBound()
        (facts.firewall, facts.firewallUnreadable) = firewallListings()
        askRouter(socketPath, into: &facts)
        let remaining = sampleSeconds - Date().timeIntervalSince(start)
        if remaining > 0 { usleep(useconds_t(remaining * 1e6)) }
        if let before, let after = ipCounters() {
            facts.ipCounters = .init(before: before, after: after, seconds: Date().timeIntervalSince(start))
        }
        return facts
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8)).map { $0.trimmingCharacters(in: .newlines) }
    }

    static func interfaces() -> [DoctorFacts.Interface] {
        guard let netlink = try? RouteNetlink(), let links = try? netlink.links() else { return [] }
        let names = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        return links.map { link in
            let sys = "/sys/class/net/\(link.name)"
            let lowers = ((try? FileManager.default.contentsOfDirectory(atPath: sys)) ?? [])
                .filter { $0.hasPrefix("lower_") }.map { String($0.dropFirst("lower_".count)) }.sorted()
            let driver = (try? FileManager.default.destinationOfSymbolicLink(atPath: sys + "/device/driver"))
                .map { ($0 as NSString).lastPathComponent }
            return DoctorFacts.Interface(
                name: link.name, kind: link.kind, mtu: link.mtu, mac: link.mac, isUp: link.isUp,
                master: link.masterIndex.flatMap { names[$0] }, addrAssignType: link.addrAssignType.map(Int.init),
                addresses: (try? netlink.addresses(link.name)) ?? [], lowers: lowers,
                bondMode: read(sys + "/bonding/mode")?.split(separator: " ").first.map(String.init),
                driver: driver, udpFragmentationOffload: driver == "virtio_net" ? Ethtool.udpFragmentationOffload(link.name) : nil)
        }
    }

    static func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func bridgeNetfilter() -> [String: Int]? {
        guard FileManager.default.fileExists(atPath: "/proc/sys/net/bridge") else { return nil }
        var values: [String: Int] = [:]
        for key in Doctor.bridgeNetfilterKeys { values[key] = read("/proc/sys/net/bridge/\(key)").flatMap { Int($0) } }
        return values
    }

    /// The `Ip:` lines of /proc/net/snmp (names, then values) as a dictionary.
    static func ipCounters() -> [String: Int]? {
        guard let text = read("/proc/net/snmp") else { return nil }
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("Ip: ") }.map { $0.split(separator: " ").dropFirst() }
        guard lines.count >= 2 else { return nil }
        var counters: [String: Int] = [:]
        for (name, value) in zip(lines[0], lines[1]) { counters[String(name)] = Int(value) }
        return counters
    }

    static func udpPortsBound() -> Set<Int> {
        var ports: Set<Int> = []
        for file in ["/proc/net/udp", "/proc/net/udp6"] {
            for line in (read(file) ?? "").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 1, let port = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) }) else { continue }
                ports.insert(port)
            }
        }
        return ports
    }

    /// `nft list ruleset` and `iptables -S`, whichever are installed (nil when none could be
    /// run), and the tools that are installed but failed.
    static func firewallListings() -> ([DoctorFacts.FirewallListing]?, [String]) {
        let commands = [("nft", ["list", "ruleset"]), ("iptables", ["-S"]), ("ip6tables", ["-S"])]
        var listings: [DoctorFacts.FirewallListing] = []
        var failed: [String] = []
        for (tool, args) in commands {
            guard let path = executable(tool) else { continue }
            guard let output = run(path, args) else {
                failed.append(tool)
                continue
            }
            listings.append(.init(tool: tool, lines: output.split(separator: "\n").map(String.init)))
        }
        return (listings.isEmpty ? nil : listings, failed)
    }

    static func executable(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion; its standard output, or nil when it failed.
    static func run(_ path: String, _ args: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }

    static func askRouter(_ socketPath: String, into facts: inout DoctorFacts) {
        let client = ControlClient(socketPath: socketPath, timeoutSeconds: 3)
        do {
            let (code, body) = try client.request(method: "GET", path: "/v1/status")
            guard code == 200 else {
                facts.routerProblem = "the router on \(socketPath) answered HTTP \(code)"
                return
            }
            facts.router = try JSONDecoder().decode(RouterStatus.self, from: Data(body))
            let (_, connections) = try client.request(method: "GET", path: "/v1/status/connections")
            facts.connections = try JSONDecoder().decode([ConnectionStatus].self, from: Data(connections))
            let (_, peers) = try client.request(method: "GET", path: "/v1/status/peers")
            facts.peers = try JSONDecoder().decode([PeerStatus].self, from: Data(peers))
        } catch {
            facts.routerProblem = "\(error)"
        }
    }
}
