import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 23 item 2: a policy file missing for a moment under serve (a configuration run
/// replacing it) is the machine's fault: refused and said, nothing quarantined, retried.
@Suite("signature policy files that vanish under serve")
struct PolicyFileTests {
    @Test(
        "allowed-signers missing: the good commit is refused naming the file, not quarantined, and deployed once the file is back"
    )
    func allowedSignersMissing() throws {
        let scratch = Scratch()
        let (repo, _, allowed) = try SignatureTests.sshRepo(scratch)
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "ssh", "--allowed-signers", allowed]
        func signed(_ message: String) throws -> String {
            _ = try repo.gitArgs(["commit", "-q", "--allow-empty", "-m", message, "-S"])
            return try repo.git("rev-parse", "HEAD")
        }
        let first = try signed("first")
        #expect(try agent.run("deploy", verify).status == 0)
        let serve = try ServeProcess(agent: agent, arguments: verify + ["--allow-unsigned", "--poll-interval", "1s"])
        let saved = scratch.sub("allowed_signers.saved")
        #expect(rename(allowed, saved) == 0)
        let good = try signed("good, while the file is away")
        #expect(
            eventually(timeout: 60) {
                (try? agent.historyEvents())?.contains {
                    $0["sha"] as? String == good && $0["stage"] as? String == "verify"
                        && ($0["reason"] as? String ?? "").contains("cannot be read")
                } == true
            })
        #expect(agent.record(good)?["quarantine"] == nil, "a good commit was quarantined for the machine's fault")
        #expect(agent.currentSHA == first)
        #expect(rename(saved, allowed) == 0)
        #expect(eventually(timeout: 60) { agent.currentSHA == good }, "\(serve.running.stderrSoFar)")
        #expect(try serve.stop().status == 0)
    }
}
