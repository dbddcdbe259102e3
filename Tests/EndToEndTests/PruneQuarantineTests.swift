import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 18, items 1, 2 and 4, as the issue gives them.
@Suite("prune keeps quarantines and the rollback target")
struct PruneQuarantineTests {
    @Test("a pruned failed head stays quarantined: poll does not build it again")
    func quarantineOutlivesPrune() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let build = ["--build", "test ! -e FAIL"]
        let w = try repo.commit("w", files: ["FAIL": "1"])
        let a = try repo.commit("a", remove: ["FAIL"])
        #expect(try agent.run("deploy", build + ["--sha", a]).status == 0)
        let x = try repo.commit("x", files: ["FAIL": "1"])
        #expect(try agent.run("deploy", build).status == 1)
        // An older bad commit: now the newest failed release, so prune takes x's dir and record.
        #expect(try agent.run("deploy", build + ["--sha", w]).status == 1)
        let prune = try agent.run("prune", ["--keep", "5"])
        #expect(prune.status == 0)
        #expect(!agent.releaseDirs().contains(x), "prune kept x: \(prune.stdout)")
        let poll = try agent.run("poll", build)
        #expect(poll.status == 0, "\(poll.stderr)")
        #expect(poll.stderr.isEmpty, "poll built the quarantined head again: \(poll.stderr)")
        #expect(!agent.releaseDirs().contains(x))
        // An explicit deploy still tries it (and it fails again); a newer commit lifts it.
        #expect(try agent.run("deploy", build).status == 1)
        let y = try repo.commit("y", remove: ["FAIL"])
        #expect(try agent.run("poll", build).status == 0)
        #expect(agent.currentSHA == y)
    }

    @Test("after a rollback, prune keeps the release the next rollback would pick")
    func pruneKeepsRollbackTarget() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for name in ["a", "b", "c"] {
            shas.append(try repo.commit(name))
            #expect(try agent.run("deploy").status == 0)
        }
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == shas[1])
        #expect(try agent.run("prune", ["--keep", "1"]).status == 0)
        #expect(agent.releaseDirs().contains(shas[0]), "prune removed the rollback target a")
        let second = try agent.run("rollback")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(agent.currentSHA == shas[0])
    }

    @Test("rollback --help names the tool in both binaries")
    func helpUsage() throws {
        let scratch = Scratch()
        let agent = try Agent(root: scratch.sub("root"), repo: scratch.sub("repo"))
        let full = (agent.binary as NSString).deletingLastPathComponent + "/release-agent-full"
        for binary in [agent.binary, full] {
            for command in ["rollback", "status", "history", "prune", "poll", "deploy"] {
                let result = try ShellCommand.run([binary, command, "--help"])
                #expect(result.status == 0)
                #expect(
                    result.stdout.contains("USAGE: release-agent \(command)"),
                    "\(binary) \(command): \(result.stdout.prefix(200))")
            }
        }
    }
}
