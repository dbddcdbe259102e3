import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("poll, the cron mode")
struct PollTests {
    @Test("a no-op poll is silent; a new commit is deployed")
    func silentThenDeploy() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        let first = try agent.run("poll")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == a)
        let idle = try agent.run("poll")
        #expect(idle.status == 0)
        #expect(idle.stdout.isEmpty && idle.stderr.isEmpty, "stdout: \(idle.stdout) stderr: \(idle.stderr)")
        let b = try repo.commit("b")
        let next = try agent.run("poll")
        #expect(next.status == 0, "\(next.stderr)")
        #expect(agent.currentSHA == b)
        let events = try agent.historyEvents()
        #expect(events.compactMap { $0["trigger"] as? String } == ["poll", "poll"])
    }

    @Test("a failed sha is quarantined: not rebuilt by poll until --force or a newer commit; a rollback holds")
    func quarantineHolds() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let counter = scratch.sub("builds")
        let build = ["--build", "echo $RELEASE_SHA >> \(counter); test ! -e BROKEN"]
        let good = try repo.commit("good")
        #expect(try agent.run("poll", build).status == 0)
        let bad = try repo.commit("bad", files: ["BROKEN": "1"])
        let failed = try agent.run("poll", build)
        #expect(failed.status == 1)
        #expect(agent.currentSHA == good)
        for _ in 0..<3 {
            let again = try agent.run("poll", build)
            #expect(again.status == 0)
            #expect(again.stdout.isEmpty && again.stderr.isEmpty)
        }
        let builds = { (try? String(contentsOfFile: counter, encoding: .utf8)) ?? "" }
        #expect(builds().components(separatedBy: bad).count - 1 == 1, "the failed sha was rebuilt")
        let forced = try agent.run("poll", build + ["--force"])
        #expect(forced.status == 1)
        #expect(builds().components(separatedBy: bad).count - 1 == 2)

        let fixed = try repo.commit("fixed", remove: ["BROKEN"])
        #expect(try agent.run("poll", build).status == 0)
        #expect(agent.currentSHA == fixed)

        // After a rollback the branch head is still `fixed`: poll must not undo the rollback.
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == good)
        let after = try agent.run("poll", build)
        #expect(after.status == 0 && after.stderr.isEmpty)
        #expect(agent.currentSHA == good)
    }

    @Test("five concurrent polls all exit 0 and build once")
    func concurrentPolls() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let counter = scratch.sub("builds")
        let sha = try repo.commit("slow")
        let polls = try (0..<5).map { _ in
            try agent.start("poll", ["--build", "echo x >> \(counter); sleep 1"])
        }
        let results = try polls.map { try $0.wait(timeout: 120) }
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "x\n")
        #expect(agent.currentSHA == sha)
    }

    @Test("a non-fast-forward move is deployed and recorded; refuse-force-push refuses it")
    func forcePush() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("base")
        let one = try repo.commit("one", files: ["v": "1"])
        #expect(try agent.run("poll").status == 0)
        #expect(agent.currentSHA == one)
        try repo.git("reset", "-q", "--hard", "HEAD~1")
        let rewritten = try repo.commit("rewritten", files: ["v": "rewritten"])
        let refused = try agent.run("poll", ["--refuse-force-push"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refuse-force-push"))
        #expect(agent.currentSHA == one)
        let moved = try agent.run("poll")
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stderr.contains("non-fast-forward"))
        #expect(agent.currentSHA == rewritten)
        let events = try agent.historyEvents(["-n", "1"])
        #expect(events.first?["nonFastForward"] as? Bool == true)
    }

    @Test("an unreachable remote and a missing branch are one clear line each, and change nothing")
    func remoteErrors() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("a")
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let missing = try agent.run("poll", ["--branch", "nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("Error: branch 'nope' does not exist"))
        let unreachable = try Agent(root: scratch.sub("root"), repo: "http://127.0.0.1:9/nothing.git")
        let result = try unreachable.run("deploy")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("Error: cannot fetch from http://127.0.0.1:9/nothing.git"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        // A network remote's poll is asked over git by release-agent-full, after the hand-off.
        let polled = try unreachable.run("poll")
        #expect(polled.status == 1)
        #expect(polled.stderr.hasPrefix("Error: cannot fetch from http://127.0.0.1:9/nothing.git"), "\(polled.stderr)")
        #expect(polled.stderr.split(separator: "\n").count == 1)
        #expect(agent.currentSHA == nil)
    }
}

@Suite("remote credentials")
struct CredentialTests {
    @Test("an https remote that refuses the token is one clear line naming token-file")
    func authFailure() throws {
        let scratch = Scratch()
        let port = freePort()
        let server = """
            import http.server
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", \(port)), H).serve_forever()
            """
        let running = try ShellCommand.start(["/usr/bin/env", "python3", "-c", server])
        defer {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 10)
        }
        #expect(eventually(timeout: 20) { portAcceptsConnections(port) })
        try "not-a-valid-token\n".write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        let agent = try Agent(root: scratch.sub("root"), repo: "http://127.0.0.1:\(port)/app.git")
        let result = try agent.run("deploy", ["--token-file", scratch.sub("token")])
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix("Error: authentication to http://127.0.0.1:\(port)/app.git failed"),
            "\(result.stderr)")
        #expect(result.stderr.contains("token-file"))
        let without = try agent.run("deploy")
        #expect(without.status == 1)
        #expect(without.stderr.contains("set ssh-key (ssh) or token-file (https)"), "\(without.stderr)")
        #expect(agent.currentSHA == nil)
    }
}
