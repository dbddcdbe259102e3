import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 17: what the operator is told must be true. One test per item, real binary.
@Suite("what the operator is told is true")
struct OperatorTruthTests {
    @Test("a missing shared file is not the commit's fault; a quarantine without a release dir is listed")
    func quarantineVisible() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        let missing = try agent.run("deploy", ["--shared", ".env"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("create it"), "\(missing.stderr)")
        try FileManager.default.createDirectory(atPath: agent.root + "/shared", withIntermediateDirectories: true)
        try "KEY=1\n".write(toFile: agent.root + "/shared/.env", atomically: true, encoding: .utf8)
        let poll = try agent.run("poll", ["--shared", ".env"])
        #expect(poll.status == 0, "\(poll.stderr)")
        let a = try #require(agent.currentSHA)
        #expect(agent.releaseDirs() == [a])
        // A checkout the commit broke is removed at once and quarantined: status lists it.
        try FileManager.default.createSymbolicLink(
            atPath: repo.path + "/REVISION", withDestinationPath: "/etc/hostname")
        let bad = try repo.commit("revision link")
        #expect(try agent.run("deploy", ["--shared", ".env"]).status == 1)
        #expect(!agent.releaseDirs().contains(bad))
        let status = try agent.run("status")
        #expect(status.stdout.contains("quarantined, not on disk (1)"), "\(status.stdout)")
        #expect(status.stdout.contains(String(bad.prefix(12))))
        let json = try agent.statusObject()
        let listed = (json["quarantinedElsewhere"] as? [[String: Any]])?.compactMap { $0["sha"] as? String } ?? []
        #expect(listed == [bad])
    }

    @Test("a live release whose dir was deleted is rebuilt by deploy and by poll, not called live")
    func liveDirDeleted() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        let build = ["--build", "echo built > BUILT"]
        #expect(try agent.run("deploy", build).status == 0)
        for command in ["deploy", "poll"] {
            try FileManager.default.removeItem(atPath: "\(agent.root)/releases/\(a)")
            let result = try agent.run(command, build)
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("nothing to do"), "\(command): \(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(agent.root)/releases/\(a)/BUILT"), "\(command)")
            #expect(agent.currentSHA == a)
            #expect(agent.recordState(a) == "active")
        }
    }

    @Test("refusals are recorded once (history, on-failure, last result); a cron poll then stays quiet")
    func refusalsRecordedOnce() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        let failures = scratch.sub("failures")
        try CorePromiseTests.hook(hooks, "on-failure", "#!/bin/sh\necho \"$FAILURE_STAGE\" >> \(failures)\n")
        let a = try repo.commit("a")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        try repo.commit("b")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        try repo.git("reset", "-q", "--hard", a)
        let c = try repo.commit("c, a force push")
        let refuse = ["--hooks-dir", hooks, "--refuse-force-push"]
        let first = try agent.run("poll", refuse)
        #expect(first.status == 1)
        #expect(first.stderr.contains("refuse-force-push"), "\(first.stderr)")
        let events = try agent.historyEvents(["-n", "100"])
        #expect(events.last?["result"] as? String == "failed")
        #expect(events.last?["sha"] as? String == c)
        let status = try agent.run("status")
        #expect(status.stdout.contains("last:    deploy failed"), "\(status.stdout)")
        let second = try agent.run("poll", refuse)
        #expect(second.status == 0)
        #expect(second.stderr.isEmpty, "\(second.stderr)")
        #expect(try agent.historyEvents(["-n", "100"]).count == events.count)
        #expect(try String(contentsOfFile: failures, encoding: .utf8) == "fetch\n")
        // min-free-space: the machine's fault, recorded once, and deployed once there is room.
        let room = ["--hooks-dir", hooks, "--min-free-space", "999999T"]
        #expect(try agent.run("poll", room).status == 1)
        let quiet = try agent.run("poll", room)
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(try String(contentsOfFile: failures, encoding: .utf8) == "fetch\ncheckout\n")
        #expect(try agent.run("poll", ["--hooks-dir", hooks]).status == 0)
        #expect(agent.currentSHA == c)
    }

    @Test("the health check tries until the timeout itself, not one interval before it")
    func healthUntilTheTimeout() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let port = freePort()
        let ready = scratch.sub("ready")
        let count = scratch.sub("requests")
        // The app answers 503 to the first request and 200 after it. With pauses longer than
        // the timeout, only an attempt at the timeout itself can pass: the old loop gave up
        // after the first. Requests are counted, nothing is timed.
        let app = """
            import http.server, sys
            n = 0
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    global n
                    n += 1
                    open(sys.argv[2], "w").write(str(n))
                    self.send_response(503 if n == 1 else 200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *args):
                    pass
            server = http.server.HTTPServer(("127.0.0.1", \(port)), H)
            open(sys.argv[1], "w").close()
            server.serve_forever()
            """
        let server = try ShellCommand.start(["/usr/bin/env", "python3", "-c", app, ready, count])
        defer {
            kill(server.pid, SIGKILL)
            _ = try? server.wait(timeout: 10)
        }
        #expect(Agent.waitForFile(ready))
        try repo.commit("a")
        let result = try agent.run(
            "deploy",
            [
                "--health-url", "http://127.0.0.1:\(port)/health", "--health-timeout", "6s",
                "--health-interval", "60s",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect((try? String(contentsOfFile: count, encoding: .utf8)) == "2")
    }

    @Test("control characters from a commit are escaped in status and history; JSON keeps them exact")
    func terminalInjection() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let subject = "evil \u{1B}[2J\u{1B}]0;pwned\u{07} end"
        try repo.git("commit", "-q", "--allow-empty", "-m", subject)
        #expect(try agent.run("deploy", ["--build", "printf 'out \\033[31mred\\n'"]).status == 0)
        for command in ["status", "history"] {
            let result = try agent.run(command)
            #expect(result.status == 0)
            #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(command)")
            #expect(result.stdout.contains("evil \\x1b[2J\\x1b]0;pwned\\x07 end"), "\(command): \(result.stdout)")
        }
        let events = try agent.historyEvents()
        #expect(events.last?["subject"] as? String == subject)
        let deploy = try agent.run("deploy", ["--force", "--build", "printf 'out \\033[31mred\\n'"])
        #expect(!deploy.stderr.unicodeScalars.contains { $0.value == 0x1B }, "build output reached stderr raw")
    }

    @Test("out-of-range, malformed and meaningless settings exit 2 naming the setting; nothing is created")
    func settingsAtTheirLimits() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        let cases: [([String], String)] = [
            (["--hook-timeout", "1e17s"], "hook-timeout"), (["--build-timeout", "9999999999h"], "build-timeout"),
            (["--health-timeout", "inf"], "health-timeout"), (["--min-free-space", "99999999999T"], "min-free-space"),
            (["--branch", "main:x"], "branch"), (["--branch", "feat~1"], "branch"), (["--branch", "a/.b"], "branch"),
            (["--pin", "xyz"], "pin"), (["--health-tcp", "localhost"], "health-tcp"),
            (["--health-tcp", ":80"], "health-tcp"), (["--health-tcp", "127.0.0.1:70000"], "health-tcp"),
            (["--health-url", "http://127.0.0.1:{port}/"], "health-url"),
        ]
        for (arguments, setting) in cases {
            for command in ["deploy", "poll", "rollback"] {
                let result = try agent.run(command, arguments)
                #expect(result.status == 2, "\(command) \(arguments): \(result.stderr)")
                #expect(result.stderr.contains(setting), "\(command) \(arguments): \(result.stderr)")
                #expect(!result.stderr.contains("Fatal error"))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: agent.root), "a refused setting created the root")
        // A TOML value names its file and line.
        let config = scratch.sub("release-agent.toml")
        try "branch = \"main\"\n\n[health]\nurl = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let toml = try agent.run("deploy", ["--config", config])
        #expect(toml.status == 2)
        #expect(toml.stderr.contains("\(config):4"), "\(toml.stderr)")
    }

    @Test("a second serve that cannot bind says so, exits 2 and leaves the first one's pid-file")
    func serveBindErrors() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        let pidFile = scratch.sub("serve.pid")
        let serve = try ServeProcess(
            agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0", "--pid-file", pidFile])
        #expect(eventually(timeout: 10) { FileManager.default.fileExists(atPath: pidFile) })
        let second = try agent.run(
            "serve",
            ["--allow-unsigned", "--poll-interval", "0", "--pid-file", pidFile, "--listen", "127.0.0.1:\(serve.port)"],
            timeout: 30)
        #expect(second.status == 2, "\(second.stderr)")
        #expect(second.stderr.contains("listen 127.0.0.1:\(serve.port) is in use"), "\(second.stderr)")
        #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == "\(serve.running.pid)\n")
        let nowhere = try agent.run(
            "serve",
            ["--allow-unsigned", "--pid-file", scratch.sub("missing/dir/serve.pid"), "--listen", "127.0.0.1:0"],
            timeout: 30)
        #expect(nowhere.status == 2)
        #expect(nowhere.stderr.contains("does not exist"), "\(nowhere.stderr)")
        #expect(try serve.stop().status == 0)
        #expect(!FileManager.default.fileExists(atPath: pidFile))
    }
}

@Suite("settings: the root is resolved once")
struct RootResolvedTests {
    @Test("a root reached through a symlink gives builds and hooks one DEPLOY_ROOT, from any directory")
    func rootThroughSymlink() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try FileManager.default.createDirectory(atPath: scratch.sub("real/root"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: scratch.sub("link"), withDestinationPath: scratch.sub("real"))
        try repo.commit("a")
        let agent = try Agent(root: scratch.sub("link/root"), repo: repo.path)
        let seen = scratch.sub("seen")
        let result = try agent.run("deploy", ["--build", "echo \"$DEPLOY_ROOT\" >> \(seen)"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try String(contentsOfFile: seen, encoding: .utf8) == scratch.sub("real/root") + "\n")
    }
}
