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
    /// Blue-green's two ports; nil when not set (strategy restart).
    public var slots: SlotPair?
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

    /// verify-signatures with the file it needs, readable.
    mutating func readSignatureSettings(_ reader: SettingReader) throws {
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
    func checkHealthTargets(_ reader: SettingReader) throws {
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
