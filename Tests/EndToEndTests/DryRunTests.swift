import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 13, item 2: `deploy --dry-run`.
@Suite("deploy --dry-run")
struct DryRunTests {
    @Test(
        "says the target, the commits, the build, the hooks and what prune would remove; changes nothing but the cache")
    func plan() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        try CorePromiseTests.hook(hooks, "activate", "#!/bin/sh\nexit 0\n")
        try CorePromiseTests.hook(hooks, "post-deploy", "#!/bin/sh\nexit 0\n")
        let arguments = ["--hooks-dir", hooks, "--keep-releases", "1", "--build", "true"]
        let a = try repo.commit("a")
        #expect(try agent.run("deploy", arguments).status == 0)
        let b = try repo.commit("b")
        #expect(try agent.run("deploy", arguments).status == 0)
        try repo.commit("c: the next change")
        let d = try repo.commit("d: the one after")
        #expect(try agent.run("pause", ["--reason", "window"]).status == 0)
        func snapshot() -> [String: String] {
            SettingsTableTests.snapshot(agent.root).filter { !$0.key.hasPrefix(".release-agent/repo.git") }
        }
        let before = snapshot()
        let result = try agent.run("deploy", arguments + ["--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = result.stdout
        for line in [
            "dry-run  target \(d.prefix(12)) d: the one after", "dry-run  live \(b.prefix(12))",
            "dry-run  2 commits from live to target", "c: the next change", "dry-run  paused: window",
            "dry-run  build: check out and build (true)", "dry-run  hooks: activate, post-deploy",
            "dry-run  prune would remove: \(a.prefix(12))",
        ] {
            #expect(text.contains(line), "\(line) not in\n\(text)")
        }
        #expect(snapshot() == before, "the dry run changed the deploy root")
        #expect(agent.currentSHA == b)
        let json = try agent.run("deploy", arguments + ["--dry-run", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["target"] as? String == d)
        #expect(object?["commits"] as? Int == 2)
        #expect(object?["pruned"] as? [String] == [a])
        #expect(object?["locked"] as? Bool == false)
        // The real deploy then does what the plan said.
        #expect(try agent.run("resume").status == 0)
        let real = try agent.run("deploy", arguments)
        #expect(real.status == 0, "\(real.stderr)")
        #expect(agent.currentSHA == d)
        #expect(real.stderr.contains("prune    removed 1: \(a.prefix(12))"), "\(real.stderr)")
        #expect(!agent.releaseDirs().contains(a))
        // Already live: nothing to do, reused.
        let live = try agent.run("deploy", arguments + ["--dry-run", "--sha", d])
        #expect(live.stdout.contains("already live, nothing to do"), "\(live.stdout)")
        #expect(live.stdout.contains("build: reuse"), "\(live.stdout)")
    }
}
