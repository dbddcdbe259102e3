import Foundation
import ReleaseAgentTestSupport
import Testing

/// The .deb that `packaging/deb.sh` built last (the README's test command builds it first).
private let debPath = TestTools.builtDeb

private let clean = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }

/// Installs the package on this machine (CI runs as root), runs the installed binaries, and
/// removes it again.
@Suite(
    "package: the .deb passes lintian, installs with apt, and deploys the demo from /usr/bin", .serialized,
    .enabled(if: (debPath != nil && getuid() == 0) || TestTools.inCI))
struct PackageTests {
    private func run(_ arguments: [String], environment: [String: String] = clean, timeout: TimeInterval = 300)
        throws -> CommandResult
    {
        var argv = arguments
        if !argv[0].hasPrefix("/") { argv[0] = try TestTools.require(argv[0], package: argv[0]) }
        return try ShellCommand.run(argv, environment: environment, timeout: timeout)
    }

    @Test("lintian: no errors; apt-get install; --version, init, deploy, the units verify; then removed")
    func installAndRun() throws {
        let deb = try #require(
            debPath, "no .deb in .build-deb/: run packaging/deb.sh first (the README's test command does)")
        #expect(getuid() == 0, "installing the package needs root")
        let lintian = try run(
            [
                try TestTools.require("lintian", package: "lintian"), "--fail-on", "error", "--tag-display-limit", "0",
                deb,
            ])
        #expect(lintian.status == 0, "lintian: \(lintian.stdout)\(lintian.stderr)")
        #expect(!lintian.stdout.contains("\nE: ") && !lintian.stdout.hasPrefix("E: "), "\(lintian.stdout)")

        let fields = try run(["dpkg-deb", "--field", deb, "Version", "Depends"]).stdout
        let version = try ShellCommand.run([try Agent.locateBinary(), "--version"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fields.contains("Version: \(version)"), "package \(fields) vs binary \(version)")
        #expect(fields.contains("libgit2-1.5"), "Depends: \(fields)")
        let contents = try run(["dpkg-deb", "--contents", deb]).stdout
        for path in [
            "./usr/bin/release-agent", "./usr/bin/release-agent-full", "./lib/systemd/system/release-agent@.service",
            "./usr/share/release-agent/hooks/systemd/activate", "./usr/share/release-agent/hooks/caddy/Caddyfile",
            "./usr/share/doc/release-agent/examples/release-agent.toml", "./usr/share/man/man1/release-agent.1.gz",
            "./usr/share/man/man1/release-agent.deploy.1.gz", "./usr/share/bash-completion/completions/release-agent",
            "./usr/share/zsh/vendor-completions/_release-agent",
            "./usr/share/fish/vendor_completions.d/release-agent.fish",
        ] {
            #expect(contents.contains(path + " ") || contents.contains(path + "\n"), "the package lacks \(path)")
        }

        let install = try run(
            ["apt-get", "install", "-y", "--allow-downgrades", deb],
            environment: clean.merging(["DEBIAN_FRONTEND": "noninteractive"]) { $1 })
        #expect(install.status == 0, "\(install.stdout.suffix(2000))\(install.stderr)")
        defer { _ = try? run(["apt-get", "purge", "-y", "release-agent"]) }
        #expect(try run(["/usr/bin/release-agent", "--version"]).stdout == version + "\n")
        #expect(try run(["/usr/bin/release-agent-full", "--version"]).stdout == version + "\n")
        #expect(try run(["getent", "passwd", "release-agent"]).status == 0, "postinst made no release-agent user")
        let manual = try run(["man", "-w", "release-agent.deploy"])
        #expect(manual.status == 0, "\(manual.stderr)")

        // The shipped units: the template as an instance, and the example unit for /usr/bin.
        let scratch = Scratch()
        let units = scratch.sub("units")
        try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: "/lib/systemd/system/release-agent@.service", toPath: units + "/release-agent@demo.service")
        let example = try String(
            contentsOfFile: packageRoot + "/releases.example/release-agent.service", encoding: .utf8)
        try example.replacingOccurrences(of: "/usr/local/bin/", with: "/usr/bin/").write(
            toFile: units + "/release-agent.service", atomically: true, encoding: .utf8)
        for unit in ["release-agent@demo.service", "release-agent.service"] {
            let verify = try run([
                try TestTools.require("systemd-analyze", package: "systemd"), "verify", units + "/" + unit,
            ])
            #expect(verify.status == 0 && verify.stderr.isEmpty, "\(unit): \(verify.stdout)\(verify.stderr)")
        }

        // The demo from the installed files: init writes the config, deploy runs it for real.
        let repo = try GitFixture(at: scratch.sub("demo-repo"))
        for name in ["app.py", "build.sh"] {
            try FileManager.default.copyItem(
                atPath: "/usr/share/release-agent/demo/app/" + name, toPath: repo.path + "/" + name)
        }
        let sha = try repo.commit("demo 1", files: ["VERSION": "1\n"])
        let port = freePort()
        let config = scratch.sub("demo.toml")
        let initialized = try run([
            "/usr/bin/release-agent", "init", "--config", config, "--root", scratch.sub("deploy"), "--repo", repo.path,
            "--build", "./build.sh", "--hooks-dir", "/usr/share/release-agent/demo/hooks", "--strategy", "restart",
            "--health-url", "http://127.0.0.1:\(port)/health",
        ])
        #expect(initialized.status == 0, "\(initialized.stderr)")
        #expect(initialized.stdout.contains("next steps"), "\(initialized.stdout)")
        let deployed = try run(
            ["/usr/bin/release-agent", "deploy", "--config", config],
            environment: clean.merging(["DEMO_PORT": String(port)]) { $1 })
        defer {
            if let pid = try? String(contentsOfFile: scratch.sub("deploy/run/demo.pid"), encoding: .utf8),
                let number = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(number, SIGTERM)
            }
        }
        #expect(deployed.status == 0, "\(deployed.stderr)")
        let live = try FileManager.default.destinationOfSymbolicLink(atPath: scratch.sub("deploy/current"))
        #expect(live.hasSuffix(sha))
        #expect(DemoService.get(port: port)?.status == 200)
        let status = try run(["/usr/bin/release-agent", "status", "--config", config])
        #expect(status.stdout.contains(String(sha.prefix(12))), "\(status.stdout)")
    }
}
