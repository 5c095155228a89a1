// swift-tools-version:6.0
// Weft: an encrypted overlay network router for Linux. Module layout: docs/architecture.md.
import PackageDescription

let optimized: [SwiftSetting] = [.unsafeFlags(["-O"])]
// The installable release (`make release`: `--static-swift-stdlib`) needs nothing of the
// toolchain at run time; these two flags also keep the C++ runtime that the Swift runtime uses
// inside the binary: libstdc++'s archive, which `make release` links into .build/static-libstdc++
// (searched before the compiler's folder, where the shared one would win), and libgcc's. What is
// left to the host is libc, libsodium and libmnl (docs/operations.md, "Install").
let installable: [LinkerSetting] = [
    .unsafeFlags(["-L\(Context.packageDirectory)/.build/static-libstdc++", "-Xclang-linker", "-static-libgcc"],
                 .when(configuration: .release)),
]

let package = Package(
    name: "Weft",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .executable(name: "weft-vectors", targets: ["weft-vectors"]),
        // The modules the fuzz targets link (Tests/Fuzz, a package of its own: docs/fuzzing.md).
        .library(name: "WeftFuzzable", targets: ["WeftWire", "WeftCrypto", "WeftMesh", "WeftLink", "WeftDatapath", "WeftControl", "WeftHost", "WeftRouter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // C libraries from Debian packages; SwiftPM names the apt package when pkg-config fails.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        // The few things Swift cannot express (GNU-only socket calls, ioctl numbers).
        .target(name: "CWeftShims"),

        // Pure cores: no sockets, no clocks they are not handed.
        .target(name: "WeftCrypto", dependencies: ["CSodium"]),
        // Optimized in debug builds too: the gossip simulation of a thousand routers runs in
        // `make test` (Tests/GossipSimulationTests) and would take minutes at -Onone.
        .target(name: "WeftWire", swiftSettings: optimized),
        .target(name: "WeftMesh", dependencies: ["WeftWire"], swiftSettings: optimized),
        // The gossip link protocol as a state machine: bytes and time in, actions out.
        .target(name: "WeftLink", dependencies: ["WeftCrypto", "WeftWire"]),
        // The data planes: dedicated threads over raw file descriptors (never NIO).
        .target(name: "WeftDatapath", dependencies: ["WeftCrypto", "WeftWire", "WeftMesh", "WeftNetlink", "CWeftShims"]),
        .target(name: "WeftNetlink", dependencies: ["CMnl", "CWeftShims"]),

        // The control API: its one request router and HTTP server, the request and status types
        // the CLI shares, the CLI's client, metrics rendering. It never sees the router: the
        // router answers through ControlAPIDelegate.
        .target(name: "WeftControl", dependencies: [
            "WeftCrypto", "WeftWire", "WeftDatapath",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The host: network plumbing (bridge, TAP, workloads, reset), the one underlay/MTU rule,
        // and `weft doctor` (pure checks and the gathering of facts).
        .target(name: "WeftHost", dependencies: [
            "WeftControl", "WeftWire", "WeftMesh", "WeftNetlink", "WeftDatapath",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The router core: links and admission, targets, gossip wiring, key rotation, data-plane
        // wiring, and the router behind the control API.
        .target(name: "WeftRouter", dependencies: [
            "WeftCrypto", "WeftWire", "WeftMesh", "WeftLink", "WeftNetlink", "WeftDatapath", "WeftControl", "WeftHost", "CWeftShims",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "weft", dependencies: [
            "WeftRouter", "WeftControl", "WeftHost",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: installable, plugins: ["BuildInfo"]),
        // `weft --version`'s release number (VERSION) and git commit, generated before each build.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(name: "weft-vectors", dependencies: ["WeftCrypto"]),

        .target(name: "WeftTestSupport", path: "Tests/Support"),
        .testTarget(name: "WeftCryptoTests", dependencies: ["WeftCrypto", "CSodium"]),
        .testTarget(name: "WeftWireTests", dependencies: ["WeftWire", "WeftTestSupport"]),
        .testTarget(name: "WeftMeshTests", dependencies: ["WeftMesh", "WeftTestSupport", "WeftCrypto"]),
        .testTarget(name: "GossipSimulationTests", dependencies: ["WeftMesh", "WeftWire", "WeftTestSupport"], swiftSettings: optimized),
        .testTarget(name: "WeftLinkTests", dependencies: ["WeftLink", "WeftCrypto", "WeftWire", "WeftMesh"]),
        .testTarget(name: "WeftNetlinkTests", dependencies: ["WeftNetlink"]),
        .testTarget(name: "WeftDatapathTests", dependencies: ["WeftDatapath", "WeftTestSupport", "WeftCrypto", "WeftWire", "WeftMesh", "WeftNetlink"]),
        .testTarget(name: "WeftControlTests", dependencies: [
            "WeftControl", "WeftCrypto", "WeftWire", "WeftTestSupport",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "WeftHostTests", dependencies: ["WeftHost", "WeftControl"]),
        .testTarget(name: "WeftRouterTests", dependencies: [
            "WeftRouter", "WeftTestSupport", "WeftControl", "WeftLink", "WeftMesh", "WeftCrypto",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "IntegrationTests", dependencies: ["WeftRouter", "WeftHost", .product(name: "NIOCore", package: "swift-nio")]),
    ],
    swiftLanguageModes: [.v6]
)
