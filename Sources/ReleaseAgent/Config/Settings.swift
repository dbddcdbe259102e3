import Foundation

public enum Strategy: String, Sendable {
    case restart
    case blueGreen = "blue-green"
}

/// Every setting, checked and typed. Built before anything on disk is touched.
public struct Settings: Sendable {
    public var root: String
    public var repo: String?
    public var branch = "main"
    public var keepReleases = 5
    public var build: String?
    public var buildTimeout: Duration = .seconds(600)
    public var shared: [String] = []
    public var healthURL: String?
    public var healthTCP: String?
    public var healthTimeout: Duration = .seconds(30)
    public var healthInterval: Duration = .milliseconds(500)
    public var healthExpect: String?
    public var healthSuccesses = 1
    public var strategy = Strategy.restart
    public var slots: [Int] = []
    public var hooksDir: String
    public var hookTimeout: Duration = .seconds(120)
    public var listen = "127.0.0.1:9000"
    public var webhookSecretFile: String?
    public var pollInterval: Duration = .seconds(60)
    public var credentials = GitCredentials()
    public var pin: [String] = []
    public var wait: Duration?
    public var allowUnsigned = false
    public var shutdownGrace: Duration = .seconds(30)
    public var healthToken: String?
    public var metricsToken: String?
    public var refuseForcePush = false
    public var minFreeSpace: UInt64?
    public var logFormat = "text"
    public var pidFile: String?

    public init(root: String) {
        self.root = root
        self.hooksDir = root + "/hooks"
    }

    /// Checks and types every raw value; the first bad one is a usage error naming its source.
    public init(raw: [String: RawSetting]) throws {
        var reader = SettingReader(raw: raw)
        guard let root = try reader.path("root") else {
            throw AgentError.usage(
                "no deploy root: pass --root DIR, set RELEASE_AGENT_ROOT, or root in the config file")
        }
        self.init(root: root)
        repo = try reader.string("repo").map { try reader.remote($0, "repo") }
        branch = try reader.string("branch") ?? branch
        guard !branch.isEmpty, !branch.hasPrefix("-"), !branch.contains(".."), !branch.contains(" ") else {
            throw AgentError.usage("branch '\(branch)' is not a valid branch name; use a name like main")
        }
        keepReleases = try reader.integer("keep-releases", minimum: 1) ?? keepReleases
        build = try reader.string("build")
        buildTimeout = try reader.duration("build-timeout") ?? buildTimeout
        shared = try reader.list("shared")
        for path in shared where path.hasPrefix("/") || path.split(separator: "/").contains("..") || path.isEmpty {
            throw AgentError.usage("shared path '\(path)' must be relative and stay inside the release; fix shared")
        }
        healthURL = try reader.string("health-url")
        if let url = healthURL, HTTPProbe.parse(HealthCheck.filling(url, port: 1)) == nil {
            throw AgentError.usage(
                "health-url '\(url)' is not an http:// URL; the check talks to the release on this host over plain HTTP (write it like http://127.0.0.1:8080/health, or use health-tcp)"
            )
        }
        healthTCP = try reader.string("health-tcp")
        healthTimeout = try reader.duration("health-timeout") ?? healthTimeout
        healthInterval = try reader.duration("health-interval") ?? healthInterval
        healthExpect = try reader.string("health-expect")
        healthSuccesses = try reader.integer("health-successes", minimum: 1) ?? healthSuccesses
        if let text = try reader.string("strategy") {
            guard let value = Strategy(rawValue: text) else {
                throw AgentError.usage(
                    "strategy '\(text)' (\(reader.origin("strategy"))) must be restart or blue-green")
            }
            strategy = value
        }
        slots = try reader.list("slots").map { item in
            guard let port = Int(item), (1...65535).contains(port) else {
                throw AgentError.usage("slot '\(item)' (\(reader.origin("slots"))) is not a port number 1-65535")
            }
            return port
        }
        if strategy == .blueGreen && (slots.count != 2 || slots[0] == slots[1]) {
            throw AgentError.usage("strategy blue-green needs two different ports in slots, e.g. --slots 5000,6000")
        }
        hooksDir = try reader.path("hooks-dir") ?? root + "/hooks"
        hookTimeout = try reader.duration("hook-timeout") ?? hookTimeout
        listen = try reader.string("listen") ?? listen
        webhookSecretFile = try reader.path("webhook-secret-file")
        pollInterval = try reader.duration("poll-interval") ?? pollInterval
        credentials = GitCredentials(sshKey: try reader.path("ssh-key"), tokenFile: try reader.path("token-file"))
        pin = try reader.list("pin")
        wait = try reader.duration("wait")
        allowUnsigned = try reader.bool("allow-unsigned") ?? false
        shutdownGrace = try reader.duration("shutdown-grace") ?? shutdownGrace
        healthToken = try reader.string("health-token")
        metricsToken = try reader.string("metrics-token")
        refuseForcePush = try reader.bool("refuse-force-push") ?? false
        minFreeSpace = try reader.size("min-free-space")
        logFormat = try reader.string("log-format") ?? logFormat
        guard logFormat == "text" || logFormat == "json" else {
            throw AgentError.usage("log-format '\(logFormat)' must be text or json")
        }
        pidFile = try reader.path("pid-file")
    }

    public var layout: Layout { Layout(root: root) }

    /// The remote, or a usage error for commands that must fetch.
    public func requireRepo() throws -> String {
        guard let repo else {
            throw AgentError.usage("no repository: pass --repo URL, set RELEASE_AGENT_REPO, or repo in the config file")
        }
        return repo
    }
}
