import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 16 under `serve`: a shutdown during activation, and a push that meets a CLI deploy.
@Suite("core promise: serve", .serialized)
struct CorePromiseServeTests {
    private func serve(_ agent: Agent, _ extra: [String]) throws -> ServeProcess {
        try ServeProcess(agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0"] + extra)
    }

    @Test("SIGTERM during activate with a shorter grace: the activation finishes, the commit is not quarantined")
    func sigtermDuringActivate() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        let marker = scratch.sub("activating")
        try CorePromiseTests.hook(
            hooks, "activate", "#!/bin/sh\n[ -e SLOW ] || exit 0\ntouch \(marker)\nsleep 3\ntouch \(marker).done\n")
        let a = try repo.commit("a")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        let b = try repo.commit("slow", files: ["SLOW": "1"])
        let serve = try serve(agent, ["--hooks-dir", hooks, "--shutdown-grace", "1s"])
        kill(serve.running.pid, SIGHUP)
        #expect(Agent.waitForFile(marker))
        let result = try serve.stop(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: marker + ".done"), "the activate hook was cut short")
        #expect(agent.currentSHA == b, "\(result.stderr)")
        #expect(agent.recordState(b) == "active")
        #expect(agent.record(b)?["quarantine"] == nil)
        #expect(agent.recordState(a) == "retired")
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/.release-agent/activation.json"))
    }

    @Test("SIGTERM during a failing activate: the revert's activate of the previous release runs to its end")
    func sigtermDuringRevert() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        let marker = scratch.sub("activating")
        let reactivated = scratch.sub("reactivated")
        try CorePromiseTests.hook(
            hooks, "activate",
            """
            #!/bin/sh
            if [ -e SLOW ]; then touch \(marker); sleep 2; exit 1; fi
            [ -e "\(marker)" ] || exit 0
            sleep 2; echo "$RELEASE_SHA" > \(reactivated)

            """)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        let b = try repo.commit("slow", files: ["SLOW": "1"])
        let serve = try serve(agent, ["--hooks-dir", hooks, "--shutdown-grace", "1s"])
        kill(serve.running.pid, SIGHUP)
        #expect(Agent.waitForFile(marker))
        let result = try serve.stop(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == a)
        #expect(
            (try? String(contentsOfFile: reactivated, encoding: .utf8)) == a + "\n",
            "the previous release was not activated again: \(result.stderr)")
        #expect(agent.recordState(b) == "failed")
        #expect(agent.recordState(a) == "active")
    }

    @Test("a push while a CLI deploy holds the lock is deployed once the lock frees")
    func pushDuringCLIDeploy() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let marker = scratch.sub("building")
        let gate = scratch.sub("gate")
        // The slow build holds until the push is in (bounded: 60 s), however slow the machine.
        let hold = "n=0; while [ ! -e \(gate) ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done"
        let build = ["--build", "[ -e SLOW ] || exit 0; touch \(marker); \(hold)"]
        try repo.commit("a")
        #expect(try agent.run("deploy", build).status == 0)
        let slow = try repo.commit("slow", files: ["SLOW": "1"])
        let serve = try serve(agent, build)
        let cli = try agent.start("deploy", build)
        #expect(Agent.waitForFile(marker))
        let c = try repo.commit("c", remove: ["SLOW"])
        let body = try JSONSerialization.data(withJSONObject: ["ref": "refs/heads/main", "after": c])
        let delivery = UUID().uuidString
        let headers = ["X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json"]
        let reply = try TestHTTP.send("POST", serve.base + "/webhook", headers: headers, body: body)
        #expect(reply.status == 202)
        // serve has met the busy lock before the CLI deploy may end.
        #expect(eventually(timeout: 30) { serve.running.stderrSoFar.contains("retrying when it frees") })
        FileManager.default.createFile(atPath: gate, contents: nil)
        let cliResult = try cli.wait(timeout: 60)
        #expect(cliResult.status == 0, "\(cliResult.stderr)")
        #expect(eventually(timeout: 30) { agent.currentSHA == c }, "the push was lost")
        // current moves at the swap; the records follow once the deploy ends.
        #expect(eventually(timeout: 30) { agent.recordState(slow) == "retired" })
        let result = try serve.stop()
        #expect(result.status == 0)
        #expect(result.stderr.contains("retrying when it frees"), "\(result.stderr)")
    }
}
