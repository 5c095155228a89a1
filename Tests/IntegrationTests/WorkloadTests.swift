// Host plumbing end to end: the `weft` bridge and TAP of a real router in a host namespace,
// workloads attached with `weft attach`, host addresses, `weft reset`, adoption on restart and
// the overlay MTU. Overlay addresses are 10.47.x.x, only inside test namespaces.
import Foundation
import XCTest
@testable import WeftHost
@testable import WeftRouter

/// One interface as `ip -j -d link show` reports it.
struct IPLink {
    let name: String
    let index: Int
    let mtu: Int
    let address: String
    let master: String?
    let kind: String?
    let up: Bool

    init?(_ object: [String: Any]) {
        guard let name = object["ifname"] as? String, let index = object["ifindex"] as? Int,
              let mtu = object["mtu"] as? Int else { return nil }
        self.name = name
        self.index = index
        self.mtu = mtu
        address = object["address"] as? String ?? ""
        master = object["master"] as? String
        kind = (object["linkinfo"] as? [String: Any])?["info_kind"] as? String
        up = (object["flags"] as? [String])?.contains("UP") ?? false
    }
}

extension TestNet {
    func inNamespace(_ ns: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try Shell.run(["ip", "netns", "exec", ns] + args, check: false)
    }

    func links(_ ns: String) throws -> [IPLink] {
        let output = try Shell.run(["ip", "-n", ns, "-j", "-d", "link", "show"]).output
        let array = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        return array.compactMap(IPLink.init)
    }

    func link(_ ns: String, _ name: String) throws -> IPLink? { try links(ns).first { $0.name == name } }

    /// Global-scope addresses of `dev` in `ns`, as "10.47.0.1/24".
    func addresses(_ ns: String, _ dev: String) throws -> [String] {
        let output = try Shell.run(["ip", "-n", ns, "-j", "addr", "show", "dev", dev]).output
        let array = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        return array.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
            .filter { ($0["scope"] as? String) == "global" }
            .compactMap { info in (info["local"] as? String).map { "\($0)/\(info["prefixlen"] as? Int ?? -1)" } }
    }

    /// Weft's interfaces in `ns`.
    func weftLinks(_ ns: String) throws -> [String] {
        try links(ns).map(\.name).filter { $0 == "weft" || $0 == "weft-tap" || $0.hasPrefix("weftv") }
    }

    /// `weft status --json` as an object, once the router answers.
    func routerStatus(_ index: Int, timeout: TimeInterval = 10) throws -> [String: Any] {
        var status: [String: Any]?
        waitUntil(timeout: timeout) {
            let result = try cli(index, ["status", "--json"])
            guard result.status == 0 else { return false }
            status = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            return status != nil
        }
        guard let status else { throw ShellError(description: "router \(index) did not answer:\n\(log(index))") }
        return status
    }
}

final class WorkloadTests: XCTestCase {
    /// The bridge and TAP at start, attach/detach/expose/hide, a ping between two workloads on
    /// one host through the bridge, `weft reset` refused under the running router and done once it stopped.
    func testBridgeWorkloadsHostAddressesAndReset() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let h1 = net.host(1).namespace
        let router = try net.launch(1)
        let status = try net.routerStatus(1)
        let name = try XCTUnwrap(status["name"] as? String)
        XCTAssertEqual(status["mtu"] as? Int, 1420, "overlay MTU = underlay 1500 − 80")

        // The bridge: MAC = peer name, set explicitly, overlay MTU; the TAP is its port.
        let bridge = try XCTUnwrap(net.link(h1, "weft"), "no bridge weft in \(h1):\n\(net.log(1))")
        XCTAssertEqual(bridge.kind, "bridge")
        XCTAssertEqual(bridge.address, name)
        XCTAssertEqual(bridge.mtu, 1420)
        XCTAssertTrue(bridge.up)
        let assign = try net.inNamespace(h1, ["cat", "/sys/class/net/weft/addr_assign_type"])
        XCTAssertEqual(assign.output.trimmingCharacters(in: .whitespacesAndNewlines), "3")
        let tap = try XCTUnwrap(net.link(h1, "weft-tap"))
        XCTAssertEqual(tap.master, "weft")
        XCTAssertEqual(tap.mtu, 1420)
        XCTAssertTrue(tap.up)
        let text = try net.cli(1, ["status"])
        XCTAssertTrue(text.output.contains("Overlay MTU: 1420"), text.output)

        // Attach: ethwe inside with the address and the overlay MTU, up; the host end on the bridge.
        let w1 = try net.addWorkload(), w2 = try net.addWorkload()
        let attach = try net.cli(1, ["attach", w1, "10.47.0.1/24"])
        XCTAssertEqual(attach.status, 0, attach.output)
        let ethwe = try XCTUnwrap(net.link(w1, "ethwe"))
        XCTAssertEqual(ethwe.mtu, 1420)
        XCTAssertTrue(ethwe.up)
        XCTAssertTrue(try XCTUnwrap(net.link(w1, "lo")).up)
        XCTAssertEqual(try net.addresses(w1, "ethwe"), ["10.47.0.1/24"])
        var ports = try net.links(h1).filter { $0.name.hasPrefix("weftv") }
        XCTAssertEqual(ports.count, 1)
        XCTAssertEqual(ports.first?.master, "weft")
        XCTAssertEqual(ports.first?.mtu, 1420)
        XCTAssertTrue(ports.first?.up == true)

        // Twice is harmless: same veth, the address once.
        let again = try net.cli(1, ["attach", w1, "10.47.0.1/24"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try net.addresses(w1, "ethwe"), ["10.47.0.1/24"])
        XCTAssertEqual(try net.links(h1).filter { $0.name.hasPrefix("weftv") }.map(\.name), ports.map(\.name))

        // Errors name what is at fault.
        let missing = try net.cli(1, ["attach", "\(net.prefix)-nope", "10.47.0.3/24"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("weft: error:") && missing.output.contains("network namespace '\(net.prefix)-nope' not found"),
                      missing.output)
        let badCIDR = try net.cli(1, ["attach", w1, "10.47.0.300/24"])
        XCTAssertNotEqual(badCIDR.status, 0)
        XCTAssertTrue(badCIDR.output.contains("10.47.0.300/24"), badCIDR.output)

        // A second workload, by name and then by the pid of a process inside it: the same veth.
        XCTAssertEqual(try net.cli(1, ["attach", w2, "10.47.0.2/24"]).status, 0)
        _ = try net.startBackground(namespace: w2, ["sleep", "60"], output: "\(net.directory)/sleep.out")
        var pid = ""
        net.waitUntil(timeout: 5) {
            pid = try Shell.run(["ip", "netns", "pids", w2]).output.split(separator: "\n").first.map(String.init) ?? ""
            return !pid.isEmpty
        }
        let byPid = try net.cli(1, ["attach", "--pid", pid, "10.47.0.2/24"])
        XCTAssertEqual(byPid.status, 0, byPid.output)
        ports = try net.links(h1).filter { $0.name.hasPrefix("weftv") }
        XCTAssertEqual(ports.count, 2, "\(ports.map(\.name))")
        XCTAssertEqual(try net.addresses(w2, "ethwe"), ["10.47.0.2/24"])

        // `weft ps`: both, by name and by pid, with the MAC inside and the addresses.
        let ps = try net.cli(1, ["ps", "--json"])
        XCTAssertEqual(ps.status, 0, ps.output)
        let psListed = try JSONDecoder().decode([Workload].self, from: Data(ps.output.utf8))
        let byName = try XCTUnwrap(psListed.first { $0.namespace == w1 }, ps.output)
        XCTAssertEqual(byName.mac, try net.link(w1, "ethwe")?.address)
        XCTAssertEqual(byName.cidrs, ["10.47.0.1/24"])
        XCTAssertEqual(byName.ifname, "ethwe")
        XCTAssertTrue(psListed.contains { $0.pid.map(String.init) == pid && $0.cidrs == ["10.47.0.2/24"] }, ps.output)
        let psText = try net.cli(1, ["ps"])
        XCTAssertTrue(psText.output.contains("pid \(pid)") && psText.output.contains(byName.mac ?? "?"), psText.output)

        // Two workloads on one host reach each other through the bridge (the local L2 path).
        let ping = try net.inNamespace(w1, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.47.0.2"])
        XCTAssertEqual(ping.status, 0, ping.output)

        // Host addresses on the bridge; the host reaches a workload through one.
        XCTAssertEqual(try net.cli(1, ["expose", "10.47.255.1/24"]).status, 0)
        XCTAssertEqual(try net.cli(1, ["expose", "10.47.255.1/24"]).status, 0)
        XCTAssertEqual(try net.addresses(h1, "weft"), ["10.47.255.1/24"])
        XCTAssertEqual(try net.cli(1, ["expose", "10.47.0.254/24"]).status, 0)
        let hostPing = try net.inNamespace(h1, ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.47.0.1"])
        XCTAssertEqual(hostPing.status, 0, hostPing.output)
        XCTAssertEqual(try net.cli(1, ["hide", "10.47.255.1/24"]).status, 0)
        XCTAssertEqual(try net.cli(1, ["hide", "10.47.0.254/24"]).status, 0)
        XCTAssertEqual(try net.addresses(h1, "weft"), [])
        let hideAgain = try net.cli(1, ["hide", "10.47.255.1/24"])
        XCTAssertEqual(hideAgain.status, 0)
        XCTAssertTrue(hideAgain.output.contains("was not exposed"), hideAgain.output)

        // The router keeps track of its workloads.
        let listed = try JSONDecoder().decode([Workload].self, from: Data(
            try ControlClient(socketPath: net.host(1).socket).request(method: "GET", path: "/v1/workloads").body))
        XCTAssertEqual(Set(listed.map(\.hostIfname)), Set(ports.map(\.name)))
        XCTAssertEqual(Set(listed.flatMap(\.cidrs)), ["10.47.0.1/24", "10.47.0.2/24"])

        // Detach, twice.
        let detach = try net.cli(1, ["detach", w2])
        XCTAssertEqual(detach.status, 0, detach.output)
        XCTAssertNil(try net.link(w2, "ethwe"))
        let remaining = try net.links(h1).filter { $0.name.hasPrefix("weftv") }.map(\.name)
        XCTAssertEqual(remaining.count, 1)
        let detachAgain = try net.cli(1, ["detach", w2])
        XCTAssertEqual(detachAgain.status, 0, detachAgain.output)
        XCTAssertTrue(detachAgain.output.contains("was not attached"), detachAgain.output)

        // Reset under the running router is refused, found by its socket or by its TAP.
        let bySocket = try net.cli(1, ["reset"])
        XCTAssertEqual(bySocket.status, 1, bySocket.output)
        XCTAssertTrue(bySocket.output.contains("answers on \(net.host(1).socket)") && bySocket.output.contains("weft stop")
                      && bySocket.output.contains("--force"), bySocket.output)
        let byTAP = try net.inNamespace(h1, [binary("weft"), "reset", "--socket", "\(net.directory)/none.sock"])
        XCTAssertEqual(byTAP.status, 1, byTAP.output)
        XCTAssertTrue(byTAP.output.contains("holds weft-tap"), byTAP.output)
        XCTAssertNotNil(try net.link(h1, "weft"), "a refused reset removed the bridge")

        // Reset with the router stopped leaves nothing behind, and is idempotent.
        XCTAssertEqual(try net.cli(1, ["stop"]).status, 0)
        router.waitUntilExit()
        XCTAssertEqual(Set(try net.weftLinks(h1)), Set(["weft"] + remaining),
                       "bridge and workload veth persist after stop; the TAP goes with the router")
        let reset = try net.inNamespace(h1, [binary("weft"), "reset"])
        XCTAssertEqual(reset.status, 0, reset.output)
        XCTAssertTrue(reset.output.contains("removed weft"), reset.output)
        XCTAssertEqual(try net.weftLinks(h1), [])
        XCTAssertNil(try net.link(w1, "ethwe"))
        let resetAgain = try net.inNamespace(h1, [binary("weft"), "reset"])
        XCTAssertEqual(resetAgain.status, 0, resetAgain.output)
        XCTAssertTrue(resetAgain.output.contains("nothing to remove"), resetAgain.output)
    }

    /// A restarted router adopts the bridge (same device), fixes a wrong MAC and says so, puts
    /// its TAP back; a second router in the same namespace is refused at start.
    func testRestartAdoptsBridgeAndSecondRouterIsRefused() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let h1 = net.host(1).namespace
        let router = try net.launch(1)
        let name = try XCTUnwrap(try net.routerStatus(1)["name"] as? String)
        let w1 = try net.addWorkload()
        XCTAssertEqual(try net.cli(1, ["attach", w1, "10.47.0.1/24"]).status, 0)
        XCTAssertEqual(try net.cli(1, ["expose", "10.47.0.254/24"]).status, 0)

        // A second router in the same host namespace: a clear start-up error, nothing changed.
        let other = try net.inNamespace(h1, [binary("weft"), "launch", "--socket", "\(net.directory)/other.sock",
                                             "--data-dir", "\(net.directory)/other", "--port", "6790"])
        XCTAssertEqual(other.status, 1, other.output)
        XCTAssertTrue(other.output.contains("cannot create the weft bridge") && other.output.contains("is another router running"),
                      other.output)
        XCTAssertEqual(try net.link(h1, "weft")?.address, name)

        let before = try XCTUnwrap(net.link(h1, "weft"))
        XCTAssertEqual(try net.cli(1, ["stop"]).status, 0)
        router.waitUntilExit()
        XCTAssertNil(try net.link(h1, "weft-tap"), "the TAP exists only while the router holds it")
        try Shell.run(["ip", "-n", h1, "link", "set", "weft", "address", "02:00:00:00:00:01"])

        try net.launch(1)
        XCTAssertEqual(try net.routerStatus(1)["mtu"] as? Int, 1420)
        let after = try XCTUnwrap(net.link(h1, "weft"))
        XCTAssertEqual(after.index, before.index, "the bridge was recreated, not adopted")
        XCTAssertEqual(after.address, name)
        XCTAssertEqual(after.mtu, 1420)
        let assign = try net.inNamespace(h1, ["cat", "/sys/class/net/weft/addr_assign_type"])
        XCTAssertEqual(assign.output.trimmingCharacters(in: .whitespacesAndNewlines), "3")
        XCTAssertTrue(net.log(1).contains("bridge MAC was wrong"), net.log(1))
        XCTAssertEqual(try net.link(h1, "weft-tap")?.master, "weft")
        // The workload survived the restart: still a port, still reachable from the host.
        XCTAssertEqual(try net.links(h1).filter { $0.name.hasPrefix("weftv") }.map(\.master), ["weft"])
        let ping = try net.inNamespace(h1, ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.47.0.1"])
        XCTAssertEqual(ping.status, 0, ping.output)
    }

    /// Underlay 1400 gives an overlay of 1320; --mtu 1300 overrides, down to the workloads.
    func testOverlayMTUFollowsUnderlayAndFlag() throws {
        try requireRoot()
        let net = try TestNet(hosts: 0)
        defer { net.cleanup() }
        let small = try net.addHost(mtu: 1400)
        try net.launch(small.index)
        XCTAssertEqual(try net.routerStatus(small.index)["mtu"] as? Int, 1320)
        XCTAssertEqual(try net.link(small.namespace, "weft")?.mtu, 1320)

        let flagged = try net.addHost()
        try net.launch(flagged.index, extraArgs: ["--mtu", "1300"])
        XCTAssertEqual(try net.routerStatus(flagged.index)["mtu"] as? Int, 1300)
        XCTAssertEqual(try net.link(flagged.namespace, "weft")?.mtu, 1300)
        XCTAssertEqual(try net.link(flagged.namespace, "weft-tap")?.mtu, 1300)
        let w1 = try net.addWorkload()
        XCTAssertEqual(try net.cli(flagged.index, ["attach", w1, "10.47.0.1/24"]).status, 0)
        XCTAssertEqual(try net.link(w1, "ethwe")?.mtu, 1300)
    }
}
