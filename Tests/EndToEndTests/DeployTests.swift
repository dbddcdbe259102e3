import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("deploy end to end")
struct DeployTests {
    @Test("three commits deploy in turn; current, REVISION and the build output follow")
    func deployThreeCommits() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for n in 1...3 {
            shas.append(try repo.commit("commit \(n)", files: ["VERSION": "\(n)\n"]))
            let result = try agent.run("deploy", ["--build", "cp VERSION BUILT && echo building $RELEASE_SHA"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(agent.currentSHA == shas.last)
            let release = "\(agent.root)/releases/\(shas[n - 1])"
            #expect(try String(contentsOfFile: release + "/REVISION", encoding: .utf8) == shas[n - 1] + "\n")
            #expect(try String(contentsOfFile: release + "/BUILT", encoding: .utf8) == "\(n)\n")
            #expect(result.stderr.contains("build| building \(shas[n - 1])"))
            #expect(result.stdout.contains("releases/\(shas[n - 1])"))
        }
        #expect(agent.releaseDirs() == Set(shas))
        #expect(agent.recordState(shas[2]) == "active")
        #expect(agent.recordState(shas[1]) == "retired")
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: agent.root + "/current")
        #expect(link == "releases/\(shas[2])")
        #expect(!FileManager.default.fileExists(atPath: "\(agent.root)/releases/\(shas[2])/.git"))
    }

    @Test("deploying the live sha again does nothing and exits 0")
    func deployAgainIsNoop() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("one", files: ["a": "1"])
        #expect(try agent.run("deploy", ["--build", "date +%s%N > STAMP"]).status == 0)
        let first = try String(contentsOfFile: agent.root + "/current/STAMP", encoding: .utf8)
        let again = try agent.run("deploy", ["--build", "date +%s%N > STAMP"])
        #expect(again.status == 0)
        #expect(again.stderr.contains("already live"))
        #expect(try String(contentsOfFile: agent.root + "/current/STAMP", encoding: .utf8) == first)
        let events: [[String: Any]]? = try agent.historyEvents()
        #expect(events?.count == 1)
    }

    @Test("--sha deploys an older commit by prefix; a ready release on disk is not rebuilt")
    func deployBySHAReusesReady() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a", files: ["v": "a"])
        #expect(try agent.run("deploy", ["--build", "echo x >> BUILDS"]).status == 0)
        let b = try repo.commit("b", files: ["v": "b"])
        #expect(try agent.run("deploy", ["--build", "echo x >> BUILDS"]).status == 0)
        let back = try agent.run("deploy", ["--sha", String(a.prefix(8)), "--build", "echo x >> BUILDS"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stderr.contains("skipped"))
        #expect(agent.currentSHA == a)
        #expect(try String(contentsOfFile: "\(agent.root)/releases/\(a)/BUILDS", encoding: .utf8) == "x\n")
        #expect(agent.releaseDirs() == [a, b])
        let unknown = try agent.run("deploy", ["--sha", "deadbeef"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("deadbeef"))
    }

    @Test("--ref deploys a tag or another branch; an unknown ref is a usage error")
    func deployByRef() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let tagged = try repo.commit("tagged", files: ["v": "1"])
        try repo.git("tag", "-a", "v1.0", "-m", "release 1.0")
        try repo.commit("later", files: ["v": "2"])
        let byTag = try agent.run("deploy", ["--ref", "v1.0"])
        #expect(byTag.status == 0, "\(byTag.stderr)")
        #expect(agent.currentSHA == tagged)
        try repo.git("checkout", "-q", "-b", "feature")
        let feature = try repo.commit("feature work", files: ["f": "x"])
        try repo.git("checkout", "-q", "main")
        #expect(try agent.run("deploy", ["--ref", "feature"]).status == 0)
        #expect(agent.currentSHA == feature)
        let unknown = try agent.run("deploy", ["--ref", "no-such-ref"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("neither a branch nor a tag"))
        #expect(agent.currentSHA == feature)
    }

    @Test("file modes and symlinks are checked out as the tree has them; shared paths are linked")
    func modesSymlinksShared() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit(
            "files", files: ["bin/run": "#!/bin/sh\necho run\n", "data/plain.txt": "plain", "config/.keep": ""])
        try FileManager.default.createSymbolicLink(atPath: repo.path + "/link", withDestinationPath: "data/plain.txt")
        let sha = try repo.commit("link")
        try FileManager.default.createDirectory(
            atPath: agent.root + "/shared/config", withIntermediateDirectories: true)
        try "secret".write(toFile: agent.root + "/shared/config/app.env", atomically: true, encoding: .utf8)
        let result = try agent.run("deploy", ["--shared", "config/app.env", "--build", "cat config/app.env > SEEN"])
        #expect(result.status == 0, "\(result.stderr)")
        let release = "\(agent.root)/releases/\(sha)"
        #expect(FileManager.default.isExecutableFile(atPath: release + "/bin/run"))
        #expect(!FileManager.default.isExecutableFile(atPath: release + "/data/plain.txt"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: release + "/link") == "data/plain.txt")
        #expect(try String(contentsOfFile: release + "/SEEN", encoding: .utf8) == "secret")
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: release + "/config/app.env")
                == "../../../shared/config/app.env")
    }

    @Test("status --json and history --json name the releases")
    func statusAndHistoryJSON() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("first subject", files: ["v": "1"])
        #expect(try agent.run("deploy").status == 0)
        let b = try repo.commit("second subject", files: ["v": "2"])
        #expect(try agent.run("deploy").status == 0)

        let status = try agent.run("status", ["--json"])
        #expect(status.status == 0)
        let object: [String: Any]? = try agent.statusObject()
        #expect(object?["current"] as? String == b)
        let releases = object?["releases"] as? [[String: Any]] ?? []
        #expect(Set(releases.compactMap { $0["sha"] as? String }) == [a, b])
        #expect(releases.first { $0["sha"] as? String == b }?["subject"] as? String == "second subject")
        #expect(releases.first { $0["sha"] as? String == b }?["state"] as? String == "active")

        let events = try agent.historyEvents(["-n", "5"])
        #expect(events.compactMap { $0["sha"] as? String } == [a, b])
        #expect(events.last?["previous"] as? String == a)
        #expect(events.allSatisfy { $0["result"] as? String == "ok" && $0["event"] as? String == "deploy" })
        let text = try agent.run("history")
        #expect(text.stdout.contains(String(b.prefix(12))) && text.stdout.contains("second subject"))
    }
}

@Suite("checkout paths")
struct CheckoutTests {
    @Test("files get the committed bytes and modes; .gitattributes filters are not applied")
    func attributesFallback() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let plain = try repo.commit(
            "plain", files: ["a.txt": "line\n", "dir/b.bin": "\u{0}\u{1}raw", "run.sh": "#!/bin/sh\n"])
        #expect(try agent.run("deploy").status == 0)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: "\(agent.root)/releases/\(plain)/dir/b.bin"))
                == Data([0, 1, 0x72, 0x61, 0x77]))
        #expect(FileManager.default.isExecutableFile(atPath: "\(agent.root)/releases/\(plain)/run.sh"))
        let converted = try repo.commit("attributes", files: [".gitattributes": "*.txt text eol=crlf\n"])
        #expect(try agent.run("deploy").status == 0)
        #expect(try String(contentsOfFile: "\(agent.root)/releases/\(converted)/a.txt", encoding: .utf8) == "line\n")
    }

    @Test("a gitlink that .gitmodules does not name fails with a clear error, and current stays")
    func submodulesRefused() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good")
        #expect(try agent.run("deploy").status == 0)
        try repo.git("update-index", "--add", "--cacheinfo", "160000,\(good),vendor/lib")
        try repo.git("commit", "-q", "-m", "submodule")
        let result = try agent.run("deploy")
        #expect(result.status == 1)
        #expect(result.stderr.contains("submodule vendor/lib of"), "\(result.stderr)")
        #expect(result.stderr.contains("has no url in .gitmodules"), "\(result.stderr)")
        #expect(agent.currentSHA == good)
    }
}
