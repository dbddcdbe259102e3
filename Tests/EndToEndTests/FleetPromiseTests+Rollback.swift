import Foundation
import ReleaseAgentTestSupport
import Testing

extension FleetPromiseTests {
    @Test(
        "fleet rollback holds off a head pushed during a pause, waits out a busy lock, ends at a newer commit; unreadable values fail closed"
    )
    func rollbackAndUnreadableValues() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try ["p1", "p2"].map {
            try Host($0, scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        func pollAll() throws -> [CommandResult] { try hosts.map { try $0.agent.run("poll", $0.arguments) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for result in try pollAll() { #expect(result.status == 0, "\(result.stderr)") }
        let b = try repo.commit("b")
        for result in try pollAll() { #expect(result.status == 0, "\(result.stderr)") }
        #expect(hosts.allSatisfy { $0.agent.currentSHA == b })

        // Pause, push c, fleet rollback to a, resume: every host goes to a; c stays off.
        #expect(try hosts[0].fleet("pause").status == 0)
        let c = try repo.commit("c")
        // A typo, or a commit no host ever deployed: refused, exit 2, no target written.
        for unknown in ["dead5eed", c] {
            let typo = try hosts[0].fleet("rollback \(unknown)")
            #expect(typo.status == 2, "\(typo.stderr)")
            #expect(
                typo.stderr.contains("no rollout of \(unknown) in fleet shop and no host runs it"), "\(typo.stderr)")
        }
        #expect(try etcdctl(cluster, ["get", "/release-agent/shop/target"]).stdout.isEmpty)
        #expect(try hosts[0].fleet("rollback \(a.prefix(10))").status == 0)
        let set = try etcdctl(cluster, ["get", "/release-agent/shop/target", "--print-value-only"]).stdout
        #expect(set.contains(a), "the target names the full sha: \(set)")
        #expect(try hosts[0].fleet("resume").status == 0)
        // p1's lock is busy at its first poll: not applied, applied at the next.
        // One process holds the flock (a `flock CMD` child would keep it after a kill).
        let flock = try ShellCommand.start([
            try TestTools.require("python3", package: "python3"), "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], 'w').close(); time.sleep(30)",
            hosts[0].agent.root + "/.release-agent/lock", scratch.sub("locked"),
        ])
        #expect(Agent.waitForFile(scratch.sub("locked")))
        let busy = try hosts[0].agent.run("poll", hosts[0].arguments)
        #expect(busy.status == 0, "\(busy.stderr)")
        #expect(hosts[0].agent.currentSHA == b)
        kill(flock.pid, SIGKILL)
        _ = try? flock.wait(timeout: 10)
        for _ in 0..<2 {
            for result in try pollAll() { #expect(result.status == 0, "\(result.stderr)") }
            for host in hosts { #expect(host.agent.currentSHA == a, "\(host.id) is not on a") }
        }
        // A newer commit ends the rollback.
        let d = try repo.commit("d")
        for result in try pollAll() { #expect(result.status == 0, "\(result.stderr)") }
        #expect(hosts.allSatisfy { $0.agent.currentSHA == d })

        // A rollout value this version cannot read: refused, recorded at stage fleet, not live.
        let e = try repo.commit("e")
        #expect(try etcdctl(cluster, ["put", "/release-agent/shop/rollouts/\(e)", "{garbage"]).status == 0)
        let refused = try hosts[0].deploy().wait(timeout: 120)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("cannot read"), "\(refused.stderr)")
        #expect(hosts[0].agent.currentSHA == d)
        #expect(try hosts[0].agent.historyEvents(["-n", "1"]).last?["stage"] as? String == "fleet")
        let status = try hosts[0].fleet("status")
        #expect(status.status == 1)
        #expect(status.stdout.contains("UNREADABLE: /release-agent/shop/rollouts/\(e)"), "\(status.stdout)")
        // A slot key written by hand (no lease, never freed): refused naming it, not waited on.
        #expect(try etcdctl(cluster, ["del", "/release-agent/shop/rollouts/\(e)"]).status == 0)
        #expect(try etcdctl(cluster, ["put", "/release-agent/shop/slots/zz", "junk"]).status == 0)
        let stray = try hosts[0].deploy().wait(timeout: 120)
        #expect(stray.status == 1, "\(stray.stderr)")
        #expect(stray.stderr.contains("slots/zz"), "\(stray.stderr)")
        #expect(hosts[0].agent.currentSHA == d)
        #expect(try hosts[0].fleet("status").stdout.contains("UNREADABLE: /release-agent/shop/slots/zz"))
        #expect(try etcdctl(cluster, ["del", "/release-agent/shop/slots/zz"]).status == 0)
        // An unreadable pause still holds, and status says PAUSED; control characters escaped.
        #expect(try etcdctl(cluster, ["put", "/release-agent/shop/paused", "\u{1b}[31mnot json"]).status == 0)
        let pausedStatus = try hosts[0].fleet("status")
        #expect(pausedStatus.stdout.contains("PAUSED"), "\(pausedStatus.stdout)")
        #expect(!pausedStatus.stdout.contains("\u{1b}"), "a raw escape reached the terminal")
    }
}
