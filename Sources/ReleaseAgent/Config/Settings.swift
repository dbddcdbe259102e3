import Foundation

/// `verify-signatures`: which commit signatures are trusted.
public enum SignaturePolicy: String, Sendable {
    case off, ssh, gpg, any
}

/// `log-format`.
public enum LogFormat: String, Sendable {
    case text, json
}

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
    /// `paths`, `subdir`, `build-cache`.
    public var tree = TreeSettings()
    public var healthURL: HealthURL?
    public var healthTCP: HostPort?
    public var healthTimeout: Duration = .seconds(30)
    public var healthInterval: Duration = .milliseconds(500)
    public var healthExpect: String?
    public var healthSuccesses = 1
    public var strategy = Strategy.restart
    public var slots: [Int] = []
    public var hooksDir: String
    public var hookTimeout: Duration = .seconds(120)
    public var listen = HostPort(host: "127.0.0.1", port: .number(9000))
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
    public var logFormat = LogFormat.text
    public var pidFile: String?
    /// The app's systemd unit, full name (`demo-app.service`); hooks get it as `SYSTEMD_UNIT`.
    public var unit: String?
    public var verifySignatures = SignaturePolicy.off
    public var allowedSigners: String?
    public var gpgKeyring: String?
    /// Fleet mode, with `fleet-etcd`; nil on one host.
    public var fleet: FleetSettings?
    /// Canary analysis against Prometheus after the swap; nil when off.
    public var analysis: AnalysisSettings?

    public init(root: String) {
        self.root = root
        self.hooksDir = root + "/hooks"
    }

    /// Checks and types every raw value; the first bad one is a usage error naming its source.
    public init(raw: [String: RawSetting]) throws {
        let reader = SettingReader(raw: raw)
        guard let root = try reader.path("root") else {
            throw AgentError.usage(
                "no deploy root: pass --root DIR, set RELEASE_AGENT_ROOT, or root in the config file")
        }
        // Resolved once: hooks see one DEPLOY_ROOT whatever the working directory or symlinks.
        self.init(root: FileSystem.realPath(root) ?? root)
        repo = try reader.string("repo").map { try reader.remote($0, "repo") }
        branch = try reader.string("branch") ?? branch
        guard Settings.isValidBranch(branch) else {
            throw AgentError.usage(
                "branch '\(branch.terminalSafe)' (\(reader.origin("branch"))) is not a name git allows for a branch (no spaces, ~ ^ : ? * [ \\, '..', '@{', no leading - or /, no trailing / . or .lock); use a name like main"
            )
        }
        keepReleases = try reader.integer("keep-releases", minimum: 1) ?? keepReleases
        build = try reader.string("build")
        buildTimeout = try reader.duration("build-timeout") ?? buildTimeout
        // `public/uploads/` means `public/uploads`.
        shared = try reader.relativePaths("shared", what: "a plain relative path inside the release")
        try reader.disjoint(
            "shared", shared, because: "linking one would replace the other's file in ROOT/shared")
        tree = try TreeSettings.read(reader, shared: shared)
        if let url = try reader.string("health-url") {
            guard let value = HealthURL.parse(url) else {
                throw AgentError.usage(
                    "health-url '\(url)' (\(reader.origin("health-url"))) is not an http:// URL (with {port} only as its port); the check talks to the release on this host over plain HTTP (write it like http://127.0.0.1:8080/health, or use health-tcp)"
                )
            }
            healthURL = value
        }
        if let text = try reader.string("health-tcp") {
            guard let value = HostPort.parse(text, .healthTCP) else {
                throw AgentError.usage(
                    "health-tcp '\(text)' (\(reader.origin("health-tcp"))) is not host:port with a port 1-65535; write it like 127.0.0.1:8080"
                )
            }
            healthTCP = value
        }
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
                throw AgentError.usage("slots item '\(item)' (\(reader.origin("slots"))) is not a port number 1-65535")
            }
            return port
        }
        if strategy == .blueGreen && (slots.count != 2 || slots[0] == slots[1]) {
            throw AgentError.usage(
                "strategy blue-green needs two different ports in slots (\(reader.origin("slots"))), e.g. --slots 5000,6000"
            )
        }
        hooksDir = try reader.path("hooks-dir") ?? root + "/hooks"
        hookTimeout = try reader.duration("hook-timeout") ?? hookTimeout
        if let text = try reader.string("listen") {
            guard let value = HostPort.parse(text, .listen) else {
                throw AgentError.usage(
                    "listen '\(text)' (\(reader.origin("listen"))) is not host:port with a port 0-65535; write it like 127.0.0.1:9000"
                )
            }
            listen = value
        }
        webhookSecretFile = try reader.path("webhook-secret-file")
        pollInterval = try reader.duration("poll-interval") ?? pollInterval
        credentials = GitCredentials(
            sshKey: try reader.path("ssh-key"), tokenFile: try reader.path("token-file"),
            knownHosts: try reader.path("known-hosts"))
        pin = try reader.list("pin").map { $0.lowercased() }
        for item in pin where item.count < 4 || item.count > 40 || !item.allSatisfy(\.isHexDigit) {
            throw AgentError.usage(
                "pin '\(item.terminalSafe)' (\(reader.origin("pin"))) is not a commit id or prefix of 4-40 hex digits; write it as status shows it"
            )
        }
        wait = try reader.duration("wait")
        allowUnsigned = try reader.bool("allow-unsigned") ?? false
        shutdownGrace = try reader.duration("shutdown-grace") ?? shutdownGrace
        healthToken = try reader.token("health-token", orFile: "health-token-file")
        metricsToken = try reader.token("metrics-token", orFile: "metrics-token-file")
        refuseForcePush = try reader.bool("refuse-force-push") ?? false
        minFreeSpace = try reader.size("min-free-space")
        if let text = try reader.string("log-format") {
            guard let value = LogFormat(rawValue: text) else {
                throw AgentError.usage("log-format '\(text)' (\(reader.origin("log-format"))) must be text or json")
            }
            logFormat = value
        }
        pidFile = try reader.path("pid-file")
        unit = try reader.string("unit").map { try Self.systemdUnit($0, origin: reader.origin("unit")) }
        try readSignatureSettings(reader)
        try checkHealthTargets(reader)
        fleet = try FleetSettings.read(reader)
        analysis = try AnalysisSettings.read(reader, strategy: strategy)
    }

    /// verify-signatures with the file it needs, readable.
    private mutating func readSignatureSettings(_ reader: SettingReader) throws {
        if let text = try reader.string("verify-signatures") {
            guard let policy = SignaturePolicy(rawValue: text) else {
                throw AgentError.usage(
                    "verify-signatures '\(text)' (\(reader.origin("verify-signatures"))) must be off, ssh, gpg or any")
            }
            verifySignatures = policy
        }
        allowedSigners = try reader.path("allowed-signers")
        gpgKeyring = try reader.path("gpg-keyring")
        let needs: [(String, String?, Bool)] = [
            ("allowed-signers", allowedSigners, verifySignatures == .ssh),
            ("gpg-keyring", gpgKeyring, verifySignatures == .gpg),
        ]
        for (name, path, required) in needs {
            if required && path == nil {
                throw AgentError.usage(
                    "verify-signatures \(verifySignatures.rawValue) (\(reader.origin("verify-signatures"))) needs \(name); set it to the file of trusted keys"
                )
            }
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw AgentError.usage(
                    "\(name) \(path) (\(reader.origin(name))) cannot be read; check the path and its permissions")
            }
        }
        if verifySignatures == .any && allowedSigners == nil && gpgKeyring == nil {
            throw AgentError.usage(
                "verify-signatures any (\(reader.origin("verify-signatures"))) needs allowed-signers or gpg-keyring")
        }
    }

    /// health-tcp splits into host and port; `{port}` only where blue-green fills it in.
    private func checkHealthTargets(_ reader: SettingReader) throws {
        if strategy != .blueGreen {
            for name in ["health-url", "health-tcp"] {
                let value = name == "health-url" ? healthURL?.text : healthTCP?.description
                if let value, value.contains("{port}") {
                    throw AgentError.usage(
                        "\(name) '\(value)' (\(reader.origin(name))) has {port}, which only strategy blue-green fills in; write the port, or set strategy blue-green with slots"
                    )
                }
            }
        }
    }

    /// The health check these settings describe, for `port` under blue-green.
    public func healthCheck(port: Int?) -> HealthCheck? { HealthCheck.from(self, port: port) }

    public var layout: Layout { Layout(root: root) }

    /// git's rules for a branch name (`git check-ref-format --branch`), so nothing the
    /// remote would refuse is fetched.
    static func isValidBranch(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("-"), !name.hasPrefix("/"), !name.hasSuffix("/"), !name.hasSuffix("."),
            !name.hasSuffix(".lock"), !name.contains(".."), !name.contains("@{"), !name.contains("//"), name != "@"
        else { return false }
        let forbidden: Set<Character> = [" ", "~", "^", ":", "?", "*", "[", "\\"]
        guard !name.contains(where: { forbidden.contains($0) || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } == true })
        else { return false }
        return !name.split(separator: "/").contains { $0.hasPrefix(".") || $0.hasSuffix(".lock") }
    }

    /// The remote, or a usage error for commands that must fetch.
    public func requireRepo() throws -> String {
        guard let repo else {
            throw AgentError.usage("no repository: pass --repo URL, set RELEASE_AGENT_REPO, or repo in the config file")
        }
        return repo
    }
}

extension Settings {
    /// A service unit's full name: `demo-app` becomes `demo-app.service`; an instance of a
    /// template (`app@5000.service`) is allowed, the template itself is not (nothing to restart).
    static func systemdUnit(_ text: String, origin: String) throws -> String {
        let name = text.contains(".") ? text : text + ".service"
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-@\\")
        let stem = name.hasSuffix(".service") ? String(name.dropLast(8)) : ""
        // At most 200: the polkit rule's file is named after the unit, within NAME_MAX. Not
        // starting with `-` or `.`: hooks pass it to systemctl, which would take it as an option.
        guard !stem.isEmpty, name.count <= 200, name.allSatisfy(allowed.contains), !stem.hasSuffix("@"),
            !stem.hasPrefix("@"), !stem.hasPrefix("-"), !stem.hasPrefix("."), stem.filter({ $0 == "@" }).count <= 1
        else {
            throw AgentError.usage(
                "unit '\(text)' (\(origin)) is not a systemd service name; write the app's unit like demo-app.service (a template's instance like app@blue.service)"
            )
        }
        return name
    }
}
