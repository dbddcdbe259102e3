import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("health checks and strategies")
struct StrategyTests {
    @Test("restart: an unhealthy release is swapped back; the old one serves again; exit 1, marked failed")
    func restartRollsBackUnhealthy() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        defer { DemoService.stopAll(root: agent.root) }
        let port = freePort()
        try DemoService.writeHooks(into: scratch.sub("hooks"), restartPort: port)
        agent.environment["RELEASE_AGENT_HOOKS_DIR"] = scratch.sub("hooks")
        agent.environment["RELEASE_AGENT_HEALTH_URL"] = "http://127.0.0.1:\(port)/health"
        agent.environment["RELEASE_AGENT_HEALTH_TIMEOUT"] = "10s"
        agent.environment["RELEASE_AGENT_HEALTH_INTERVAL"] = "100ms"

        let good = try repo.commit("good", files: ["app.py": DemoService.app])
        let first = try agent.run("deploy")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("healthy"))
        #expect(DemoService.get(port: port)?.body == "ok \(good)")

        let bad = try repo.commit("bad", files: ["UNHEALTHY": "yes"])
        let second = try agent.run("deploy", ["--health-timeout", "2s"])
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("failed at health"))
        #expect(second.stderr.contains("HTTP 503"))
        #expect(second.stderr.contains("automatic"))
        #expect(agent.currentSHA == good)
        #expect(agent.recordState(bad) == "failed")
        let served = DemoService.get(port: port, path: "/health")
        #expect(served?.status == 200)
        #expect(served?.body == "ok \(good)")
        let status = try agent.run("status")
        #expect(status.stdout.contains("quarantined: health failed"))
    }

    @Test("the health timeout is honoured, and the give-up line says why and how many attempts")
    func healthTimeoutHonoured() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("one")
        #expect(try agent.run("deploy").status == 0)
        try repo.commit("two")
        let port = freePort()
        let started = Date()
        let result = try agent.run(
            "deploy", ["--health-tcp", "127.0.0.1:\(port)", "--health-timeout", "1s", "--health-interval", "100ms"],
            timeout: 60)
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 1)
        #expect(result.stderr.contains("not healthy after"))
        #expect(result.stderr.contains("attempts"))
        #expect(result.stderr.contains("Connection refused"))
        // Bounded by the 1 s timeout, far below the 30 s default.
        #expect(elapsed < 20)
        #expect(agent.currentSHA == good)
    }

    @Test("blue-green: a failing candidate never gets traffic; a good one takes over and the old slot stops")
    func blueGreenFailingCandidate() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        defer { DemoService.stopAll(root: agent.root) }
        let (blue, green) = (freePort(), freePort())
        try DemoService.writeHooks(into: scratch.sub("hooks"), restartPort: nil)
        agent.environment["RELEASE_AGENT_HOOKS_DIR"] = scratch.sub("hooks")
        agent.environment["RELEASE_AGENT_STRATEGY"] = "blue-green"
        agent.environment["RELEASE_AGENT_SLOTS"] = "\(blue),\(green)"
        agent.environment["RELEASE_AGENT_HEALTH_URL"] = "http://127.0.0.1:{port}/health"
        agent.environment["RELEASE_AGENT_HEALTH_TIMEOUT"] = "10s"
        agent.environment["RELEASE_AGENT_HEALTH_INTERVAL"] = "100ms"
        let upstream = agent.root + "/upstream"

        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        let first = try agent.run("deploy")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try String(contentsOfFile: upstream, encoding: .utf8) == "\(blue)\n")
        #expect(DemoService.get(port: blue)?.body == "ok \(a)")

        let bad = try repo.commit("bad", files: ["UNHEALTHY": "yes"])
        let failed = try agent.run("deploy", ["--health-timeout", "2s"])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("candidate on port \(green) is unhealthy"))
        #expect(agent.currentSHA == a)
        #expect(agent.recordState(bad) == "failed")
        #expect(try String(contentsOfFile: upstream, encoding: .utf8) == "\(blue)\n")
        #expect(DemoService.get(port: blue)?.body == "ok \(a)")
        #expect(DemoService.get(port: green)?.status == 0, "the failed candidate must be stopped")

        let c = try repo.commit(
            "c", files: ["UNHEALTHY": nil as String?].compactMapValues { $0 }, remove: ["UNHEALTHY"])
        let good = try agent.run("deploy")
        #expect(good.status == 0, "\(good.stderr)")
        #expect(agent.currentSHA == c)
        #expect(try String(contentsOfFile: upstream, encoding: .utf8) == "\(green)\n")
        #expect(DemoService.get(port: green)?.body == "ok \(c)")
        #expect(DemoService.get(port: blue)?.status == 0, "the old slot must be stopped")

        // Rollback takes the same path: the previous release starts on the idle slot.
        let back = try agent.run("rollback")
        #expect(back.status == 0, "\(back.stderr)")
        #expect(agent.currentSHA == a)
        #expect(try String(contentsOfFile: upstream, encoding: .utf8) == "\(blue)\n")
        #expect(DemoService.get(port: blue)?.body == "ok \(a)")
    }
}
