import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("canary analysis against a real Prometheus", .serialized)
struct AnalysisTests {
    @Test(
        "a good release passes; one healthy on /health but failing half its requests is rolled back by the analysis alone; serve shows the measurements",
        .enabled(if: TestTools.inCI || TestTools.runnable("prometheus")))
    func passAndFail() throws {
        let bench = try AnalysisBench()
        let good = try bench.commit("v1")
        let first = try bench.agent.run("deploy")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("PASSED: 3 of 3 measurements within bounds"), "\(first.stderr)")
        let passed = try bench.lastEvent()
        let analysis = passed["analysis"] as? [String: Any]
        #expect(analysis?["outcome"] as? String == "passed", "\(passed)")
        let measured = (analysis?["measurements"] as? [[String: Any]]) ?? []
        #expect(measured.filter { $0["result"] as? String == "passed" }.count == 3, "\(measured)")

        let bad = try bench.commit("v2", errors: true)
        let second = try bench.agent.run("deploy")
        #expect(second.status == 1, "\(second.stderr)")
        // The health check passed: only the analysis saw the errors.
        #expect(second.stderr.contains("healthy"), "\(second.stderr)")
        #expect(second.stderr.contains("failed at analysis"), "\(second.stderr)")
        #expect(second.stderr.contains("analysis errors = 0."), "\(second.stderr)")
        #expect(second.stderr.contains(": failed (bound <= 0.1)"), "\(second.stderr)")
        #expect(bench.agent.currentSHA == good)
        #expect(bench.agent.recordState(bad) == "failed")
        #expect(DemoService.get(port: bench.appPort, path: "/health")?.body.contains(good) == true)
        #expect(bench.onFailureLog.hasPrefix("analysis \(bad) "), "\(bench.onFailureLog)")
        let failed = try bench.lastEvent()
        #expect(failed["result"] as? String == "failed")
        #expect(failed["stage"] as? String == "analysis")
        #expect((failed["analysis"] as? [String: Any])?["outcome"] as? String == "failed", "\(failed)")
        let status = try bench.agent.run("status")
        #expect(status.stdout.contains("quarantined: analysis failed"), "\(status.stdout)")
        #expect(status.stdout.contains("analysis: failed for \(bad.prefix(12))"), "\(status.stdout)")
        // A poll does not take the quarantined sha again.
        let poll = try bench.agent.run("poll")
        #expect(poll.status == 0 && bench.agent.currentSHA == good, "\(poll.stderr)")

        let serve = try ServeProcess(agent: bench.agent, arguments: ["--allow-unsigned", "--poll-interval", "0"])
        let metrics = try TestHTTP.send("GET", serve.base + "/metrics").body
        #expect(
            metrics.contains(#"release_agent_analysis_measurements_total{check="errors",result="passed"} 3"#),
            "\(metrics)")
        #expect(
            metrics.contains(#"release_agent_analysis_measurements_total{check="errors",result="failed"} 1"#),
            "\(metrics)")
        let health = try TestHTTP.send("GET", serve.base + "/healthz").body
        #expect(health.contains(#""outcome":"failed""#), "\(health)")
        _ = try serve.stop()
    }

    @Test(
        "Prometheus stopped: inconclusive, the release stays live and active, exit 1, on-failure at analysis; SIGTERM ends an analysis the same way",
        .enabled(if: TestTools.inCI || TestTools.runnable("prometheus")))
    func inconclusive() throws {
        let bench = try AnalysisBench(prometheus: false)
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_INITIAL_DELAY"] = "0s"
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_INTERVAL"] = "200ms"
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_ERROR_LIMIT"] = "2"
        let first = try bench.commit("v1")
        let deployed = try bench.agent.run("deploy")
        #expect(deployed.status == 1, "\(deployed.stderr)")
        #expect(deployed.stderr.contains("is live, but its canary analysis was inconclusive"), "\(deployed.stderr)")
        #expect(deployed.stderr.contains("cannot reach http://127.0.0.1:\(bench.prometheusPort)"), "\(deployed.stderr)")
        #expect(bench.agent.currentSHA == first)
        #expect(bench.agent.recordState(first) == "active")
        #expect(bench.onFailureLog.hasPrefix("analysis \(first) "), "\(bench.onFailureLog)")
        let event = try bench.lastEvent()
        #expect(event["result"] as? String == "inconclusive", "\(event)")
        #expect(try bench.agent.run("status").stdout.contains("last:    deploy inconclusive"))

        // SIGTERM while the analysis waits: it ends, inconclusive, the release live.
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_INITIAL_DELAY"] = "10m"
        let second = try bench.commit("v2")
        let running = try bench.agent.start("deploy")
        #expect(eventually(timeout: 120) { running.stderrSoFar.contains("analysis 1 check") }, "\(running.stderrSoFar)")
        kill(running.pid, SIGTERM)
        let ended = try running.wait(timeout: 60)
        #expect(ended.status == 1, "\(ended.stderr)")
        #expect(ended.stderr.contains("cut by shutdown"), "\(ended.stderr)")
        #expect(bench.agent.currentSHA == second)
        #expect(bench.agent.recordState(second) == "active")

        // kill -9 during the analysis: live but not judged. The next operation ends it
        // inconclusive (never "ok"), without running it again.
        let third = try bench.commit("v3")
        let killed = try bench.agent.start("deploy")
        #expect(eventually(timeout: 120) { killed.stderrSoFar.contains("analysis 1 check") }, "\(killed.stderrSoFar)")
        kill(killed.pid, SIGKILL)
        _ = try killed.wait(timeout: 30)
        #expect(try bench.agent.run("status").stdout.contains("analysis: interrupted for \(third.prefix(12))"))
        let next = try bench.agent.run("deploy")
        #expect(next.stderr.contains("was not judged: inconclusive"), "\(next.stderr)")
        #expect(bench.agent.currentSHA == third)
        let recovered = try bench.agent.historyEvents(["-n", "3"]).filter { $0["sha"] as? String == third }
        #expect(recovered.map { $0["result"] as? String } == ["inconclusive"], "\(recovered)")
        #expect(bench.onFailureLog.contains("analysis \(third) "), "\(bench.onFailureLog)")

        // kill -9 after the swap and before the analysis began (in the activate hook): the
        // same, never "ok".
        let hook = bench.scratch.sub("hooks/activate")
        let original = try String(contentsOfFile: hook, encoding: .utf8)
        try "#!/bin/sh\ntouch \"$DEPLOY_ROOT/in-activate\"\nsleep 60\n".write(
            toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let early = try bench.commit("v3b")
        let swapping = try bench.agent.start("deploy")
        #expect(eventually(timeout: 120) { FileManager.default.fileExists(atPath: bench.agent.root + "/in-activate") })
        kill(swapping.pid, SIGKILL)
        _ = try swapping.wait(timeout: 30)
        try original.write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let finished = try bench.agent.run("deploy")
        #expect(finished.stderr.contains("was not judged: inconclusive"), "\(finished.stderr)")
        #expect(bench.agent.currentSHA == early)
        let unjudged = try bench.agent.historyEvents(["-n", "3"]).filter { $0["sha"] as? String == early }
        #expect(unjudged.map { $0["result"] as? String } == ["inconclusive"], "\(unjudged)")
        #expect(try bench.agent.run("status").stdout.contains("analysis: inconclusive for \(early.prefix(12))"))

        // SIGTERM while a query hangs (a socket that never answers): cut at once, the query
        // is not waited out and not counted as Prometheus's error.
        let silent = try TCPListener()
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_PROMETHEUS"] = "http://127.0.0.1:\(silent.port)"
        bench.agent.environment["RELEASE_AGENT_ANALYSIS_INITIAL_DELAY"] = "0s"
        try bench.commit("v4")
        let hanging = try bench.agent.start("deploy")
        #expect(eventually(timeout: 120) { hanging.stderrSoFar.contains("analysis 1 check") }, "\(hanging.stderrSoFar)")
        usleep(300_000)
        kill(hanging.pid, SIGTERM)
        let cut = try hanging.wait(timeout: 60)
        #expect(cut.status == 1 && cut.stderr.contains("cut by shutdown"), "\(cut.stderr)")
        #expect(!cut.stderr.contains("timed out"), "\(cut.stderr)")
    }

    @Test(
        "deploy --dry-run asks each query once: a value, several series, NaN, an empty vector and a refused query, each as the SPEC classifies it",
        .enabled(if: TestTools.inCI || TestTools.runnable("prometheus")))
    func dryRunClassifies() throws {
        let bench = try AnalysisBench()
        let live = try bench.commit("v1")
        var plain = bench.agent
        plain.environment = plain.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_ANALYSIS") }
        #expect(try plain.run("deploy").status == 0)
        try bench.commit("v2")
        bench.agent.environment["RELEASE_AGENT_ANALYSIS"] = [
            #"one: sum(demo_http_requests_total{sha="{sha}"}) >= 1"#,
            "several: demo_http_requests_total >= 0",
            "nan: vector(0) / vector(0) <= 1",
            #"empty: demo_http_requests_total{sha="none"} <= 1"#,
            "refused: sum( <= 1",
        ].joined(separator: "\n")
        #expect(
            eventually(timeout: 60) {
                (try? bench.agent.run("deploy", ["--dry-run"]).stdout.contains("one = ")) == true
            })
        let plan = try bench.agent.run("deploy", ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let text = plan.stdout
        #expect(text.contains("dry-run  analysis one = "), "\(text)")
        #expect(text.contains(": passed (bound >= 1) for the live \(live.prefix(12))"), "\(text)")
        #expect(text.contains("dry-run  analysis several: error (2 series; the query must select one"), "\(text)")
        #expect(text.contains("dry-run  analysis nan: no data (NaN)"), "\(text)")
        #expect(text.contains("dry-run  analysis empty: no data (empty vector"), "\(text)")
        #expect(text.contains("dry-run  analysis refused: error (Prometheus answered bad_data"), "\(text)")
        #expect(bench.agent.currentSHA == live)
    }

    @Test(
        "fleet: a canary failing its analysis halts the sha before any other host takes it; an inconclusive one pauses the fleet, and fleet resume goes on",
        .enabled(if: TestTools.inCI || (TestTools.runnable("prometheus") && TestTools.runnable("etcd"))))
    func fleet() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let prometheusPort = freePort()
        let prometheus = try AnalysisBench.prometheus(scratch: scratch, port: prometheusPort, scraping: [])
        defer { prometheus.stop() }
        var hosts = try (1...3).map {
            try Host(
                "a\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-canary", "a1"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        func deployAll() throws -> [CommandResult] {
            try hosts.map { try $0.deploy() }.map { try $0.wait(timeout: 180) }
        }
        func analyse(_ base: String, _ check: String) {
            for index in hosts.indices {
                hosts[index].agent.environment.merge([
                    "RELEASE_AGENT_ANALYSIS_PROMETHEUS": base, "RELEASE_AGENT_ANALYSIS": check,
                    "RELEASE_AGENT_ANALYSIS_INITIAL_DELAY": "0s", "RELEASE_AGENT_ANALYSIS_INTERVAL": "200ms",
                    "RELEASE_AGENT_ANALYSIS_COUNT": "2", "RELEASE_AGENT_ANALYSIS_ERROR_LIMIT": "2",
                ]) { $1 }
            }
        }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for (host, result) in zip(hosts, try deployAll()) {
            #expect(result.status == 0, "\(host.id): \(result.stderr)")
        }

        // Out of bounds on the canary: rolled back there, halted; nobody else activates b.
        analyse("http://127.0.0.1:\(prometheusPort)", "sick: vector(1) <= 0")
        let b = try repo.commit("b")
        let second = try deployAll()
        #expect(second[0].stderr.contains("failed at analysis"), "\(second[0].stderr)")
        for (host, result) in zip(hosts, second).dropFirst() {
            #expect(result.status == 1 && result.stderr.contains("halted fleet-wide"), "\(host.id): \(result.stderr)")
        }
        #expect(Set(activations(log).filter { $0.sha == b }.map(\.host)) == ["a1"])
        for host in hosts { #expect(host.agent.currentSHA == a, "\(host.id)") }
        let halted = try hosts[1].fleet("status")
        #expect(halted.status == 1 && halted.stdout.contains("HALTED"), "\(halted.stdout)")

        // Prometheus unreachable for the canary: inconclusive, c live there, the fleet paused.
        analyse("http://127.0.0.1:\(freePort())", "fine: vector(0) <= 1")
        let c = try repo.commit("c")
        let third = try deployAll()
        #expect(third[0].status == 1 && third[0].stderr.contains("inconclusive"), "\(third[0].stderr)")
        #expect(hosts[0].agent.currentSHA == c)
        for host in hosts.dropFirst() { #expect(host.agent.currentSHA == a, "\(host.id)") }
        let paused = try hosts[1].fleet("status")
        #expect(paused.stdout.contains("PAUSED") && paused.stdout.contains("inconclusive"), "\(paused.stdout)")
        #expect(Set(activations(log).filter { $0.sha == c }.map(\.host)) == ["a1"])
        // The operator looked: fleet resume, and the others take c on the canary's word.
        #expect(try hosts[1].fleet("resume").status == 0)
        let rest = try hosts.dropFirst().map { try $0.deploy() }.map { try $0.wait(timeout: 180) }
        for result in rest { #expect(result.status == 0, "\(result.stderr)") }
        for host in hosts { #expect(host.agent.currentSHA == c, "\(host.id)") }

        // The canary killed -9 during its analysis: its next run ends it inconclusive and
        // pauses the fleet; nobody else takes d unjudged.
        analyse("http://127.0.0.1:\(prometheusPort)", "fine: vector(0) <= 1")
        hosts[0].agent.environment["RELEASE_AGENT_ANALYSIS_INITIAL_DELAY"] = "10m"
        let d = try repo.commit("d")
        let canary = try hosts[0].deploy()
        #expect(eventually(timeout: 120) { canary.stderrSoFar.contains("analysis 1 check") }, "\(canary.stderrSoFar)")
        kill(canary.pid, SIGKILL)
        _ = try canary.wait(timeout: 30)
        let recovered = try hosts[0].agent.run("deploy", hosts[0].arguments, timeout: 120)
        #expect(recovered.stderr.contains("was not judged: inconclusive"), "\(recovered.stderr)")
        let pausedAgain = try hosts[1].fleet("status")
        #expect(
            pausedAgain.stdout.contains("PAUSED") && pausedAgain.stdout.contains("not judged"), "\(pausedAgain.stdout)")
        let waited = try hosts[1].deploy().wait(timeout: 120)
        #expect(waited.status == 1, "\(waited.stderr)")
        #expect(hosts[1].agent.currentSHA == c && hosts[0].agent.currentSHA == d)
    }
}
