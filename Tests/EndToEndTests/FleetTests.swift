import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("fleet: 5 agents, one branch, a real 3-member etcd", .serialized, .enabled(if: TestTools.runnable("etcd")))
struct FleetTests {
    @Test(
        "a push reaches all; at most fleet-max-parallel activate at once; the canary first; a bad commit halts at the canary"
    )
    func rollout() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...5).map {
            try Host(
                "h\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-max-parallel", "2", "--fleet-canary", "1"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        func deployAll() throws -> [CommandResult] {
            try hosts.map { try $0.deploy() }.map { try $0.wait(timeout: 120) }
        }

        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        let first = try deployAll()
        for (host, result) in zip(hosts, first) { #expect(result.status == 0, "\(host.id): \(result.stderr)") }
        for host in hosts {
            #expect(host.agent.currentSHA == a)
            #expect(DemoService.get(port: host.port)?.body == "ok \(a)")
        }
        let rollout = activations(log).filter { $0.sha == a }.sorted { $0.start < $1.start }
        #expect(rollout.count == 5, "\(rollout)")
        #expect(peak(rollout) <= 2, "more than 2 hosts activated at once: \(rollout)")
        print("fleet rollout of 5 hosts, max-parallel 2, 1 canary: at most \(peak(rollout)) activating at once")
        // The canary's activation ended before any other began.
        if let canary = rollout.first {
            #expect(rollout.dropFirst().allSatisfy { $0.start > canary.end }, "\(rollout)")
        }
        let status = try hosts[0].fleet("status")
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("rollout \(a.prefix(12)): 5 host(s) done"), "\(status.stdout)")
        // The deploy runs have ended: their registrations go with them (at most one lease TTL).
        var named = ""
        #expect(
            eventually(timeout: 30) {
                named = (try? hosts[0].fleet("status").stdout) ?? ""
                return named.contains("no longer registered: h1, h2, h3, h4, h5")
            }, "\(named)")

        // An unhealthy commit: tried by the canary only, halted; the others never activate it.
        let bad = try repo.commit("sick", files: ["UNHEALTHY": "1"])
        let second = try deployAll()
        #expect(second.allSatisfy { $0.status == 1 }, "\(second.map(\.status))")
        let tried = Set(activations(log).filter { $0.sha == bad }.map(\.host))
        #expect(tried.count == 1, "hosts that activated the bad commit: \(tried)")
        for host in hosts { #expect(host.agent.currentSHA == a) }
        let halted = try hosts[1].fleet("status")
        #expect(halted.status == 1)
        #expect(halted.stdout.contains("HALTED"), "\(halted.stdout)")
        let others = zip(hosts, second).filter { !tried.contains($0.0.id) }
        for (host, result) in others {
            #expect(result.stderr.contains("halted fleet-wide"), "\(host.id): \(result.stderr)")
        }

        // The next good commit reaches every host.
        let c = try repo.commit("c", remove: ["UNHEALTHY"])
        let third = try deployAll()
        for (host, result) in zip(hosts, third) { #expect(result.status == 0, "\(host.id): \(result.stderr)") }
        for host in hosts { #expect(host.agent.currentSHA == c) }
        #expect(peak(activations(log).filter { $0.sha == c }) <= 2)
    }

    @Test(
        "kill -9 mid-activation frees the slot at lease expiry; one etcd member down changes nothing; all down holds; a second agent with one host-id exits 2"
    )
    func faults() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...5).map {
            try Host("f\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        // f1 hangs in its activate hook holding the only slot; killed -9, its lease expires.
        try FileManager.default.createDirectory(atPath: hosts[0].agent.root, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: hosts[0].agent.root + "/SLOW", contents: nil)
        let stuck = try hosts[0].deploy()
        #expect(
            eventually(timeout: 60) {
                activations(log).isEmpty
                    && ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("start f1")
            })
        // Same host-id while f1 lives: exit 2, one line.
        let twin = try Host(
            "f1", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [], root: "f1-twin")
        let duplicate = try twin.deploy().wait(timeout: 60)
        #expect(duplicate.status == 2, "\(duplicate.stderr)")
        #expect(duplicate.stderr.contains("host-id 'f1' is registered by another live agent"), "\(duplicate.stderr)")
        let others = try hosts.dropFirst().map { try $0.deploy() }
        usleep(500_000)
        kill(stuck.pid, SIGKILL)
        _ = try? stuck.wait(timeout: 10)
        for (host, running) in zip(hosts.dropFirst(), others) {
            let result = try running.wait(timeout: 120)
            #expect(result.status == 0, "\(host.id): \(result.stderr)")
            #expect(host.agent.currentSHA == a)
        }

        // One member down: the next rollout goes as before.
        cluster.stop(0)
        let b = try repo.commit("b")
        for host in hosts.dropFirst() {
            let result = try host.deploy().wait(timeout: 120)
            #expect(result.status == 0, "\(host.id): \(result.stderr)")
            #expect(host.agent.currentSHA == b)
        }
        // All down: nothing activates, the apps keep serving; back up: the deploy goes on.
        cluster.stopAll()
        let c = try repo.commit("c")
        let held = try hosts[1].deploy().wait(timeout: 120)
        #expect(held.status == 1)
        #expect(held.stderr.contains("etcd is unreachable"), "\(held.stderr)")
        #expect(held.stderr.contains("fleet-offline hold"), "\(held.stderr)")
        #expect(hosts[1].agent.currentSHA == b)
        #expect(DemoService.get(port: hosts[1].port)?.body == "ok \(b)")
        // fleet-offline alone on another host: it activates uncoordinated, and status says
        // so, not the hold an earlier run left in fleet.json.
        let heldBefore = try hosts[2].deploy().wait(timeout: 120)
        #expect(heldBefore.status == 1, "\(heldBefore.stderr)")
        let alone = try hosts[2].agent.run("deploy", hosts[2].arguments + ["--fleet-offline", "alone"])
        #expect(alone.status == 0, "\(alone.stderr)")
        #expect((alone.stdout + alone.stderr).contains("activating uncoordinated"), "\(alone.stderr)")
        #expect(hosts[2].agent.currentSHA == c)
        let aloneStatus = try hosts[2].agent.run("status")
        #expect(aloneStatus.stdout.contains("activated uncoordinated"), "\(aloneStatus.stdout)")
        #expect(!aloneStatus.stdout.contains("fleet-offline hold"), "\(aloneStatus.stdout)")
        for index in cluster.members.indices { try cluster.start(index) }
        #expect(cluster.waitHealthy(timeout: 60))
        let resumed = try hosts[1].deploy().wait(timeout: 120)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(hosts[1].agent.currentSHA == c)
    }

    @Test(
        "5 serve agents: pushes reach every host one at a time; fleet rollback, pause, resume; all of etcd down holds, then goes on"
    )
    func serveAgents() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...5).map {
            try Host("s\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        let serves = try hosts.map { host in
            try host.serve(pollInterval: "1s")
        }
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == a } })
        // Each serve is registered while it runs; a second one with a taken host-id exits 2.
        let listed = try hosts[0].fleet("status")
        #expect(listed.stdout.contains("5 live host(s)"), "\(listed.stdout)")
        let twin = try Host(
            "s2", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [], root: "s2-twin")
        let refused = try twin.agent.run(
            "serve", twin.arguments + ["--allow-unsigned", "--listen", "127.0.0.1:\(freePort())"], timeout: 60)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("host-id 's2' is registered by another live agent"), "\(refused.stderr)")
        let b = try repo.commit("b")
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == b } })
        // current moves at the swap; the hook logs its end a moment later.
        #expect(eventually(timeout: 30) { activations(log).filter { $0.sha == b }.count == 5 })
        let rollout = activations(log).filter { $0.sha == b }
        #expect(peak(rollout) == 1, "more than 1 host activated at once: \(rollout)")
        #expect(
            eventually(timeout: 10) {
                (try? TestHTTP.send("GET", serves[0].base + "/healthz"))?.body.contains(#""state":"idle""#) == true
            })
        let metrics = try TestHTTP.send("GET", serves[0].base + "/metrics")
        #expect(metrics.body.contains("release_agent_fleet_waiting 0"), "\(metrics.body)")
        let status = try hosts[0].agent.run("status")
        #expect(status.stdout.contains("fleet:   idle"), "\(status.stdout)")

        // fleet rollback: every host goes back to a, one at a time, and the polls leave it so.
        let rolled = try hosts[2].fleet("rollback")
        #expect(rolled.status == 0, "\(rolled.stderr)")
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == a } })
        sleep(4)
        #expect(hosts.allSatisfy { $0.agent.currentSHA == a }, "a poll undid the fleet rollback")
        // A new commit clears it and rolls out.
        let c = try repo.commit("c")
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == c } })
        #expect(peak(activations(log).filter { $0.sha == c }) == 1)

        // fleet pause holds every activation; resume lets them go.
        #expect(try hosts[0].fleet("pause --reason maintenance").status == 0)
        let d = try repo.commit("d")
        sleep(4)
        #expect(hosts.allSatisfy { $0.agent.currentSHA == c }, "a host activated while the fleet was paused")
        let paused = try hosts[0].fleet("status")
        #expect(paused.stdout.contains("PAUSED: maintenance"), "\(paused.stdout)")
        #expect(try hosts[0].fleet("resume").status == 0)
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == d } })

        // All of etcd down: nothing activates, every agent keeps serving; back up: they go on.
        cluster.stopAll()
        let e = try repo.commit("e")
        sleep(4)
        #expect(hosts.allSatisfy { $0.agent.currentSHA == d }, "a host activated without etcd")
        for serve in serves { #expect((try? TestHTTP.send("GET", serve.base + "/healthz"))?.status == 200) }
        for host in hosts { #expect(DemoService.get(port: host.port)?.body == "ok \(d)") }
        for index in cluster.members.indices { try cluster.start(index) }
        #expect(cluster.waitHealthy(timeout: 60))
        #expect(eventually(timeout: 120) { hosts.allSatisfy { $0.agent.currentSHA == e } })
        for serve in serves { #expect(try serve.stop().status == 0) }
    }

    @Test(
        "fleet-auto-revert: at fleet-max-failures the hosts that run the halted sha roll back; the others never take it"
    )
    func autoRevert() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...4).map {
            try Host(
                "r\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-max-failures", "2", "--fleet-auto-revert"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }
        // r2 and r3 fail to activate s; r1 took it before the second failure halted it.
        let s = try repo.commit("s", files: ["FAIL_ON": "r2 r3\n"])
        let results = try hosts.map { try $0.deploy().wait(timeout: 120) }
        #expect(results.map(\.status) == [0, 1, 1, 1], "\(results.map(\.stderr))")
        #expect(hosts[0].agent.currentSHA == s)
        #expect(results[3].stderr.contains("halted fleet-wide"), "\(results[3].stderr)")
        let status = try hosts[0].fleet("status")
        #expect(status.status == 1)
        #expect(status.stdout.contains("HALTED"), "\(status.stdout)")
        // At their next poll: r1 rolls back; the others are already on a and stay.
        for host in hosts {
            let polled = try host.agent.run("poll", host.arguments)
            #expect(polled.status == 0, "\(host.id): \(polled.stderr)")
        }
        for host in hosts { #expect(host.agent.currentSHA == a, "\(host.id) is not back on a") }
        for host in hosts {
            #expect(try host.agent.run("poll", host.arguments).status == 0)
            #expect(host.agent.currentSHA == a, "a poll undid the revert on \(host.id)")
        }
    }

    @Test("a newer head supersedes a sha a host waits for: it stops waiting, and the newer one goes next")
    func supersede() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...2).map {
            try Host(
                "t\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--fleet-canary", "t1"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }
        try "6\n".write(toFile: hosts[0].agent.root + "/DELAY", atomically: true, encoding: .utf8)
        let s = try repo.commit("s")
        let canary = try hosts[0].deploy()
        #expect(
            eventually(timeout: 30) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("start t1 \(s)")
            })
        let waiting = try hosts[1].deploy()
        usleep(1_500_000)
        let newer = try repo.commit("n")
        let gaveUp = try waiting.wait(timeout: 60)
        #expect(gaveUp.status == 1)
        #expect(gaveUp.stderr.contains("supersedes \(s.prefix(12))"), "\(gaveUp.stderr)")
        #expect(
            activations(log).filter { $0.host == "t1" && $0.sha == s }.isEmpty, "the wait ended only after the canary")
        #expect(try canary.wait(timeout: 60).status == 0)
        #expect(!activations(log).contains { $0.host == "t2" && $0.sha == s }, "t2 activated the superseded sha")
        unlink(hosts[0].agent.root + "/DELAY")
        for host in hosts {
            #expect(try host.deploy().wait(timeout: 120).status == 0)
            #expect(host.agent.currentSHA == newer)
        }
    }
}
