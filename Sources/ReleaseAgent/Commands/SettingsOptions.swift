import ArgumentParser
import Foundation

/// The settings every command accepts as flags; they win over the environment and the config file.
public struct SettingsOptions: ParsableArguments {
    public init() {}

    @Option(help: "Config file (default: $RELEASE_AGENT_CONFIG, else ./release-agent.toml).") var config: String?
    @Option(help: "Deploy root.") var root: String?
    @Option(help: "Remote: a path, file://, https:// or ssh:// URL.") var repo: String?
    @Option(help: "Branch to follow (default main).") var branch: String?
    @Option(help: "Ready releases kept on disk (default 5).") var keepReleases: String?
    @Option(help: "Shell command run in the release dir.") var build: String?
    @Option(help: "Build timeout (default 10m).") var buildTimeout: String?
    @Option(help: "Comma-separated paths linked from ROOT/shared.") var shared: String?
    @Option(help: "Comma-separated path prefixes: a head that changes nothing under them is skipped.")
    var paths: String?
    @Option(help: "The repository's directory that becomes the release.") var subdir: String?
    @Flag(inversion: .prefixedNo, help: "Check submodules out at their recorded commits (default on).")
    var submodules: Bool?
    @Flag(inversion: .prefixedNo, help: "Fetch submodules whose URL is a local path or file://.")
    var submodulesAllowLocal: Bool?
    @Option(help: "Comma-separated paths copied from the live release before the build, e.g. node_modules.")
    var buildCache: String?
    @Option(help: "Health check URL.") var healthUrl: String?
    @Option(help: "Health check host:port.") var healthTcp: String?
    @Option(help: "Health check gives up after (default 30s).") var healthTimeout: String?
    @Option(help: "Pause between health attempts (default 500ms).") var healthInterval: String?
    @Option(help: "Substring the health body must contain.") var healthExpect: String?
    @Option(help: "Passes in a row that count as healthy (default 1).") var healthSuccesses: String?
    @Option(help: "restart or blue-green.") var strategy: String?
    @Option(help: "Blue-green ports, e.g. 5000,6000.") var slots: String?
    @Option(help: "Where hooks are looked up (default ROOT/hooks).") var hooksDir: String?
    @Option(help: "Hook timeout (default 2m).") var hookTimeout: String?
    @Option(help: "serve: address of the HTTP endpoint.") var listen: String?
    @Option(help: "serve: file holding the webhook secret.") var webhookSecretFile: String?
    @Option(help: "serve: poll period, 0 turns polling off.") var pollInterval: String?
    @Option(help: "SSH private key for ssh remotes.") var sshKey: String?
    @Option(help: "File holding an https token.") var tokenFile: String?
    @Option(help: "Comma-separated releases prune never removes.") var pin: String?
    @Option(help: "Wait this long for the lock instead of exit 75.") var wait: String?
    @Flag(inversion: .prefixedNo, help: "serve: accept unsigned webhooks (testing only).") var allowUnsigned: Bool?
    @Option(help: "serve: SIGTERM grace for a running deploy.") var shutdownGrace: String?
    @Option(help: "serve: token for /healthz.") var healthToken: String?
    @Option(help: "serve: token for /metrics.") var metricsToken: String?
    @Option(help: "serve: a file (0600) holding the token for /healthz.") var healthTokenFile: String?
    @Option(help: "serve: a file (0600) holding the token for /metrics.") var metricsTokenFile: String?
    @Flag(inversion: .prefixedNo, help: "Refuse non-fast-forward moves of the branch.") var refuseForcePush: Bool?
    @Option(help: "Refuse to check out below this free space, e.g. 500M.") var minFreeSpace: String?
    @Option(help: "text or json.") var logFormat: String?
    @Option(help: "serve: PID file.") var pidFile: String?
    @Option(help: "systemd: the app's unit the hooks restart (SYSTEMD_UNIT); init writes a polkit rule for it.")
    var unit: String?
    @Option(help: "OpenSSH known_hosts for ssh remotes (default ~/.ssh/known_hosts).") var knownHosts: String?
    @Option(help: "off, ssh, gpg or any: deploy only commits signed by a trusted key.") var verifySignatures: String?
    @Option(help: "verify-signatures ssh: an allowed-signers file (git's gpg.ssh.allowedSignersFile).")
    var allowedSigners: String?
    @Option(help: "verify-signatures gpg: a keyring of the trusted public keys.") var gpgKeyring: String?
    @Option(help: "Fleet mode: etcd client URLs, comma-separated.") var fleetEtcd: String?
    @Option(help: "Fleet mode: the fleet's name; its keys live under /release-agent/NAME/.") var fleet: String?
    @Option(help: "Fleet mode: this host's id (default: the host name).") var hostId: String?
    @Option(help: "Fleet mode: hosts activating at once, a count or a percentage (default 1).")
    var fleetMaxParallel: String?
    @Option(help: "Fleet mode: canaries, a count or comma-separated host ids (default 0).") var fleetCanary: String?
    @Option(help: "Fleet mode: how long the canaries stay healthy before the others go (default 0s).")
    var fleetCanarySoak: String?
    @Option(help: "Fleet mode: how long a host waits for the canaries before it stops waiting (default 30m).")
    var fleetCanaryTimeout: String?
    @Option(help: "Fleet mode: failed hosts that halt a sha's rollout (default 1).") var fleetMaxFailures: String?
    @Option(help: "Fleet mode: TTL of a run's registration and of a held slot (default 10s).") var fleetLeaseTtl:
        String?
    @Option(help: "Fleet mode: TTL of serve's registration, renewed every third (default 3m).")
    var fleetPresenceTtl: String?
    @Option(help: "Fleet mode: hold or alone while etcd is unreachable (default hold).") var fleetOffline: String?
    @Option(help: "Fleet mode: CA bundle for https:// etcd endpoints.") var fleetCaFile: String?
    @Option(help: "Fleet mode: client certificate (PEM) for etcd's --client-cert-auth.") var fleetCertFile: String?
    @Option(help: "Fleet mode: the client certificate's key (PEM).") var fleetKeyFile: String?
    @Option(help: "Fleet mode: the etcd user (authentication on).") var fleetUser: String?
    @Option(help: "Fleet mode: a file holding the etcd user's password.") var fleetPasswordFile: String?
    @Flag(inversion: .prefixedNo, help: "Fleet mode: when a rollout halts, the hosts running it roll back.")
    var fleetAutoRevert: Bool?
    @Option(help: "Canary analysis: the Prometheus base URL, e.g. http://127.0.0.1:9090.")
    var analysisPrometheus: String?
    @Option(help: "Canary analysis: a check 'NAME: QUERY <= NUMBER' (or >=); repeat for more.")
    var analysis: [String] = []
    @Option(help: "Canary analysis: time between measurements (default 30s).") var analysisInterval: String?
    @Option(help: "Canary analysis: measurements of each check (default 4).") var analysisCount: String?
    @Option(help: "Canary analysis: wait after the swap before the first measurement (default 1m).")
    var analysisInitialDelay: String?
    @Option(help: "Canary analysis: measurements out of bounds tolerated (default 0).") var analysisFailureLimit:
        String?
    @Option(help: "Canary analysis: consecutive errors or no-data answers that make it inconclusive (default 4).")
    var analysisErrorLimit: String?
    @Option(help: "Canary analysis: a file holding a bearer token for Prometheus.") var analysisTokenFile: String?

    /// The settings given as flags, by name. Each setting's name is its property's name
    /// (`keepReleases` is `keep-releases`): read here by reflection, so it is written once.
    var flagValues: [String: RawValue] {
        var result: [String: RawValue] = [:]
        for child in Mirror(reflecting: self).children {
            guard let label = child.label, let name = Self.settingName(label) else { continue }
            if let option = child.value as? Option<String?> {
                if let value = option.wrappedValue { result[name] = .scalar(value) }
            } else if let flag = child.value as? Flag<Bool?> {
                if let value = flag.wrappedValue { result[name] = .scalar(value ? "true" : "false") }
            } else if let option = child.value as? Option<[String]> {
                // A repeatable flag (`--analysis` once per check): absent when not given.
                if !option.wrappedValue.isEmpty { result[name] = .list(option.wrappedValue) }
            } else {
                preconditionFailure("SettingsOptions.\(label): a setting's option must be String?, Bool? or [String]")
            }
        }
        return result
    }

    /// `_keepReleases` -> `keep-releases`; nil for what is not a setting (`config`).
    static func settingName(_ label: String) -> String? {
        let property = label.hasPrefix("_") ? String(label.dropFirst()) : label
        guard property != "config" else { return nil }
        var name = ""
        for character in property {
            if character.isUppercase {
                name += "-" + character.lowercased()
            } else {
                name.append(character)
            }
        }
        return name
    }

    /// Every setting's name, from the options above.
    static let names: Set<String> = Set(
        Mirror(reflecting: SettingsOptions()).children.compactMap { child in
            child.label.flatMap(settingName)
        })

    /// Flags, then environment, then the config file; checked before anything touches the disk.
    public func resolve() throws -> Settings { try Self.resolve(flags: flagValues, configFlag: config) }

    /// `resolve()` to call again later (serve's reload): the same flags, the sources read anew.
    public var rereader: @Sendable () throws -> Settings {
        let (flags, configFlag) = (flagValues, config)
        return { try Self.resolve(flags: flags, configFlag: configFlag) }
    }

    static func resolve(flags: [String: RawValue], configFlag: String?, readFile: Bool = true) throws -> Settings {
        let raw = try ConfigSources.merge(
            flags: flags, configFlag: configFlag, environment: ProcessInfo.processInfo.environment,
            cwd: FileManager.default.currentDirectoryPath, readFile: readFile)
        return try Settings(raw: raw)
    }
}
