// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "release-agent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "release-agent", targets: ["release-agent"]),
        .executable(name: "release-agent-full", targets: ["release-agent-full"]),
        .library(name: "ReleaseAgent", targets: ["ReleaseAgent"]),
    ],
    dependencies: [
        // Command line parsing, help and usage errors.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The TOML config file (toml++ underneath; the only TOML package available here).
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        // serve: the webhook endpoint (HTTP/1 on SwiftNIO), its lifecycle and its metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // NIOHTTP1 (already under Hummingbird): HTTP/1 rules its HTTP-types layer cannot see.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Fleet mode: etcd's v3 JSON gateway (HTTP/1.1, https with a CA file).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // HMAC-SHA256 of webhook bodies, compared in constant time.
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
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
                "CShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // `release-agent` (the target above alone) runs rollback, status, history, prune and a
        // no-op poll itself, and execs `release-agent-full` for deploy, serve and a poll that
        // must fetch: loading libgit2 and its ~15 libraries costs more than a no-op poll of a
        // local remote takes in all, and the server stack (NIO, BoringSSL) more again.
        .target(
            name: "ReleaseAgentGit",
            dependencies: ["ReleaseAgent", "CLibGit2", "CShims"]
        ),
        .target(
            name: "ReleaseAgentServe",
            dependencies: [
                "ReleaseAgentGit",
                "ReleaseAgentFleet",
                "ReleaseAgentPrometheus",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // An etcd v3 client that knows nothing of release-agent: kv, txn, lease, watch.
        .target(
            name: "ReleaseAgentEtcd",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Canary analysis: instant queries to Prometheus over AsyncHTTPClient (already here
        // for etcd), linked into release-agent-full only.
        .target(
            name: "ReleaseAgentPrometheus",
            dependencies: [
                "ReleaseAgent",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Fleet mode's rules (canaries, slots, halts) over the etcd client.
        .target(
            name: "ReleaseAgentFleet",
            dependencies: [
                "ReleaseAgent", "ReleaseAgentEtcd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // Already in the graph through AsyncHTTPClient: its thread pool runs the
                // blocking etcd reads of serve's watch off the cooperative pool.
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "release-agent",
            dependencies: ["ReleaseAgent"]
        ),
        .executableTarget(
            name: "release-agent-full",
            dependencies: ["ReleaseAgentServe"]
        ),
        // bench/fleet-sim.sh: many simulated serve hosts through the real fleet gate. Not shipped.
        .executableTarget(
            name: "fleet-sim",
            dependencies: [
                "ReleaseAgent", "ReleaseAgentFleet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "ReleaseAgentTestSupport",
            dependencies: ["ReleaseAgent", "CShims", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "ReleaseAgentTests",
            dependencies: [
                "ReleaseAgent", "ReleaseAgentGit", "ReleaseAgentServe", "ReleaseAgentEtcd", "ReleaseAgentTestSupport",
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["ReleaseAgentTestSupport", "release-agent", "release-agent-full"]
        ),
    ]
)
