import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 23 item 3: `deploy --dry-run` says what the deploy will do, refusals included: an
/// unsigned head under verify-signatures, and a sha halted fleet-wide, are not "a build".
@Suite("dry-run predicts the deploy's refusals", .serialized)
struct DryRunRefusalTests {
    @Test("an unsigned head under verify-signatures: would be refused, nothing built, nothing changed")
    func unsignedHead() throws {
        let scratch = Scratch()
        let (repo, _, allowed) = try SignatureTests.sshRepo(scratch)
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "ssh", "--allowed-signers", allowed]
        _ = try repo.gitArgs(["commit", "-q", "--allow-empty", "-m", "signed", "-S"])
        #expect(try agent.run("deploy", verify).status == 0)
        let unsigned = try repo.commit("unsigned")
        let plan = try agent.run("deploy", verify + ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("would be refused: verify-signatures"), "\(plan.stdout)")
        #expect(plan.stdout.contains("unsigned"), "\(plan.stdout)")
        #expect(plan.stdout.contains("build: none"), "\(plan.stdout)")
        #expect(agent.record(unsigned) == nil, "the dry run wrote a record")
        let real = try agent.run("deploy", verify)
        #expect(real.status == 1 && real.stderr.contains("unsigned"), "\(real.stderr)")
    }

    @Test(
        "a sha halted fleet-wide: another host's dry-run says it would be refused; a paused fleet is said",
        .enabled(if: TestTools.runnable("etcd", "etcdctl")))
    func haltedSha() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...2).map {
            try Host("d\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: [])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts { #expect(try host.deploy().wait(timeout: 120).status == 0) }
        let bad = try repo.commit("bad", files: ["FAIL_ON": "d1\n"])
        #expect(try hosts[0].deploy().wait(timeout: 120).status == 1)
        let plan = try hosts[1].agent.run("deploy", hosts[1].arguments + ["--dry-run"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("would be refused: fleet: halted fleet-wide"), "\(plan.stdout)")
        #expect(plan.stdout.contains("build: none"), "\(plan.stdout)")
        let real = try hosts[1].deploy().wait(timeout: 120)
        #expect(real.status == 1 && real.stderr.contains("halted fleet-wide"), "\(real.stderr)")
        #expect(!logText(log).contains("start d2 \(bad)"))

        let c = try repo.commit("c", remove: ["FAIL_ON"])
        #expect(try hosts[1].fleet("pause --reason maintenance").status == 0)
        let paused = try hosts[1].agent.run("deploy", hosts[1].arguments + ["--dry-run"])
        #expect(paused.stdout.contains("fleet: would be held: the fleet is paused: maintenance"), "\(paused.stdout)")
        #expect(paused.stdout.contains(String(c.prefix(12))), "\(paused.stdout)")
    }

    private func logText(_ log: String) -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}
