import Foundation

/// Runs the real built `release-agent` binary.
public struct Agent: Sendable {
    public let binary: String
    public let root: String
    public let repo: String
    /// Environment for every run: the test's own, without RELEASE_AGENT_* leaking in.
    public var environment: [String: String]
    /// Put before the binary on every run, e.g. a shell that sets `ulimit -f` first.
    public var wrapper: [String] = []

    public init(root: String, repo: String) throws {
        self.binary = try Agent.locateBinary()
        self.root = root
        self.repo = repo
        self.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
    }

    /// `release-agent` next to the test bundle (SwiftPM puts both in the same bin dir).
    public static func locateBinary() throws -> String {
        if let override = ProcessInfo.processInfo.environment["RELEASE_AGENT_BIN"] { return override }
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append((exe as NSString).deletingLastPathComponent + "/release-agent")
        }
        for bundle in Bundle.allBundles {
            candidates.append((bundle.bundlePath as NSString).deletingLastPathComponent + "/release-agent")
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        candidates.append(packageRoot + "/.build/debug/release-agent")
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FixtureError("release-agent binary not found in \(candidates); run swift build first")
        }
        return found
    }

    /// Runs a subcommand with `--root` and `--repo` added after it.
    public func run(_ subcommand: String, _ arguments: [String] = [], timeout: TimeInterval = 120) throws
        -> CommandResult
    {
        try ShellCommand.run(command(subcommand, arguments), environment: environment, timeout: timeout)
    }

    public func start(_ subcommand: String, _ arguments: [String] = []) throws -> RunningCommand {
        try ShellCommand.start(command(subcommand, arguments), environment: environment)
    }

    /// The command line `run` and `start` use (for tests that wrap it in a shell).
    /// A subcommand of a group is given with a space: `fleet status`.
    public func command(_ subcommand: String, _ arguments: [String]) -> [String] {
        let words = subcommand.split(separator: " ").map(String.init)
        return wrapper + [binary] + words + ["--root", root, "--repo", repo] + arguments
    }

    // MARK: reading the deploy root

    /// `history --json` with these arguments, parsed.
    public func historyEvents(_ arguments: [String] = []) throws -> [[String: Any]] {
        let result = try run("history", ["--json"] + arguments)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
    }

    /// `status --json`, parsed.
    public func statusObject() throws -> [String: Any] {
        let result = try run("status", ["--json"])
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }

    public var currentSHA: String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/current") else {
            return nil
        }
        return (target as NSString).lastPathComponent
    }

    public func releaseDirs() -> Set<String> {
        Set(
            ((try? FileManager.default.contentsOfDirectory(atPath: root + "/releases")) ?? []).filter { $0.count == 40 }
        )
    }

    public func recordState(_ sha: String) -> String? {
        record(sha)?["state"] as? String
    }

    /// The release record of `sha`, parsed.
    public func record(_ sha: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: "\(root)/.release-agent/releases/\(sha).json") else {
            return nil
        }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// Waits (bounded) until `path` exists.
    public static func waitForFile(_ path: String, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(20_000)
        }
        return false
    }
}
