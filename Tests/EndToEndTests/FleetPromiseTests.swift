import Foundation
import ReleaseAgentTestSupport
import Testing

/// The fleet keeps its promises under ordinary faults (issue 22): waits obey halts, pauses,
/// shutdowns and the operator; results are never lost; values from etcd fail closed.
@Suite(
    "fleet promises: waits, results, restarts, rollbacks", .serialized,
    .enabled(if: TestTools.runnable("etcd", "etcdctl")))
struct FleetPromiseTests {
    func logText(_ log: String) -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    func hold(_ host: Host) { FileManager.default.createFile(atPath: host.agent.root + "/HOLD", contents: nil) }
    func unhold(_ host: Host) { unlink(host.agent.root + "/HOLD") }

    func etcdctl(_ cluster: EtcdCluster, _ arguments: [String]) throws -> CommandResult {
        let binary = try TestTools.require("etcdctl", package: "etcd-client")
        return try ShellCommand.run(
            [binary, "--endpoints", cluster.members[0].clientURL] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(["ETCDCTL_API": "3"]) { $1 })
    }

    @Test("a halt and a pause reach hosts waiting for a slot; the operator's rollback and status work during a wait")
    func waitsObeyHaltPauseAndOperator() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...3).map {
            try Host(
                "h\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-max-parallel", "1", "--fleet-max-failures", "1", "--hook-timeout", "40s"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }

        // 1. h1 holds the only slot and fails; h2 and h3 wait for it, then see the halt.
        let bad = try repo.commit("bad", files: ["FAIL_ON": "h1\n"])
        hold(hosts[0])
        let first = try hosts[0].deploy()
        #expect(eventually(timeout: 60) { logText(log).contains("start h1 \(bad)") })
        let waiters = try hosts.dropFirst().map { try $0.deploy() }
        #expect(eventually(timeout: 60) { hosts.dropFirst().allSatisfy { $0.phase == "waiting-slot" } })
        // The next cron poll on a root whose run waits in line is busy, exit 0: not a twin (it
        // said "give each host its own host-id", exit 2, found by the adversarial helper).
        let overlap = try hosts[1].agent.run("poll", hosts[1].arguments)
        #expect(overlap.status == 0, "\(overlap.stderr)")
        #expect(!overlap.stderr.contains("own host-id"), "\(overlap.stderr)")
        unhold(hosts[0])
        #expect(try first.wait(timeout: 90).status == 1)
        for (host, waiter) in zip(hosts.dropFirst(), waiters) {
            let result = try waiter.wait(timeout: 90)
            #expect(result.status == 1, "\(host.id): \(result.stderr)")
            #expect(result.stderr.contains("halted fleet-wide"), "\(host.id): \(result.stderr)")
            #expect(!logText(log).contains("start \(host.id) \(bad)"), "\(host.id) activated the halted sha")
            #expect(host.agent.currentSHA == a)
        }

        // 2. A pause while h2 waits: it activates nothing; resume lets it go on.
        let good = try repo.commit("good", remove: ["FAIL_ON"])
        hold(hosts[0])
        let holder = try hosts[0].deploy()
        #expect(eventually(timeout: 60) { logText(log).contains("start h1 \(good)") })
        let waiting = try hosts[1].deploy()
        #expect(eventually(timeout: 60) { hosts[1].phase == "waiting-slot" })
        #expect(try hosts[0].fleet("pause --reason migration").status == 0)
        unhold(hosts[0])
        #expect(try holder.wait(timeout: 90).status == 0)
        let paused = try waiting.wait(timeout: 90)
        #expect(paused.status == 1, "\(paused.stderr)")
        #expect(paused.stderr.contains("the fleet is paused: migration"), "\(paused.stderr)")
        #expect(!logText(log).contains("start h2 \(good)"), "h2 activated during the pause")
        // A cron poll under the pause exits 0; once the release is built it is silent (no
        // mail every minute).
        let building = try hosts[2].agent.run("poll", hosts[2].arguments)
        #expect(building.status == 0, "\(building.stderr)")
        let polled = try hosts[2].agent.run("poll", hosts[2].arguments)
        #expect(polled.status == 0 && polled.stderr.isEmpty, "\(polled.status): \(polled.stderr)")
        #expect(hosts[2].agent.currentSHA == a)
        #expect(try hosts[0].fleet("resume").status == 0)
        for host in hosts.dropFirst() {
            let result = try host.deploy().wait(timeout: 120)
            #expect(result.status == 0, "\(host.id): \(result.stderr)")
            #expect(host.agent.currentSHA == good)
        }

        // 3. The operator on h2 during its wait: status answers, rollback is not refused
        //    (exit 75), and the waited sha is not activated afterwards (nor by the next poll).
        let c = try repo.commit("c")
        hold(hosts[0])
        let busy = try hosts[0].deploy()
        #expect(eventually(timeout: 60) { logText(log).contains("start h1 \(c)") })
        let waiter = try hosts[1].deploy()
        #expect(eventually(timeout: 60) { hosts[1].phase == "waiting-slot" })
        let status = try hosts[1].agent.run("status", hosts[1].arguments, timeout: 30)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("waiting for an activation slot"), "\(status.stdout)")
        let rollback = try hosts[1].agent.run("rollback", hosts[1].arguments, timeout: 60)
        #expect(rollback.status == 0, "\(rollback.status): \(rollback.stderr)")
        #expect(hosts[1].agent.currentSHA == a)
        unhold(hosts[0])
        #expect(try busy.wait(timeout: 90).status == 0)
        let gaveUp = try waiter.wait(timeout: 90)
        #expect(gaveUp.status == 1, "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains("changed while this host waited (a rollback here)"), "\(gaveUp.stderr)")
        #expect(!logText(log).contains("start h2 \(c)"))
        // Its fleet state no longer says it activates c (status, /healthz, /metrics read it).
        #expect(hosts[1].phase == "held", "\(String(describing: hosts[1].phase))")
        #expect(try hosts[1].agent.run("poll", hosts[1].arguments).status == 0)
        #expect(hosts[1].agent.currentSHA == a, "a poll undid the operator's rollback")
        // The slot h2 gave back was no activation: c is not recorded failed on h2, so not
        // halted (fleet-max-failures 1) for the hosts that have still to take it.
        let after = try hosts[0].fleet("status")
        #expect(after.status == 0, "\(after.stdout)")
        #expect(
            after.stdout.contains("rollout \(c.prefix(12)): 1 host(s) done, canaries 0/0 healthy, 0 failed"),
            "\(after.stdout)")
        #expect(!after.stdout.contains("HALTED"), "\(after.stdout)")
        // The operator's rollback is not a failure of c: nothing counted, nothing halted.
        let rollout = try etcdctl(cluster, ["get", "--print-value-only", "/release-agent/shop/rollouts/\(c)"])
        let record = try JSONSerialization.jsonObject(with: Data(rollout.stdout.utf8)) as? [String: Any]
        #expect((record?["failed"] as? [String: Any])?.isEmpty == true, "\(rollout.stdout)")
        #expect(record?["halted"] == nil, "\(rollout.stdout)")
        #expect(try hosts[2].deploy().wait(timeout: 120).status == 0, "a healthy sha was halted")
        #expect(hosts[2].agent.currentSHA == c)
    }

    @Test(
        "a canary killed -9: waiters stop at fleet-canary-timeout (recorded), its restart takes its registration over and writes its result, the rest go on"
    )
    func killedCanary() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try ["k1", "k2"].map {
            try Host(
                $0, scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-canary", "k1", "--fleet-canary-timeout", "4s", "--hook-timeout", "40s"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }

        let s = try repo.commit("s")
        hold(hosts[0])
        let canary = try hosts[0].deploy()
        #expect(eventually(timeout: 60) { logText(log).contains("start k1 \(s)") })
        kill(canary.pid, SIGKILL)
        _ = try? canary.wait(timeout: 10)
        let waiter = try hosts[1].deploy().wait(timeout: 120)
        #expect(waiter.status == 1, "\(waiter.stderr)")
        #expect(waiter.stderr.contains("fleet-canary-timeout"), "\(waiter.stderr)")
        let last = try hosts[1].agent.historyEvents(["-n", "1"]).last
        #expect(last?["stage"] as? String == "fleet", "\(String(describing: last))")
        #expect(hosts[1].agent.record(s)?["quarantine"] == nil, "a fleet failure quarantined the sha")

        // The canary's next run, at once (its old registration is still on its lease).
        unhold(hosts[0])
        let again = try hosts[0].deploy().wait(timeout: 120)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!again.stderr.contains("registered by another live agent"), "\(again.stderr)")
        #expect(again.stderr.contains("wrote the result ok of \(s.prefix(12))"), "\(again.stderr)")
        #expect(hosts[0].agent.currentSHA == s)
        let goes = try hosts[1].deploy().wait(timeout: 120)
        #expect(goes.status == 0, "\(goes.stderr)")
        #expect(hosts[1].agent.currentSHA == s)
    }

    @Test(
        "serve: SIGTERM ends a wait at once; SIGTERM mid-activation keeps the slot, so no second host activates; a restart after kill -9 registers"
    )
    func serveShutdowns() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...3).map {
            try Host(
                "v\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--hook-timeout", "40s", "--shutdown-grace", "40s"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        func serve(_ host: Host) throws -> ServeProcess {
            try host.serve(pollInterval: "1s")
        }
        var serves = try hosts.map(serve)
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == a } })

        // Every host holds in its activate hook: the first to get the slot stays in it.
        hosts.forEach(hold)
        let b = try repo.commit("b")
        #expect(eventually(timeout: 90) { activationsStarted(log, b).count == 1 })
        #expect(eventually(timeout: 60) { hosts.filter { $0.phase == "waiting-slot" }.count == 2 })
        guard let first = activationsStarted(log, b).first, let index = hosts.firstIndex(where: { $0.id == first })
        else { return }
        // SIGTERM to a waiting serve: it gives up the wait and exits, well within its grace.
        let waitingIndex = hosts.indices.first { $0 != index && hosts[$0].phase == "waiting-slot" }!
        let stopped = try serves[waitingIndex].stop(timeout: 30)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        // SIGTERM to the serve mid-activation: it finishes; its slot stays held meanwhile,
        // longer than the lease TTL (3s) that used to free it.
        kill(serves[index].running.pid, SIGTERM)
        sleep(5)
        #expect(activationsStarted(log, b) == [first], "another host activated while \(first) still did")
        unhold(hosts[index])
        #expect(try serves[index].running.wait(timeout: 60).status == 0)
        #expect(hosts[index].agent.currentSHA == b)
        hosts.forEach(unhold)
        serves[index] = try serve(hosts[index])
        serves[waitingIndex] = try serve(hosts[waitingIndex])
        #expect(eventually(timeout: 120) { hosts.allSatisfy { $0.agent.currentSHA == b } })
        #expect(eventually(timeout: 30) { activations(log).filter { $0.sha == b }.count == 3 })
        #expect(peak(activations(log).filter { $0.sha == b }) == 1)

        // kill -9 and an immediate restart (a systemd restart loop): it registers again.
        kill(serves[0].running.pid, SIGKILL)
        _ = try? serves[0].running.wait(timeout: 10)
        serves[0] = try serve(hosts[0])
        let listed = try hosts[1].fleet("status")
        #expect(listed.stdout.contains("3 live host(s)"), "\(listed.stdout)")
        for serve in serves { #expect(try serve.stop().status == 0) }
    }

    @Test(
        "a host whose path to etcd stalls after its swap keeps its slot (no second host activates), and its result lands when the path returns"
    )
    func stalledPath() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let proxies = try cluster.members.map { try StallingProxy(upstream: $0.clientPort) }
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let cut = try Host(
            "x1", scratch: scratch, repo: repo, etcd: proxies.map(\.url).joined(separator: ","), log: log,
            extra: ["--hook-timeout", "40s"])
        let other = try Host(
            "x2", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: ["--hook-timeout", "40s"])
        let hosts = [cut, other]
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }

        let b = try repo.commit("b")
        hold(cut)
        let activating = try cut.deploy()
        #expect(eventually(timeout: 60) { logText(log).contains("start x1 \(b)") })
        let waiting = try other.deploy()
        #expect(eventually(timeout: 60) { other.phase == "waiting-slot" })
        // x1's path stalls for longer than its registration lease (3s): its slot stays held.
        proxies.forEach { $0.stall() }
        sleep(5)
        #expect(!logText(log).contains("start x2 \(b)"), "x2 activated while x1 still did")
        // x1 ends its activation while still cut off: the result waits, then lands.
        unhold(cut)
        sleep(3)
        #expect(!logText(log).contains("start x2 \(b)"), "x2 activated before x1's result and slot were written")
        proxies.forEach { $0.resume() }
        let first = try activating.wait(timeout: 120)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try waiting.wait(timeout: 120)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(hosts.allSatisfy { $0.agent.currentSHA == b })
        #expect(peak(activations(log).filter { $0.sha == b }) == 1, "\(activations(log))")
        let status = try other.fleet("status")
        #expect(status.stdout.contains("rollout \(b.prefix(12)): 2 host(s) done"), "\(status.stdout)")
    }
}
