import ArgumentParser
import Foundation

/// `init --root R --repo U [settings]`: a commented config holding the given settings, the
/// root and its state dir (0700), a webhook secret (0600), and the next steps.
package struct InitCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Write a config with these settings, create the root and a webhook secret.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Overwrite an existing config file.") var force = false
    @Option(help: "With --unit: the user the agent runs as, whom the polkit rule lets restart the unit.")
    var agentUser = "release-agent"
    @Option(help: "With --unit: where the polkit rule is written.") var polkitDir = "/etc/polkit-1/rules.d"

    package init() {}

    package func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let target = settings.config.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 } ?? cwd + "/release-agent.toml"
        // Everything is checked before anything is created.
        if FileSystem.exists(target) && !force {
            throw AgentError.usage("the config file \(target) exists; pass --force to overwrite it, or --config FILE")
        }
        let directory = (target as NSString).deletingLastPathComponent
        guard FileSystem.isDirectory(directory), access(directory, W_OK) == 0, !FileSystem.isDirectory(target) else {
            throw AgentError.usage(
                "the config file \(target) cannot be written (\(directory) is not a writable directory); create it, or give another --config"
            )
        }
        // The flags and the environment count (the file is what we are about to write), and
        // both are written: the config alone must make the same agent.
        let raw = try ConfigSources.merge(
            flags: settings.flagValues, configFlag: nil, environment: ProcessInfo.processInfo.environment, cwd: cwd,
            readFile: false)
        let resolved = try Settings(raw: raw)
        if resolved.unit != nil {
            try PolkitRule.checkUser(agentUser)
        } else if agentUser != "release-agent" || polkitDir != "/etc/polkit-1/rules.d" {
            throw AgentError.usage(
                "--agent-user and --polkit-dir shape the polkit rule for --unit; give --unit NAME too, or leave them out"
            )
        }
        let repo = try resolved.requireRepo()
        let layout = resolved.layout
        var values = raw.mapValues(\.value)
        let secretFile = resolved.webhookSecretFile ?? layout.state + "/webhook-secret"
        let secretDirectory = (secretFile as NSString).deletingLastPathComponent
        if resolved.webhookSecretFile != nil && !FileSystem.isDirectory(secretDirectory) {
            throw AgentError.usage(
                "webhook-secret-file \(secretFile): \(secretDirectory) is not a directory; create it first")
        }
        try layout.create()
        if !FileSystem.exists(secretFile) {
            var generator = SystemRandomNumberGenerator()
            let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }
                .joined()
            try Self.writeSecret(secret, to: secretFile)
        }
        // Tokens never go inline into the config (it is commonly world-readable): each goes to
        // a 0600 file of its own under the state dir, and the config names the file.
        for (name, fileName) in [("health-token", "health-token-file"), ("metrics-token", "metrics-token-file")] {
            guard case .scalar(let token)? = values.removeValue(forKey: name) else { continue }
            let file = layout.state + "/" + name
            try Self.writeSecret(token, to: file)
            values[fileName] = .scalar(file)
        }
        values["root"] = .scalar(layout.root)
        values["repo"] = .scalar(repo)
        values["webhook-secret-file"] = .scalar(secretFile)
        try FileSystem.writeAtomically(Data(Self.toml(values).utf8), to: target)
        print(nextSteps(resolved, config: target, secretFile: secretFile))
        if let unit = resolved.unit {
            print(PolkitRule(user: agentUser, unit: unit).install(in: polkitDir), terminator: "")
        }
    }

    /// A secret in a file of its own, mode 0600 from its creation.
    static func writeSecret(_ secret: String, to file: String) throws {
        let temporary = file + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw AgentError.environment("cannot write \(file): \(String(cString: strerror(errno)))") }
        let bytes = Array((secret + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, file) == 0 else {
            unlink(temporary)
            throw AgentError.environment("cannot write \(file); check free space and permissions")
        }
    }

    /// One `key = value` line per setting given, with a header that points at the example.
    static func toml(_ flags: [String: RawValue]) -> String {
        var lines = [
            "# release-agent config, written by `release-agent init`.",
            "# Every setting, explained: releases.example/release-agent.toml in the source, or",
            "# /usr/share/doc/release-agent/ when installed from the package.", "",
        ]
        let lists: Set<String> = ["shared", "slots", "pin", "fleet-etcd", "fleet-canary"]
        func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        for name in flags.keys.sorted() {
            guard let value = flags[name] else { continue }
            let key = name.replacingOccurrences(of: "-", with: "_")
            let items = value.items
            if lists.contains(name) {
                let rendered = items.map { name == "slots" && Int($0) != nil ? $0 : quoted($0) }
                lines.append("\(key) = [\(rendered.joined(separator: ", "))]")
            } else if case .scalar(let text) = value {
                let bare =
                    ["true", "false"].contains(text)
                    && ["allow-unsigned", "refuse-force-push", "fleet-auto-revert"].contains(name)
                lines.append("\(key) = \(bare ? text : quoted(text))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func nextSteps(_ settings: Settings, config: String, secretFile: String) -> String {
        let secret = ((try? String(contentsOfFile: secretFile, encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        var lines = [
            "wrote \(config); created \(settings.root) (state in \(settings.layout.state), mode 0700)",
            "", "next steps:",
            "  1. GitHub webhook (Settings > Webhooks): payload URL http://YOUR-HOST:\(settings.listen.port(slot: nil))/webhook,",
            "     content type application/json, secret \(secret) (in \(secretFile)), event: push",
        ]
        if let endpoint = RemoteURL.endpoint(settings.repo ?? ""),
            (settings.repo ?? "").hasPrefix("ssh://")
                || RemoteURL.isSCPLike(settings.repo ?? "")
        {
            let port = endpoint.port == 22 ? "" : " -p \(endpoint.port)"
            lines.append("  2. trust the ssh host key, after checking it out of band:")
            lines.append("     ssh-keyscan\(port) \(endpoint.host) >> \(settings.credentials.knownHosts)")
        } else {
            lines.append("  2. a private https repository needs --token-file; an ssh one, --ssh-key and known-hosts")
        }
        lines.append("  3. run it: systemctl enable --now release-agent@NAME (reads /etc/release-agent/NAME.toml),")
        lines.append("     or release-agent serve --config \(config), or from cron:")
        lines.append("     * * * * * release-agent poll --config \(config)")
        return lines.joined(separator: "\n")
    }
}
