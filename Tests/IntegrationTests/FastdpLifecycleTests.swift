// The fast datapath's life on one host: what the router creates at launch, what it leaves when
// it stops, and what `weft reset` removes. Needs the openvswitch module: skipped where the kernel
// has none (`make test` runs it inside the OVS VM, scripts/test-in-vm.sh).
import Foundation
import XCTest
@testable import WeftRouter

final class FastdpLifecycleTests: XCTestCase {
    func testLaunchCreatesDatapathStopDeletesItResetRemovesTheVethPair() throws {
        try requireRoot()
        try requireOpenvswitch()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let ns = net.host(1).namespace
        let router = try net.launch(1, extraArgs: ["--port", "7100"])
        XCTAssertTrue(net.waitUntil(timeout: 30) { try self.fastdp(net, 1)["available"] as? Bool == true },
                      "fastdp not available: \((try? self.fastdp(net, 1)) ?? [:])\n\(net.log(1))")
        XCTAssertTrue(net.log(1).contains("fastdp started"), net.log(1))

        // The veth pair joins the datapath to the bridge; the VXLAN vport follows --port + 1.
        let bridgeEnd = try Shell.run(["ip", "-n", ns, "-d", "link", "show", "weft-dpb"]).output
        XCTAssertTrue(bridgeEnd.contains("master weft"), bridgeEnd)
        let datapathEnd = try Shell.run(["ip", "-n", ns, "-d", "link", "show", "weft-dpp"]).output
        XCTAssertTrue(datapathEnd.contains("openvswitch_slave"), datapathEnd)
        let vxlan = try Shell.run(["ip", "-n", ns, "-d", "link", "show", "weft-vxlan"]).output
        XCTAssertTrue(vxlan.contains("dstport 7101"), vxlan)
        XCTAssertEqual(try Shell.run(["ip", "-n", ns, "link", "show", "weft-dp"], check: false).status, 0)

        // Stopped, the router takes its datapath (and VXLAN vport) with it; the pair stays.
        XCTAssertEqual(try net.cli(1, ["stop"]).status, 0)
        router.waitUntilExit()
        XCTAssertNotEqual(try Shell.run(["ip", "-n", ns, "link", "show", "weft-dp"], check: false).status, 0)
        XCTAssertNotEqual(try Shell.run(["ip", "-n", ns, "link", "show", "weft-vxlan"], check: false).status, 0)
        XCTAssertEqual(try Shell.run(["ip", "-n", ns, "link", "show", "weft-dpb"], check: false).status, 0)

        // A router killed outright leaves the datapath; the next one adopts it, and reset removes all.
        let second = try net.launch(1, extraArgs: ["--port", "7100"])
        XCTAssertTrue(net.waitUntil(timeout: 30) { try self.fastdp(net, 1)["available"] as? Bool == true }, net.log(1))
        net.kill(1)
        _ = second
        XCTAssertEqual(try Shell.run(["ip", "-n", ns, "link", "show", "weft-dp"], check: false).status, 0)
        let reset = try net.inNamespace(ns, [binary("weft"), "reset"])
        XCTAssertEqual(reset.status, 0, reset.output)
        for name in ["weft-dp", "weft-dpb", "weft-dpp", "weft-vxlan", "weft"] {
            XCTAssertNotEqual(try Shell.run(["ip", "-n", ns, "link", "show", name], check: false).status, 0, "\(name) left after reset")
        }
        XCTAssertTrue(reset.output.contains("weft-dp"), reset.output)
    }

    private func fastdp(_ net: TestNet, _ index: Int) throws -> [String: Any] {
        let output = try net.cli(index, ["status", "--json"]).output
        let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        return json?["fastdp"] as? [String: Any] ?? [:]
    }
}

/// Skips a test that needs the openvswitch kernel module where the kernel has none.
func requireOpenvswitch() throws {
    let loaded = FileManager.default.fileExists(atPath: "/sys/module/openvswitch")
    if !loaded, (try? Shell.run(["modprobe", "openvswitch"], check: false).status) != 0 {
        throw XCTSkip("the kernel has no openvswitch module: fastdp tests run inside the OVS VM (scripts/test-in-vm.sh)")
    }
}
