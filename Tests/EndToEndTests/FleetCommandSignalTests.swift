import Foundation
import ReleaseAgentTestSupport
import Testing

/// SIGTERM and SIGINT to a `deploy` or `poll` (cron, a shell) in fleet mode while it waits:
/// the wait ends and its place in line goes at once, not when its lease expires.
@Suite(
    "fleet: SIGTERM and SIGINT to a waiting deploy or poll", .serialized,
    .enabled(if: TestTools.runnable("etcd", "etcdctl")))
struct FleetCommandSignalTests {
    @Test(
        "a waiting deploy or poll given SIGTERM or SIGINT gives its place up at once and activates nothing; the holder goes on"
    )
    func signalsEndWaits() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        // A long lease: a place in line that went only by expiry would still be there.
        let hosts = try (1...2).map {
            try Host(
                "s\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--hook-timeout", "40s", "--fleet-lease-ttl", "60s"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }
        let b = try repo.commit("b")
        let holdFile = hosts[0].agent.root + "/HOLD"
        FileManager.default.createFile(atPath: holdFile, contents: nil)
        let holder = try hosts[0].deploy()
        #expect(eventually(timeout: 60) { hosts[0].phase == "activating" })
        for (command, signal) in [("deploy", SIGTERM), ("poll", SIGINT)] {
            let waiter = try hosts[1].agent.start(command, hosts[1].arguments)
            #expect(eventually(timeout: 60) { hosts[1].phase == "waiting-slot" }, "\(command)")
            let slots = try cluster.etcdctl(["get", "--prefix", "--keys-only", "/release-agent/shop/slots/"])
            #expect(slots.stdout.contains("slots/s2"), "\(command): \(slots.stdout)")
            kill(waiter.pid, signal)
            let result = try waiter.wait(timeout: 30)
            #expect(command == "poll" ? result.status == 0 : result.status == 1, "\(command): \(result.stderr)")
            let after = try cluster.etcdctl(["get", "--prefix", "--keys-only", "/release-agent/shop/slots/"])
            #expect(!after.stdout.contains("slots/s2"), "\(command): the waiter's key stayed: \(after.stdout)")
            #expect(hosts[1].agent.currentSHA == a, "\(command)")
        }
        unlink(holdFile)
        #expect(try holder.wait(timeout: 90).status == 0)
        #expect(hosts[0].agent.currentSHA == b)
        // The host that gave its place up deploys at its next run.
        #expect(try hosts[1].deploy().wait(timeout: 120).status == 0)
        #expect(hosts[1].agent.currentSHA == b)
        #expect(peak(activations(log).filter { $0.sha == b }) == 1)
    }
}
