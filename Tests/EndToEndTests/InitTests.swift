import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 15, item 3 (only this item and --version so far): `init`.
@Suite("init")
struct InitTests {
    @Test("writes a config that deploys as written, the root 0700, a 0600 secret, the next steps; refuses to overwrite")
    func scaffold() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let sha = try repo.commit("a")
        let binary = try Agent.locateBinary()
        let config = scratch.sub("etc/app.toml")
        try FileManager.default.createDirectory(atPath: scratch.sub("etc"), withIntermediateDirectories: true)
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
        let root = scratch.sub("srv/app")
        let arguments = [
            "init", "--config", config, "--root", root, "--repo", repo.path, "--build", "echo \"built\" > BUILT",
            "--shared", ".env,uploads", "--keep-releases", "3", "--refuse-force-push",
        ]
        let result = try ShellCommand.run([binary] + arguments, environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("payload URL http://YOUR-HOST:9000/webhook"), "\(result.stdout)")
        #expect(result.stdout.contains("release-agent poll --config \(config)"))
        let text = try String(contentsOfFile: config, encoding: .utf8)
        #expect(text.contains("shared = [\".env\", \"uploads\"]"), "\(text)")
        #expect(text.contains("refuse_force_push = true"), "\(text)")
        var st = stat()
        #expect(stat(root + "/.release-agent", &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(root + "/.release-agent/webhook-secret", &st) == 0 && st.st_mode & 0o777 == 0o600)
        let secret = try String(contentsOfFile: root + "/.release-agent/webhook-secret", encoding: .utf8)
        #expect(result.stdout.contains(secret.trimmingCharacters(in: .whitespacesAndNewlines)))

        // The config deploys as written.
        try FileManager.default.createDirectory(atPath: root + "/shared/uploads", withIntermediateDirectories: true)
        try "K=1\n".write(toFile: root + "/shared/.env", atomically: true, encoding: .utf8)
        let deploy = try ShellCommand.run([binary, "deploy", "--config", config], environment: environment)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(root)/releases/\(sha)/BUILT"))

        let again = try ShellCommand.run([binary] + arguments, environment: environment)
        #expect(again.status == 2)
        #expect(again.stderr.contains("exists; pass --force"), "\(again.stderr)")
        let forced = try ShellCommand.run([binary] + arguments + ["--force"], environment: environment)
        #expect(forced.status == 0, "\(forced.stderr)")
        // An ssh remote gets the ssh-keyscan line.
        let ssh = try ShellCommand.run(
            [
                binary, "init", "--config", scratch.sub("ssh.toml"), "--root", scratch.sub("ssh-root"), "--repo",
                "ssh://git@git.example.invalid:2222/app.git",
            ], environment: environment)
        #expect(ssh.status == 0, "\(ssh.stderr)")
        #expect(ssh.stdout.contains("ssh-keyscan -p 2222 git.example.invalid >>"), "\(ssh.stdout)")
    }

    @Test(
        "issue 23: settings from the environment are written; a bad --config creates nothing; tokens go to 0600 files, not inline"
    )
    func checksFirstAndKeepsSecrets() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let sha = try repo.commit("a")
        let binary = try Agent.locateBinary()
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }

        // A config path in a directory that does not exist: exit 2, and no root, no secret.
        let root = scratch.sub("srv/app")
        let bad = try ShellCommand.run(
            [binary, "init", "--config", scratch.sub("missing/dir/app.toml"), "--root", root, "--repo", repo.path],
            environment: environment)
        #expect(bad.status == 2, "\(bad.stderr)")
        #expect(bad.stderr.contains("cannot be written"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root), "init created the root before failing")

        // The keep count from the environment is written; the tokens go to files of their own.
        environment["RELEASE_AGENT_KEEP_RELEASES"] = "4"
        let config = scratch.sub("app.toml")
        let result = try ShellCommand.run(
            [
                binary, "init", "--config", config, "--root", root, "--repo", repo.path, "--health-token", "h-secret",
                "--metrics-token", "m-secret",
            ], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        #expect(text.contains("keep_releases = \"4\""), "\(text)")
        #expect(!text.contains("h-secret") && !text.contains("m-secret"), "a token went inline: \(text)")
        #expect(text.contains("health_token_file = \"\(root)/.release-agent/health-token\""), "\(text)")
        for name in ["health-token", "metrics-token"] {
            var st = stat()
            #expect(stat(root + "/.release-agent/" + name, &st) == 0 && st.st_mode & 0o777 == 0o600, "\(name)")
        }
        #expect(try String(contentsOfFile: root + "/.release-agent/health-token", encoding: .utf8) == "h-secret\n")

        // The config alone makes the same agent: it deploys, and the token file is read.
        environment.removeValue(forKey: "RELEASE_AGENT_KEEP_RELEASES")
        let deploy = try ShellCommand.run([binary, "deploy", "--config", config], environment: environment)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(root)/releases/\(sha)"))
        let both = try ShellCommand.run(
            [binary, "deploy", "--config", config, "--health-token", "x"], environment: environment)
        #expect(both.status == 2 && both.stderr.contains("both give the token"), "\(both.stderr)")
    }

    @Test("issue 24: init --unit writes a polkit rule for exactly that unit; its options need --unit")
    func polkitRule() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("a")
        let binary = try Agent.locateBinary()
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
        let rules = scratch.sub("rules.d")
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        func initialize(_ name: String, _ extra: [String]) throws -> CommandResult {
            try ShellCommand.run(
                [
                    binary, "init", "--config", scratch.sub(name + ".toml"), "--root", scratch.sub(name), "--repo",
                    repo.path,
                ]
                    + extra, environment: environment)
        }
        // systemd-escape's form: the backslash is part of the name, doubled in the JavaScript string.
        let escaped = try initialize(
            "a", ["--unit", #"web\x2dapp.service"#, "--polkit-dir", rules, "--agent-user", "deploy"])
        #expect(escaped.status == 0, "\(escaped.stderr)")
        let rule = try String(contentsOfFile: rules + #"/50-release-agent-web\x2dapp.service.rules"#, encoding: .utf8)
        #expect(rule.contains(#"action.lookup("unit") == "web\\x2dapp.service""#), "\(rule)")
        #expect(rule.contains(#"subject.user == "deploy""#))
        #expect(escaped.stdout.contains("polkit: wrote"), "\(escaped.stdout)")
        let config = try String(contentsOfFile: scratch.sub("a.toml"), encoding: .utf8)
        #expect(config.contains(#"unit = "web\\x2dapp.service""#), "\(config)")

        // A rules path that is not a directory: said, with the rule to put in place.
        let file = try initialize("b", ["--unit", "shop", "--polkit-dir", scratch.sub("a.toml")])
        #expect(file.status == 0 && file.stdout.contains("is not a directory"), "\(file.stdout)")
        // The rule's options alone mean nothing: exit 2, nothing created.
        let alone = try initialize("c", ["--agent-user", "deploy"])
        #expect(alone.status == 2 && alone.stderr.contains("give --unit NAME too"), "\(alone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("c")))
    }
}
