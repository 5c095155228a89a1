// The Debian package on a host without Swift. `make test` builds weft_VERSION_ARCH.deb and names
// it in $WEFT_DEB; this test installs it with dpkg into a scratch root (the maintainer scripts
// run against that root), checks what the package declares and holds, and then, in a mount
// namespace where the toolchain's folder is an empty tmpfs, runs the installed binary:
// `weft --version`, and two routers in network namespaces whose workloads ping each other.
import Foundation
import XCTest
import WeftControl

final class PackageInstallTests: XCTestCase {
    private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testPackageInstallsIntoAScratchRootAndRunsWithTheToolchainHidden() throws {
        try requireRoot()
        guard let deb = ProcessInfo.processInfo.environment["WEFT_DEB"], !deb.isEmpty else {
            throw XCTSkip("WEFT_DEB is not set: `make test` builds the package and sets it (or `make deb`, then WEFT_DEB=$PWD/weft_….deb)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: deb), "no package at WEFT_DEB=\(deb); run make deb")
        let version = try String(contentsOf: repo.appendingPathComponent("VERSION"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        // What the package declares.
        func field(_ name: String) throws -> String {
            try Shell.run(["dpkg-deb", "-f", deb, name]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(try field("Package"), "weft")
        XCTAssertEqual(try field("Version"), version)
        let depends = Set(try field("Depends").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0] })
        XCTAssertEqual(depends, ["libc6", "libsodium23", "libmnl0"], "the Swift runtime, Foundation and libstdc++ must be inside the binary")

        // Installed into a scratch root: an empty dpkg database; the dependencies are the host's.
        let root = NSTemporaryDirectory() + "weft-pkg-\(String(UInt32.random(in: 0..<0xFFFFFF), radix: 36))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: "\(root)/var/lib/dpkg/status", contents: nil)
        let install = try Shell.run(["dpkg", "--root=\(root)", "--force-script-chrootless", "--force-depends", "--log=/dev/null", "-i", deb],
                                    check: false)
        XCTAssertEqual(install.status, 0, install.output)
        let state = try Shell.run(["dpkg-query", "--admindir=\(root)/var/lib/dpkg", "-W", "-f", "${Status}|${Conffiles}", "weft"]).output
        XCTAssertTrue(state.hasPrefix("install ok installed|"), state)
        XCTAssertTrue(state.contains("/etc/default/weft "), "the defaults file is a conffile: \(state)")

        let weft = "\(root)/usr/bin/weft"
        let subcommands = ["launch", "status", "connect", "forget", "stop", "attach", "detach", "ps", "expose", "hide", "reset",
                           "rotate-key", "password", "rotate-password", "revoke", "doctor", "version"]
        for path in ["usr/bin/weft", "lib/systemd/system/weft.service", "etc/default/weft", "usr/share/man/man8/weft.8.gz",
                     "usr/share/bash-completion/completions/weft", "usr/share/zsh/vendor-completions/_weft",
                     "usr/share/fish/vendor_completions.d/weft.fish", "usr/share/doc/weft/operations.md"]
            + subcommands.map({ "usr/share/man/man8/weft.\($0).8.gz" }) {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(root)/\(path)"), "the package lacks /\(path)")
        }
        let modes = try FileManager.default.attributesOfItem(atPath: "\(root)/etc/weft")[.posixPermissions] as? Int
        XCTAssertEqual(modes, 0o700, "/etc/weft holds the password")

        // The unit: enabled by postinst (a symlink in the scratch root), its binary and every
        // Documentation= page in the package.
        let wants = "\(root)/etc/systemd/system/multi-user.target.wants/weft.service"
        XCTAssertEqual(try? FileManager.default.destinationOfSymbolicLink(atPath: wants), "/lib/systemd/system/weft.service", "weft.service is not enabled")
        let unit = try String(contentsOfFile: "\(root)/lib/systemd/system/weft.service", encoding: .utf8)
        let exec = try XCTUnwrap(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        XCTAssertTrue(exec.hasPrefix("ExecStart=/usr/bin/weft launch "), String(exec))
        let docs = try XCTUnwrap(unit.split(separator: "\n").first { $0.hasPrefix("Documentation=") })
        for page in docs.dropFirst("Documentation=".count).split(separator: " ") {
            // man:NAME(8) → /usr/share/man/man8/NAME.8.gz
            XCTAssertTrue(page.hasPrefix("man:") && page.hasSuffix("(8)"), "Documentation= \(page) is not a man page of the package")
            let name = page.dropFirst(4).dropLast(3)
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(root)/usr/share/man/man8/\(name).8.gz"), "Documentation= \(page) is not installed")
        }

        // systemd's own check of the installed unit, its Documentation= pages looked up in the
        // scratch root, ExecStart pointed at the binary there.
        let analyze = "/usr/bin/systemd-analyze"
        if FileManager.default.isExecutableFile(atPath: analyze) {
            let copy = "\(root)/verify/weft.service"
            try FileManager.default.createDirectory(atPath: "\(root)/verify", withIntermediateDirectories: true)
            try unit.replacingOccurrences(of: "ExecStart=/usr/bin/weft ", with: "ExecStart=\(weft) ").write(toFile: copy, atomically: true, encoding: .utf8)
            let verify = try Shell.run(["env", "MANPATH=\(root)/usr/share/man", analyze, "verify", copy], check: false)
            XCTAssertEqual(verify.status, 0, verify.output)
            XCTAssertFalse(verify.output.contains("weft.service"), verify.output)
        }

        // Man pages render; the bash completion loads.
        let manual = try Shell.run(["env", "MANPAGER=cat", "MANWIDTH=100", "man", "-l", "\(root)/usr/share/man/man8/weft.launch.8.gz"])
        XCTAssertTrue(manual.output.contains("--trusted-subnets-file"), manual.output)
        let completion = try Shell.run(["bash", "-c", "source \"$1\" && complete -p weft", "bash", "\(root)/usr/share/bash-completion/completions/weft"],
                                       check: false)
        XCTAssertEqual(completion.status, 0, completion.output)

        // The binary links nothing of the toolchain.
        let dynamic = try Shell.run(["readelf", "-d", weft]).output
        XCTAssertFalse(dynamic.contains("(RUNPATH)") || dynamic.contains("(RPATH)"), dynamic)
        for library in ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "libstdc++", "libgcc_s"] {
            XCTAssertFalse(dynamic.contains("[\(library)"), "the binary needs \(library): \(dynamic)")
        }

        // The toolchain hidden: its folder an empty tmpfs in a mount namespace of its own. Slave
        // propagation: the host's later mounts still arrive (`ip netns add` of a workload binds
        // /run/netns/NAME after the router started), the tmpfs never leaves.
        let toolchain = try toolchainFolder()
        let hidden = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c",
                      "mount -t tmpfs -o size=1m,mode=0755 weft-hidden-toolchain \"$0\" && exec \"$@\"", toolchain]
        XCTAssertEqual(try Shell.run(hidden + ["find", toolchain, "-mindepth", "1"]).output, "", "\(toolchain) is not hidden")
        let control = try Shell.run(hidden + [binary("weft"), "--version"], check: false)
        XCTAssertTrue(control.status != 0 && control.output.contains("error while loading shared libraries"),
                      "the toolchain's own build ran with the toolchain hidden, so the hiding proves nothing: \(control.output)")

        let versionText = try Shell.run(hidden + [weft, "--version"], check: false)
        XCTAssertEqual(versionText.status, 0, versionText.output)
        XCTAssertTrue(versionText.output.hasPrefix("weft \(version) (commit "), versionText.output)
        let json = try Shell.run(hidden + [weft, "version", "--json"])
        let report = try JSONDecoder().decode(VersionReport.self, from: Data(json.output.utf8))
        XCTAssertEqual(report.version, version)
        XCTAssertFalse(report.commit.isEmpty)
        XCTAssertEqual(report.protocolVersions, [2])
        XCTAssertTrue(report.ciphers.contains("chacha20-poly1305"), "\(report.ciphers)")
        print("package test: \(versionText.output.split(separator: "\n").joined(separator: "; "))")

        // Two routers of the installed binary, every one of their commands under the hiding.
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        net.weft = weft
        net.wrapper = hidden
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "no link: \(String(describing: try? net.connections(1)))\n\(net.log(1))\n\(net.log(2))")
        XCTAssertEqual(try net.connection(1, to: 2)?.encrypted, true)
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 },
                      "workloads cannot ping:\n\(net.log(1))")
        let status = try net.cli(1, ["status", "connections"])
        print("package test: router 1 of the installed package:\n\(status.output)")
    }

    /// The toolchain's folder: where this test process loaded the Swift runtime from
    /// (…/usr/lib/swift/linux/libswiftCore.so), or $WEFT_TOOLCHAIN_DIR.
    private func toolchainFolder() throws -> String {
        if let dir = ProcessInfo.processInfo.environment["WEFT_TOOLCHAIN_DIR"] { return dir }
        // Read through a pipe: /proc files report size 0, and a sized read of one gets nothing.
        let maps = try Shell.run(["cat", "/proc/\(getpid())/maps"]).output
        let core = try XCTUnwrap(maps.split(separator: "\n").compactMap { $0.split(separator: " ").last }.first { $0.hasSuffix("/libswiftCore.so") },
                                 "no libswiftCore.so in /proc/self/maps; set WEFT_TOOLCHAIN_DIR")
        let path = URL(fileURLWithPath: String(core)).resolvingSymlinksInPath().path
        let range = try XCTUnwrap(path.range(of: "/usr/lib/swift/"), "libswiftCore.so at \(path) is not in a toolchain's usr/lib/swift")
        return String(path[..<range.lowerBound])
    }
}
