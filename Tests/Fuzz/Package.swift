// swift-tools-version:6.0
// The fuzz targets (docs/fuzzing.md): one libFuzzer binary over Weft's decoders, built only by
// scripts/fuzz.sh with `--sanitize=fuzzer --sanitize=address` into .build-fuzz, never by the
// normal build.
import PackageDescription

let package = Package(
    name: "WeftFuzz",
    dependencies: [
        .package(name: "Weft", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        .executableTarget(name: "weft-fuzz", dependencies: [
            .product(name: "WeftFuzzable", package: "Weft"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
