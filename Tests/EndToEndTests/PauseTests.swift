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
}
