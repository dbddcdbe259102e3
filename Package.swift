// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "release-agent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "release-agent", targets: ["release-agent"]),
        .library(name: "ReleaseAgent", targets: ["ReleaseAgent"]),
    ],
    dependencies: [
        // Command line parsing, help and usage errors.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The TOML config file (toml++ underneath; the only TOML package available here).
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .target(name: "CShims"),
        .target(
            name: "ReleaseAgent",
            dependencies: [
                "CLibGit2",
                "CShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(
            name: "release-agent",
            dependencies: ["ReleaseAgent"]
        ),
        .target(
            name: "ReleaseAgentTestSupport",
            dependencies: ["ReleaseAgent", "CShims"]
        ),
        .testTarget(
            name: "ReleaseAgentTests",
            dependencies: ["ReleaseAgent", "ReleaseAgentTestSupport"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["ReleaseAgentTestSupport", "release-agent"]
        ),
    ]
)
