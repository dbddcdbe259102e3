import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 13, item 1: pause and resume.
@Suite("pause and resume", .serialized)
struct PauseTests {
    @Test("paused: poll is silent and deploys nothing; status says why; deploy still works; resume lets poll deploy")
    func cli() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let pause = try agent.run("pause", ["--reason", "game maintenance"])
        #expect(pause.status == 0, "\(pause.stderr)")
        let b = try repo.commit("b")
        for force in [[], ["--force"]] {
            let poll = try agent.run("poll", force)
            #expect(poll.status == 0 && poll.stderr.isEmpty && poll.stdout.isEmpty, "\(poll.stderr)")
            #expect(agent.currentSHA == a)
        }
        let status = try agent.run("status")
        #expect(status.stdout.contains("paused:  game maintenance, by "), "\(status.stdout)")
        #expect((try agent.statusObject()["paused"] as? [String: Any])?["reason"] as? String == "game maintenance")
        // The operator is in charge: an explicit deploy and rollback still work.
        #expect(try agent.run("deploy").status == 0)
        #expect(agent.currentSHA == b)
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == a)
        let c = try repo.commit("c")
        #expect(try agent.run("poll").status == 0)
        #expect(agent.currentSHA == a)
        let resume = try agent.run("resume")
        #expect(resume.stdout.contains("resumed"), "\(resume.stdout)")
        #expect(try agent.run("poll").status == 0)
        #expect(agent.currentSHA == c)
        #expect(try agent.run("resume").stdout.contains("not paused"))
    }

    @Test(
        "serve: a push while paused is answered 202 ignored and deployed at once on resume; healthz and metrics say paused"
    )
    func serve() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let pidFile = scratch.sub("serve.pid")
        let serve = try ServeProcess(
            agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0", "--pid-file", pidFile])
        #expect(eventually(timeout: 10) { FileManager.default.fileExists(atPath: pidFile) })
        #expect(try agent.run("pause", ["--reason", "window"]).status == 0)
        let b = try repo.commit("b")
        let body = try JSONSerialization.data(withJSONObject: ["ref": "refs/heads/main", "after": b])
        let headers = [
            "X-GitHub-Event": "push", "X-GitHub-Delivery": UUID().uuidString, "Content-Type": "application/json",
        ]
        let reply = try TestHTTP.send("POST", serve.base + "/webhook", headers: headers, body: body)
        #expect(reply.status == 202)
        #expect(reply.body.contains(#""ignored":"paused: window""#), "\(reply.body)")
        let health = try TestHTTP.send("GET", serve.base + "/healthz")
        #expect(health.body.contains(#""paused":true"#), "\(health.body)")
        let metrics = try TestHTTP.send("GET", serve.base + "/metrics")
        #expect(metrics.body.contains("release_agent_paused 1"), "\(metrics.body)")
        usleep(500_000)
        #expect(agent.currentSHA == a, "deployed while paused")
        // A second push while paused: the newest head is what resume deploys.
        let c = try repo.commit("c")
        let again = try TestHTTP.send(
            "POST", serve.base + "/webhook",
            headers: [
                "X-GitHub-Event": "push", "X-GitHub-Delivery": UUID().uuidString, "Content-Type": "application/json",
            ],
            body: body)
        #expect(again.status == 202)
        usleep(300_000)
        #expect(agent.currentSHA == a, "deployed while paused")
        // Without naming the pid-file: serve notices the pause is gone by itself.
        let resume = try agent.run("resume")
        #expect(resume.stdout.contains("resumed"), "\(resume.stdout)")
        #expect(eventually(timeout: 30) { agent.currentSHA == c }, "resume did not deploy the newest head")
        _ = b
        #expect(try serve.stop().status == 0)
    }

    /// Issue 23, item 5: a stale pid-file may name any process; resume signalled it.
    @Test("resume signals only this root's serve: not a process a stale pid-file names, not another root's serve")
    func resumeSignalsOnlyItsServe() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)

        // An unrelated process that notes each signal it gets, and ends on SIGUSR1.
        let log = scratch.sub("signals"), ready = scratch.sub("ready")
        let script =
            "trap 'echo HUP >> \(log)' HUP; trap 'echo USR1 >> \(log); kill $child; exit 0' USR1; "
            + "sleep 600 & child=$!; echo ready > \(ready); while kill -0 $child 2>/dev/null; do wait $child; done"
        let bystander = try ShellCommand.start(["/bin/sh", "-c", script])
        #expect(eventually(timeout: 30) { FileManager.default.fileExists(atPath: ready) })
        let stalePidFile = scratch.sub("stale.pid")
        try "\(bystander.pid)\n".write(toFile: stalePidFile, atomically: true, encoding: .utf8)
        #expect(try agent.run("pause").status == 0)
        let stale = try agent.run("resume", ["--pid-file", stalePidFile])
        #expect(stale.status == 0, "\(stale.stderr)")
        #expect(stale.stdout.contains("resumed; no serve runs for this root"), "\(stale.stdout)")
        #expect(stale.stdout.contains("pid \(bystander.pid), which is not a release-agent serve"), "\(stale.stdout)")
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/.release-agent/paused"))
        #expect(kill(bystander.pid, 0) == 0, "the bystander is gone")
        // Signals are handled in order: had resume sent SIGHUP, HUP would be logged before USR1.
        kill(bystander.pid, SIGUSR1)
        #expect(try bystander.wait(timeout: 30).status == 0)
        #expect((try? String(contentsOfFile: log, encoding: .utf8)) == "USR1\n", "the bystander was signalled")

        // A real serve of this root (no poll, no webhook): only resume's SIGHUP deploys b.
        let pidFile = scratch.sub("serve.pid")
        let serve = try ServeProcess(
            agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0", "--pid-file", pidFile])
        #expect(eventually(timeout: 10) { FileManager.default.fileExists(atPath: pidFile) })
        #expect(try agent.run("pause").status == 0)
        let b = try repo.commit("b")
        // Another root whose pid-file names this serve: not its serve, not signalled.
        let other = try Agent(root: scratch.sub("other-root"), repo: repo.path)
        #expect(try other.run("pause").status == 0)
        let foreign = try other.run("resume", ["--pid-file", pidFile])
        #expect(foreign.stdout.contains("a release-agent serve of another root"), "\(foreign.stdout)")
        #expect(agent.currentSHA == a)
        let resume = try agent.run("resume", ["--pid-file", pidFile])
        #expect(
            resume.stdout.contains("resumed; serve (pid \(serve.running.pid)) deploys the newest head now"),
            "\(resume.stdout)")
        #expect(eventually(timeout: 30) { agent.currentSHA == b }, "resume did not make serve deploy")
        #expect(try serve.stop().status == 0)
        // The serve is gone and its pid-file with it: resume says so.
        #expect(try agent.run("pause").status == 0)
        let gone = try agent.run("resume", ["--pid-file", pidFile])
        #expect(
            gone.stdout.contains("no serve runs for this root (pid-file \(pidFile) does not exist)"), "\(gone.stdout)")
    }
}
