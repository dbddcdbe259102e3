import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("prune, usage errors and the lock")
struct StoreTests {
    @Test("six deploys with keep-releases 3 leave the newest three")
    func pruneKeepsThree() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for n in 1...6 {
            shas.append(try repo.commit("c\(n)", files: ["v": "\(n)"]))
            let result = try agent.run("deploy", ["--keep-releases", "3"])
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(agent.releaseDirs() == Set(shas.suffix(3)))
        #expect(agent.currentSHA == shas[5])
        // Records of removed releases are gone too.
        #expect(agent.recordState(shas[0]) == nil)
        // A pinned old release survives an explicit prune.
        let pruned = try agent.run("prune", ["--keep", "1", "--pin", String(shas[3].prefix(10))])
        #expect(pruned.status == 0)
        #expect(agent.releaseDirs() == [shas[3], shas[4], shas[5]])
        let pruned2 = try agent.run("prune", ["--keep", "1"])
        #expect(pruned2.status == 0)
        // current and the one before it are never removed.
        #expect(agent.releaseDirs() == [shas[4], shas[5]])
    }

    @Test("prune never follows a symlink out of a release")
    func pruneDoesNotFollowSymlinks() throws {
        let scratch = Scratch()
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "keep me".write(toFile: outside + "/precious", atomically: true, encoding: .utf8)
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try FileManager.default.createSymbolicLink(atPath: repo.path + "/escape", withDestinationPath: outside)
        let first = try repo.commit("escape link")
        #expect(try agent.run("deploy", ["--build", "ln -s \(outside) made-by-build"]).status == 0)
        for n in 2...4 {
            try repo.commit("c\(n)", files: ["v": "\(n)"])
            #expect(try agent.run("deploy", ["--keep-releases", "1"]).status == 0)
        }
        #expect(!agent.releaseDirs().contains(first))
        #expect(try String(contentsOfFile: outside + "/precious", encoding: .utf8) == "keep me")
    }

    @Test("bad flags and settings exit 2 and write nothing to disk")
    func badUsage() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("one")
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let cases: [[String]] = [
            ["--keep-releases", "0"], ["--keep-releases", "many"], ["--build-timeout", "soon"],
            ["--strategy", "yolo"], ["--strategy", "blue-green"], ["--slots", "1,99999"], ["--no-such-flag"],
            ["--sha", "xyz"], ["--sha", "abc", "--ref", "main"], ["--shared", "../etc/passwd"],
            ["--min-free-space", "lots"], ["--branch", "a..b"], ["--health-url", "https://127.0.0.1/health"],
            ["--health-url", "http://127.0.0.1:99999/"],
        ]
        for arguments in cases {
            let result = try agent.run("deploy", arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("Error:"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"))
            #expect(!FileManager.default.fileExists(atPath: agent.root), "\(arguments) wrote to disk")
        }
        var missing = agent
        missing = try Agent(root: scratch.sub("root"), repo: scratch.sub("no-such-repo"))
        let result = try missing.run("deploy")
        #expect(result.status == 2)
        #expect(result.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: agent.root))

        let config = scratch.sub("bad.toml")
        try "keep_releases = 3\nno_such_setting = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let badConfig = try agent.run("deploy", ["--config", config])
        #expect(badConfig.status == 2)
        #expect(badConfig.stderr.contains("no_such_setting"))
        try "keep_releases = [".write(toFile: config, atomically: true, encoding: .utf8)
        let broken = try agent.run("deploy", ["--config", config])
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("not valid TOML"))
        #expect(!FileManager.default.fileExists(atPath: agent.root))
    }

    @Test("two concurrent deploys: the second exits 75, or waits with --wait")
    func concurrentDeploys() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let marker = scratch.sub("building")
        let gate = scratch.sub("gate")
        let sha = try repo.commit(
            "slow", files: ["build.sh": "#!/bin/sh\ntouch \(marker)\nwhile [ ! -e \(gate) ]; do sleep 0.05; done\n"])
        let first = try agent.start("deploy", ["--build", "./build.sh"])
        #expect(Agent.waitForFile(marker))
        let busy = try agent.run("deploy", ["--build", "./build.sh"])
        #expect(busy.status == 75, "\(busy.stderr)")
        #expect(busy.stderr.contains("--wait"))
        let waiting = try agent.start("deploy", ["--build", "./build.sh", "--wait", "60s"])
        usleep(300_000)
        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(try first.wait(timeout: 60).status == 0)
        let waited = try waiting.wait(timeout: 60)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stderr.contains("already live"))
        #expect(agent.currentSHA == sha)
        // The lock is free again.
        #expect(try agent.run("prune").status == 0)
    }
}

@Suite("cleanup and symlinks")
struct CleanupSymlinkTests {
    @Test("recovery removes an incomplete release holding links out of it, and nothing outside")
    func recoveryDoesNotFollowSymlinks() throws {
        let scratch = Scratch()
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
        try "keep me".write(toFile: outside + "/dir/precious", atomically: true, encoding: .utf8)
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        // A release dir with no record: what a crash mid-checkout leaves, here with links out.
        let partial = agent.root + "/releases/" + String(repeating: "ab", count: 20)
        try FileManager.default.createDirectory(atPath: partial + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: partial + "/link", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(
            atPath: partial + "/sub/dirlink", withDestinationPath: outside + "/dir")
        try FileManager.default.createSymbolicLink(atPath: partial + "/sub/abs", withDestinationPath: "/")
        try repo.commit("b")
        #expect(try agent.run("deploy").status == 0)
        #expect(!FileManager.default.fileExists(atPath: partial))
        #expect(try String(contentsOfFile: outside + "/dir/precious", encoding: .utf8) == "keep me")
    }

    @Test("lock and temp files a killed fetch left in the cache are removed; the next deploy fetches")
    func staleGitLocks() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let cache = agent.root + "/.release-agent/repo.git"
        try FileManager.default.createDirectory(
            atPath: cache + "/refs/remotes/origin", withIntermediateDirectories: true)
        let stale = [
            cache + "/refs/remotes/origin/main.lock", cache + "/refs/heads/main.lock", cache + "/packed-refs.lock",
            cache + "/objects/pack/pack_git2_0123456789",
        ]
        for path in stale {
            #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)), "\(path)")
        }
        let b = try repo.commit("b")
        let result = try agent.run("deploy")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == b)
        for path in stale { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
    }
}
