import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 16, part two: refs that vanish or move, data lost or written outside the release,
/// secrets in builds, and children that never stop printing.
@Suite("core promise: refs, data and children")
struct DataSafetyTests {
    @Test("a deleted --ref, a deleted branch and a --sha of another branch are errors, never stale heads")
    func staleRefs() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        try repo.git("checkout", "-q", "-b", "hotfix")
        let hot = try repo.commit("hot")
        try repo.git("checkout", "-q", "main")
        #expect(try agent.run("deploy", ["--ref", "hotfix"]).status == 0)
        #expect(agent.currentSHA == hot)
        #expect(try agent.run("deploy").status == 0)
        #expect(agent.currentSHA == a)
        // A commit that only another branch has (now in the cache) is not on main.
        let other = try agent.run("deploy", ["--sha", String(hot.prefix(10))])
        #expect(other.status == 2)
        #expect(other.stderr.contains("not in the history of main"), "\(other.stderr)")
        try repo.git("branch", "-q", "-D", "hotfix")
        let gone = try agent.run("deploy", ["--ref", "hotfix"])
        #expect(gone.status == 2, "\(gone.stderr)")
        #expect(gone.stderr.contains("neither a branch nor a tag"))
        #expect(agent.currentSHA == a)
        // The followed branch deleted on the remote: deploy and poll agree it is gone.
        try repo.git("checkout", "-q", "-b", "feature")
        let feature = try repo.commit("f")
        #expect(try agent.run("deploy", ["--branch", "feature"]).status == 0)
        #expect(agent.currentSHA == feature)
        try repo.git("checkout", "-q", "main")
        try repo.git("branch", "-q", "-D", "feature")
        for command in ["deploy", "poll"] {
            let result = try agent.run(command, ["--branch", "feature"])
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("branch 'feature' does not exist"), "\(command): \(result.stderr)")
        }
        #expect(agent.currentSHA == feature)
    }

    @Test("the followed branch renamed into a directory (feature -> feature/x) and back fetches")
    func branchRenamedIntoDirectory() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        try repo.git("checkout", "-q", "-b", "feature")
        let f = try repo.commit("f")
        #expect(try agent.run("deploy", ["--branch", "feature"]).status == 0)
        try repo.git("branch", "-q", "-m", "feature", "feature/x")
        let x = try repo.commit("x")
        let renamed = try agent.run("deploy", ["--branch", "feature/x"])
        #expect(renamed.status == 0, "\(renamed.stderr)")
        #expect(agent.currentSHA == x)
        try repo.git("branch", "-q", "-m", "feature/x", "feature")
        let back = try repo.commit("back")
        let result = try agent.run("deploy", ["--branch", "feature"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == back)
        _ = f
    }

    @Test("nested shared paths are refused up front; the shared secret is untouched")
    func nestedShared() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let config = agent.root + "/shared/config"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try "SECRET=1\n".write(toFile: config + "/app.env", atomically: true, encoding: .utf8)
        try repo.commit("a", files: ["config/app.env": "SECRET=example\n"])
        for shared in ["config,config/app.env", "config/app.env,config", "config/,config/app.env"] {
            let result = try agent.run("deploy", ["--shared", shared])
            #expect(result.status == 2, "\(shared): \(result.stderr)")
            #expect(result.stderr.contains("overlap"), "\(shared): \(result.stderr)")
            #expect(agent.releaseDirs().isEmpty)
        }
        #expect(try String(contentsOfFile: config + "/app.env", encoding: .utf8) == "SECRET=1\n")
        let ok = try agent.run("deploy", ["--shared", "config/app.env"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let sha = try #require(agent.currentSHA)
        #expect(
            try String(contentsOfFile: "\(agent.root)/releases/\(sha)/config/app.env", encoding: .utf8) == "SECRET=1\n")
        #expect(try String(contentsOfFile: config + "/app.env", encoding: .utf8) == "SECRET=1\n")
    }

    @Test("a committed symlink at REVISION or on a shared path is refused; nothing outside is written or deleted")
    func symlinksFromTheTree() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good", files: ["REVISION": "a committed file is replaced\n"])
        #expect(try agent.run("deploy").status == 0)
        #expect(try String(contentsOfFile: "\(agent.root)/releases/\(good)/REVISION", encoding: .utf8) == good + "\n")
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
        try "precious\n".write(toFile: outside + "/file", atomically: true, encoding: .utf8)
        try "precious\n".write(toFile: outside + "/dir/app.env", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: agent.root + "/shared/config", withIntermediateDirectories: true)
        try "shared\n".write(toFile: agent.root + "/shared/config/app.env", atomically: true, encoding: .utf8)

        try repo.git("rm", "-q", "REVISION")
        try FileManager.default.createSymbolicLink(
            atPath: repo.path + "/REVISION", withDestinationPath: outside + "/file")
        let revision = try repo.commit("revision link")
        let first = try agent.run("deploy")
        #expect(first.status == 1)
        #expect(first.stderr.contains("symlink at") && first.stderr.contains("REVISION"), "\(first.stderr)")
        #expect(agent.currentSHA == good)
        #expect(agent.recordState(revision) == "failed")

        try repo.git("rm", "-q", "REVISION")
        try FileManager.default.createSymbolicLink(atPath: repo.path + "/config", withDestinationPath: outside + "/dir")
        try repo.commit("config link")
        let second = try agent.run("deploy", ["--shared", "config/app.env"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("a symlink at config"), "\(second.stderr)")
        #expect(agent.currentSHA == good)

        #expect(try String(contentsOfFile: outside + "/file", encoding: .utf8) == "precious\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: outside + "/dir/app.env")
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        #expect(try String(contentsOfFile: outside + "/dir/app.env", encoding: .utf8) == "precious\n")
    }

    @Test("builds and hooks get the SPEC's variables, never the agent's RELEASE_AGENT_* settings or tokens")
    func noSecretsInChildren() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        agent.environment["RELEASE_AGENT_METRICS_TOKEN"] = "metrics-s3cret"
        agent.environment["RELEASE_AGENT_HEALTH_TOKEN"] = "health-s3cret"
        agent.environment["RELEASE_AGENT_KEEP_RELEASES"] = "4"
        let hooks = scratch.sub("hooks")
        try CorePromiseTests.hook(hooks, "activate", "#!/bin/sh\nenv > \(scratch.sub("activate.env"))\n")
        try repo.commit("a")
        let result = try agent.run("deploy", ["--hooks-dir", hooks, "--build", "env > \(scratch.sub("build.env"))"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["build.env", "activate.env"] {
            let text = try String(contentsOfFile: scratch.sub(name), encoding: .utf8)
            #expect(text.contains("RELEASE_SHA="), "\(name)")
            #expect(text.contains("RELEASE_AGENT_EVENT="), "\(name)")
            #expect(!text.contains("s3cret"), "\(name) holds a token")
            #expect(!text.contains("RELEASE_AGENT_KEEP_RELEASES"), "\(name) holds a setting")
        }
    }

    @Test("a build that never stops printing is timed out, and its log is capped with the cut said")
    func chattyBuild() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        // A guard for this machine should the cap ever break: files over 200 MiB fail (dash
        // counts 512-byte blocks). The cap keeps the log far below it.
        agent.wrapper = ["/bin/sh", "-c", "ulimit -f 409600; exec \"$@\"", "sh"]
        let good = try repo.commit("good")
        #expect(try agent.run("deploy").status == 0)
        // Each build first prints more than the cap (16 MiB before a compaction) in one burst,
        // then never stops: the cut is there however slow the machine is.
        let burst = "head -c 20000000 /dev/zero | tr '\\0' y; "
        for (label, command) in [("yes", burst + "exec yes"), ("retrying", burst + "while :; do echo retrying; done")] {
            let sha = try repo.commit(label)
            // A run the harness has to kill (90 s) has no exit 1 and no timeout line.
            let result = try agent.run("deploy", ["--build", command, "--build-timeout", "3s"], timeout: 90)
            #expect(result.status == 1, "\(label): \(result.stderr.suffix(500))")
            #expect(result.stderr.contains("timed out after 3.00s"), "\(label)")
            #expect(agent.currentSHA == good)
            let log = "\(agent.root)/.release-agent/logs/\(sha).log"
            let size = (try FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? -1
            #expect(size > 0 && size < 20 << 20, "\(label): the log is \(size) bytes")
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: log)), as: UTF8.self)
            #expect(text.contains("bytes of output cut here"), "\(label)")
            #expect(text.contains("== build timed out"), "\(label)")
            #expect(result.stderr.utf8.count < 20 << 20, "\(label): stderr is \(result.stderr.utf8.count) bytes")
        }
    }
}
