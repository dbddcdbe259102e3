import Foundation
import ReleaseAgentTestSupport
import Testing

/// The .deb that `packaging/deb.sh` built last (the README's test command builds it first).
private let debPath = TestTools.builtDeb

/// Seed 002 under a real systemd (PID 1 of a Debian 12 container): the package installed,
/// the agent as `release-agent@demo` (Type=notify, User=release-agent, NoNewPrivileges), the app
/// in its own unit restarted in place by the sample `hooks/systemd`, through the polkit rule
/// that `init --unit` writes.
@Suite(
    "seed: systemd as PID 1 (systemd-nspawn), the package's unit, hooks/systemd", .serialized,
    .enabled(if: TestTools.inCI || (getuid() == 0 && TestTools.path("systemd-nspawn") != nil && debPath != nil)))
struct SystemdSeedTests {
    static let config = "/etc/release-agent/demo.toml"
    static let root = "/var/lib/release-agent/demo"

    /// The container with the package installed and the agent initialised for the demo app.
    struct Setup {
        let scratch: Scratch
        let container: SystemdContainer
        let repo: GitFixture
        let appPort: Int
        let listen: Int
        let secret: String
        let server: GitHTTPServer

        /// A commit pushed to the served remote; its sha.
        func push(_ message: String, files: [String: String] = [:]) throws -> String {
            let sha = try repo.commit(message, files: files)
            try repo.git("push", "-q", scratch.sub("served/app.git"), "HEAD:main")
            return sha
        }

        /// A signed GitHub push delivery to the agent inside; its HTTP status.
        func webhook() throws -> Int {
            let body = Data(
                #"{"ref":"refs/heads/main","after":"1111111111111111111111111111111111111111","deleted":false}"#.utf8)
            let reply = try TestHTTP.send(
                "POST", "http://127.0.0.1:\(listen)/webhook",
                headers: [
                    "X-GitHub-Event": "push", "X-GitHub-Delivery": UUID().uuidString,
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": TestHTTP.githubSignature(body, secret: secret),
                ], body: body)
            return reply.status
        }

        /// What the app answers on `/`, nil while nothing does.
        func served() -> String? {
            DemoService.get(port: appPort)?.body.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    static func setUp(_ scratch: Scratch) throws -> Setup {
        let deb = try #require(
            debPath, "no .deb in .build-deb/: run packaging/deb.sh first (the README's test command does)")
        let tree = try DebianTree.ensure()
        let debs = scratch.sub("debs")
        try FileManager.default.createDirectory(atPath: debs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: deb, toPath: debs + "/release-agent.deb")
        let repo = try GitFixture(at: scratch.sub("work"))
        try repo.commit("v1", files: ["app.py": DemoService.app])
        let cloned = try ShellCommand.run([
            "/usr/bin/env", "git", "clone", "-q", "--bare", repo.path, scratch.sub("served/app.git"),
        ])
        guard cloned.status == 0 else { throw FixtureError("git clone --bare: \(cloned.stderr)") }
        let token = "tok-\(UUID().uuidString)"
        let server = try GitHTTPServer(projectRoot: scratch.sub("served"), token: token)
        let container = try SystemdContainer(
            tree: tree, binds: [.init(host: debs, inside: "/srv/debs")], log: scratch.sub("container.log"))
        let (appPort, listen) = (freePort(), freePort())
        try container.shell("dpkg -i /srv/debs/release-agent.deb", timeout: 300)
        // The app's own unit, run from `current`; the agent restarts it through hooks/systemd.
        try container.shell(
            """
            cat > /etc/systemd/system/demo-app.service <<'UNIT'
            [Unit]
            Description=the demo app, from release-agent's current release
            [Service]
            User=nobody
            Group=release-agent
            WorkingDirectory=\(root)/current
            Environment=PORT=\(appPort)
            ExecStart=/usr/bin/python3 app.py
            UNIT
            systemctl daemon-reload
            printf '%s\\n' '\(token)' > /etc/release-agent/demo.token
            chgrp release-agent /etc/release-agent/demo.token && chmod 0640 /etc/release-agent/demo.token
            """)
        let initialized = try container.run([
            "release-agent", "init", "--config", config, "--root", root, "--repo", server.url(for: "app.git"),
            "--token-file", "/etc/release-agent/demo.token", "--unit", "demo-app",
            "--hooks-dir", "/usr/share/release-agent/hooks/systemd", "--health-url", "http://127.0.0.1:\(appPort)/",
            "--health-timeout", "20s", "--listen", "127.0.0.1:\(listen)", "--poll-interval", "0",
            "--build", "env > build-env.txt",
        ])
        guard initialized.status == 0 else { throw FixtureError("init: \(initialized.stderr)") }
        #expect(
            initialized.stdout.contains("polkit: wrote /etc/polkit-1/rules.d/50-release-agent-demo-app.service.rules"))
        let secret = try container.shell("cat \(root)/.release-agent/webhook-secret")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try container.shell("systemctl start release-agent@demo", timeout: 60)
        return Setup(
            scratch: scratch, container: container, repo: repo, appPort: appPort, listen: listen, secret: secret,
            server: server)
    }

    @Test(
        "webhook deploys as the agent's user, a rollback by hand, the app's PID across an agent restart and an upgrade"
    )
    func seed002() throws {
        let scratch = Scratch("systemd")
        let setup = try Self.setUp(scratch)
        let box = setup.container
        let v1 = try setup.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try setup.webhook() == 202)
        #expect(eventually(timeout: 60) { setup.served() == "ok \(v1)" }, "v1 never served: \(Self.journal(box))")
        let v2 = try setup.push("v2")
        #expect(try setup.webhook() == 202)
        #expect(eventually(timeout: 60) { setup.served() == "ok \(v2)" }, "v2 never served: \(Self.journal(box))")
        #expect(try box.property("User", of: "release-agent@demo") == "release-agent")

        // Builds and hooks do not inherit what systemd gave the agent (NOTIFY_SOCKET...).
        let env = try box.shell("cat \(Self.root)/releases/\(v2)/build-env.txt")
        let agentOnly = env.split(separator: "\n").filter {
            $0.hasPrefix("NOTIFY_SOCKET=") || ($0.hasPrefix("RELEASE_AGENT_") && !$0.hasPrefix("RELEASE_AGENT_EVENT="))
        }
        #expect(agentOnly.isEmpty, "\(env)")
        #expect(env.contains("RELEASE_SHA=\(v2)"))

        // The operator's rollback, by hand as the agent's user: SYSTEMD_UNIT comes from the config.
        let rollback = try box.run(
            ["release-agent", "rollback", "--config", Self.config, "--wait", "30s"], user: "release-agent")
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(setup.served() == "ok \(v1)")

        // A rollback whose hook fails for a reason that is not the release's (a unit it may not
        // restart) leaves its target ready: the right rollback goes on to it afterwards.
        let denied = try box.run(
            ["release-agent", "rollback", v2, "--config", Self.config, "--wait", "30s", "--unit", "ssh.service"],
            user: "release-agent")
        #expect(denied.status == 1, "\(denied.stderr)")
        #expect(denied.stderr.contains("stays ready"), "\(denied.stderr)")
        #expect(setup.served() == "ok \(v1)")
        // Restarts in quick succession, more than the unit's start limit (5 in 10 s): each one
        // lands, none leaves the app down.
        for n in 0..<7 {
            let target = n % 2 == 0 ? v2 : v1
            let again = try box.run(
                ["release-agent", "rollback", target, "--config", Self.config, "--wait", "30s"], user: "release-agent")
            #expect(again.status == 0, "rollback \(n) to \(target.prefix(8)): \(again.stderr)")
            #expect(setup.served() == "ok \(target)", "rollback \(n)")
        }
        #expect(setup.served() == "ok \(v2)")

        // Restarting the agent leaves the app alone: it lives in its own unit.
        let app = try box.property("MainPID", of: "demo-app")
        let agent = try box.property("MainPID", of: "release-agent@demo")
        try box.shell("systemctl restart release-agent@demo", timeout: 60)
        #expect(try box.property("MainPID", of: "demo-app") == app)
        #expect(try box.property("MainPID", of: "release-agent@demo") != agent)
        #expect(setup.served() == "ok \(v2)")

        // An upgrade restarts the running instance on the new package; the app keeps its PID.
        try Self.upgrade(box, scratch: scratch)
        let upgradedAgent = try box.property("MainPID", of: "release-agent@demo")
        #expect(try box.property("MainPID", of: "demo-app") == app)
        #expect(try box.property("ActiveState", of: "release-agent@demo") == "active")
        #expect(setup.served() == "ok \(v2)")
        // `systemctl reload` reads the config again: the next deploy runs the new build command.
        try box.shell(
            """
            sed -i 's|^build = .*|build = "env > build-env.txt; echo reloaded > reloaded.txt"|' \(Self.config)
            systemctl reload release-agent@demo
            """)
        #expect(eventually(timeout: 20) { Self.journal(box).contains("reload: settings read again") })
        let v3 = try setup.push("v3")
        #expect(try setup.webhook() == 202)
        #expect(eventually(timeout: 60) { setup.served() == "ok \(v3)" }, "v3 never served: \(Self.journal(box))")
        #expect(upgradedAgent != "0")
        #expect(try box.shell("cat \(Self.root)/releases/\(v3)/reloaded.txt") == "reloaded\n")

        let journal = Self.journal(box)
        for stage in ["fetch", "checkout", "build", "activate", "health"] {
            #expect(journal.contains(stage), "no \(stage) line in the journal")
        }
    }

    /// Repacks the installed .deb with a higher version and installs it over the running one.
    static func upgrade(_ box: SystemdContainer, scratch: Scratch) throws {
        let before = try box.property("MainPID", of: "release-agent@demo")
        try box.shell(
            """
            set -e
            rm -rf /tmp/up && mkdir /tmp/up && dpkg-deb -R /srv/debs/release-agent.deb /tmp/up
            sed -i 's/^Version: .*/&+upgrade1/' /tmp/up/DEBIAN/control
            dpkg-deb --root-owner-group -Znone --build /tmp/up /tmp/release-agent-upgrade.deb >/dev/null
            dpkg -i /tmp/release-agent-upgrade.deb
            """, timeout: 300)
        let version = try box.shell("dpkg-query -W -f '${Version}' release-agent")
        #expect(version.hasSuffix("+upgrade1"), "\(version)")
        #expect(
            try box.property("MainPID", of: "release-agent@demo") != before, "the upgrade did not restart the agent")
    }

    static func journal(_ box: SystemdContainer) -> String {
        (try? box.run(["journalctl", "--no-pager", "-o", "cat", "-u", "release-agent@demo"]).stdout) ?? ""
    }

    @Test("under systemd the sample hooks start the app in a unit of its own: it outlives the agent's unit")
    func appsOutsideTheAgentsUnit() throws {
        let scratch = Scratch("systemd")
        let deb = try #require(debPath, "no .deb in .build-deb/: run packaging/deb.sh first")
        let repo = try GitFixture(at: scratch.sub("repo"))
        let sha = try repo.commit("v1", files: ["app.py": DemoService.app])
        let box = try SystemdContainer(
            tree: try DebianTree.ensure(),
            binds: [
                .init(host: (deb as NSString).deletingLastPathComponent, inside: "/srv/debs"),
                .init(host: repo.path, inside: "/srv/repo"),
            ],
            log: scratch.sub("container.log"))
        try box.shell("dpkg -i /srv/debs/\((deb as NSString).lastPathComponent)", timeout: 300)
        // The agent runs in a unit that ends with the deploy: whatever is left in its cgroup dies.
        let port = freePort()
        let once = try box.run([
            "systemd-run", "--wait", "--quiet", "--unit=agent-once", "-E", "DEMO_PORT=\(port)",
            "/usr/bin/release-agent", "deploy", "--root", "/srv/demo", "--repo", "/srv/repo",
            "--hooks-dir", "/usr/share/release-agent/demo/hooks", "--health-url", "http://127.0.0.1:\(port)/health",
        ])
        let onceLog = (try? box.shell("journalctl -u agent-once -o cat")) ?? ""
        #expect(once.status == 0, "\(once.stdout)\(once.stderr)\(onceLog)")
        #expect(DemoService.get(port: port)?.body == "ok \(sha)", "the demo app died with the agent's unit")
        let pid = try box.shell("cat /srv/demo/run/demo.pid").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try box.shell("cat /proc/\(pid)/cgroup").contains("release-agent-demo-\(port).service"))

        // nginx-blue-green's start, the same: the candidate runs in release-agent-app-<port>.
        let (blue, green) = (freePort(), freePort())
        try box.shell(
            "mkdir -p /srv/bg && cp /usr/share/release-agent/hooks/nginx-blue-green/start "
                + "/usr/share/release-agent/hooks/nginx-blue-green/stop /srv/bg/")
        // A candidate that exits at once: refused, and no pid file (a 0 in it made `stop` kill
        // its own process group, and every later start on the slot with it).
        let crashed = try box.run([
            "systemd-run", "--wait", "--quiet", "--unit=agent-crash", "-E", "APP_START=false",
            "/usr/bin/release-agent", "deploy", "--root", "/srv/bg-root", "--repo", "/srv/repo",
            "--strategy", "blue-green", "--slots", "\(blue),\(green)", "--hooks-dir", "/srv/bg",
            "--health-url", "http://127.0.0.1:{port}/health",
        ])
        #expect(crashed.status == 1)
        #expect(try box.run(["test", "-e", "/srv/bg-root/run/app-\(blue).pid"]).status != 0)
        let blueGreen = try box.run([
            "systemd-run", "--wait", "--quiet", "--unit=agent-bg", "-E", "APP_START=python3 app.py",
            "/usr/bin/release-agent", "deploy", "--root", "/srv/bg-root", "--repo", "/srv/repo",
            "--strategy", "blue-green", "--slots", "\(blue),\(green)", "--hooks-dir", "/srv/bg",
            "--health-url", "http://127.0.0.1:{port}/health",
        ])
        let blueGreenLog = (try? box.shell("journalctl -u agent-bg -o cat")) ?? ""
        #expect(blueGreen.status == 0, "\(blueGreenLog)")
        #expect(DemoService.get(port: blue)?.body == "ok \(sha)", "the candidate died with the agent's unit")
        let app = try box.shell("cat /srv/bg-root/run/app-\(blue).pid").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try box.shell("cat /proc/\(app)/cgroup").contains("release-agent-app-\(blue).service"))
    }
}
