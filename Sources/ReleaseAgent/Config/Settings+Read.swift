import Foundation

/// Settings from the merged raw values, one group at a time (as `FleetSettings.read` and
/// `AnalysisSettings.read` are): each reader names a setting once, and the reader's error
/// carries where the value came from.
extension Settings {
    /// Checks and types every raw value; the first bad one is a usage error naming its source.
    public init(raw: [String: RawSetting]) throws {
        let reader = SettingReader(raw: raw)
        guard let root = try reader.path("root") else {
            throw AgentError.usage(
                "no deploy root: pass --root DIR, set RELEASE_AGENT_ROOT, or root in the config file")
        }
        // Resolved once: hooks see one DEPLOY_ROOT whatever the working directory or symlinks.
        self.init(root: FileSystem.realPath(root) ?? root)
        try readSource(reader)
        try readBuild(reader)
        try readHealth(reader)
        try readStrategy(reader)
        try readServe(reader)
        try readGuards(reader)
        try readSignatureSettings(reader)
        try checkHealthTargets(reader)
        fleet = try FleetSettings.read(reader)
        analysis = try AnalysisSettings.read(reader, strategy: strategy)
    }

    /// repo, branch, the credentials to fetch with.
    private mutating func readSource(_ reader: SettingReader) throws {
        repo = try reader.string("repo").map { try reader.remote($0, "repo") }
        branch =
            try reader.parsed(
                "branch",
                "is not a name git allows for a branch (no spaces, ~ ^ : ? * [ \\, '..', '@{', no leading - or /, no trailing / . or .lock); use a name like main"
            ) { Settings.isValidBranch($0) ? $0 : nil } ?? branch
        credentials = GitCredentials(
            sshKey: try reader.path("ssh-key"), tokenFile: try reader.path("token-file"),
            knownHosts: try reader.path("known-hosts"))
    }

    /// keep-releases, build, build-timeout, shared and the tree settings.
    private mutating func readBuild(_ reader: SettingReader) throws {
        keepReleases = try reader.integer("keep-releases", minimum: 1) ?? keepReleases
        build = try reader.string("build")
        buildTimeout = try reader.duration("build-timeout") ?? buildTimeout
        // `public/uploads/` means `public/uploads`.
        shared = try reader.relativePaths("shared", what: "a plain relative path inside the release")
        try reader.disjoint(
            "shared", shared, because: "linking one would replace the other's file in ROOT/shared")
        tree = try TreeSettings.read(reader, shared: shared)
    }

    /// The health check: its target, timing and expectation.
    private mutating func readHealth(_ reader: SettingReader) throws {
        healthURL = try reader.parsed(
            "health-url",
            "is not an http:// URL (with {port} only as its port); the check talks to the release on this host over plain HTTP (write it like http://127.0.0.1:8080/health, or use health-tcp)",
            HealthURL.parse)
        healthTCP = try reader.parsed(
            "health-tcp", "is not host:port with a port 1-65535; write it like 127.0.0.1:8080"
        ) { HostPort.parse($0, .healthTCP) }
        healthTimeout = try reader.duration("health-timeout") ?? healthTimeout
        healthInterval = try reader.duration("health-interval") ?? healthInterval
        healthExpect = try reader.string("health-expect")
        healthSuccesses = try reader.integer("health-successes", minimum: 1) ?? healthSuccesses
    }

    /// strategy, slots, the hooks.
    private mutating func readStrategy(_ reader: SettingReader) throws {
        strategy = try reader.parsed("strategy", "must be restart or blue-green", Strategy.init(rawValue:)) ?? strategy
        let ports = try reader.list("slots").map { item in
            guard let port = Int(item), (1...65535).contains(port) else {
                throw AgentError.usage(
                    "slots item '\(item.terminalSafe)' (\(reader.origin("slots"))) is not a port number 1-65535")
            }
            return port
        }
        slots = ports.count == 2 ? SlotPair(ports[0], ports[1]) : nil
        if slots == nil && strategy == .blueGreen {
            throw AgentError.usage(
                "strategy blue-green needs two different ports in slots (\(reader.origin("slots"))), e.g. --slots 5000,6000"
            )
        }
        if slots == nil && !ports.isEmpty {
            throw AgentError.usage(
                "slots (\(reader.origin("slots"))) must be two different ports, e.g. 5000,6000; only strategy blue-green uses them, so under strategy \(strategy.rawValue) remove it"
            )
        }
        hooksDir = try reader.path("hooks-dir") ?? root + "/hooks"
        hookTimeout = try reader.duration("hook-timeout") ?? hookTimeout
        unit = try reader.string("unit").map { try Self.systemdUnit($0, origin: reader.origin("unit")) }
    }

    /// What serve listens on and answers, how it logs and stops.
    private mutating func readServe(_ reader: SettingReader) throws {
        listen =
            try reader.parsed("listen", "is not host:port with a port 0-65535; write it like 127.0.0.1:9000") {
                HostPort.parse($0, .listen)
            } ?? listen
        webhookSecretFile = try reader.path("webhook-secret-file")
        pollInterval = try reader.duration("poll-interval") ?? pollInterval
        allowUnsigned = try reader.bool("allow-unsigned") ?? false
        shutdownGrace = try reader.duration("shutdown-grace") ?? shutdownGrace
        healthToken = try reader.token("health-token", orFile: "health-token-file")
        metricsToken = try reader.token("metrics-token", orFile: "metrics-token-file")
        logFormat = try reader.parsed("log-format", "must be text or json", LogFormat.init(rawValue:)) ?? logFormat
        pidFile = try reader.path("pid-file")
    }

    /// pin, wait, and the refusals a deploy checks before it builds.
    private mutating func readGuards(_ reader: SettingReader) throws {
        pin = try reader.list("pin").map { $0.lowercased() }
        for item in pin where item.count < 4 || item.count > 40 || !item.allSatisfy(\.isHexDigit) {
            throw AgentError.usage(
                "pin '\(item.terminalSafe)' (\(reader.origin("pin"))) is not a commit id or prefix of 4-40 hex digits; write it as status shows it"
            )
        }
        wait = try reader.duration("wait")
        refuseForcePush = try reader.bool("refuse-force-push") ?? false
        minFreeSpace = try reader.size("min-free-space")
    }
}
