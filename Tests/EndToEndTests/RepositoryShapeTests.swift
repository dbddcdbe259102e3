import Foundation
import ReleaseAgentTestSupport
import Testing

/// SPEC "Repositories as they are": `paths`, `subdir` and `build-cache`, with real repositories
/// and the built binary.
@Suite("repositories as they are: paths, subdir, build-cache")
struct RepositoryShapeTests {
    @Test("paths: a head that changes nothing under them is skipped once, quietly after; deploy skips, --force builds")
    func pathsSkip() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let builds = scratch.sub("builds")
        let settings = ["--paths", "services/api/,lib", "--build", "echo $RELEASE_SHA >> \(builds)"]
        let a = try repo.commit(
            "a", files: ["services/api/app.txt": "1", "services/api-gateway/gw.txt": "1", "docs/readme": "1"])
        // The first deploy always builds.
        let first = try agent.run("poll", settings)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == a)

        // Next door (api-gateway is not api) and docs: skipped, recorded once.
        let b = try repo.commit("docs", files: ["services/api-gateway/gw.txt": "2", "docs/readme": "2"])
        let poll = try agent.run("poll", settings)
        #expect(poll.status == 0, "\(poll.stderr)")
        #expect(poll.stderr.contains("skipped: \(b.prefix(12)) changes nothing under paths (services/api, lib)"))
        #expect(agent.currentSHA == a)
        #expect(!agent.releaseDirs().contains(b), "a skipped head is not checked out")
        let events = try agent.historyEvents()
        #expect(events.last?["result"] as? String == "skipped", "\(events)")
        #expect(events.last?["sha"] as? String == b)
        let status = try agent.run("status")
        #expect(status.stdout.contains("skipped: \(b.prefix(12)) changes nothing under paths"), "\(status.stdout)")
        #expect(status.stdout.contains("last:    deploy skipped \(b.prefix(12))"), "\(status.stdout)")
        let quiet = try agent.run("poll", settings)
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet.stdout)\(quiet.stderr)")
        #expect(try agent.historyEvents().count == events.count)

        // An operator's deploy skips too, and says so; the dry run says it would.
        let deploy = try agent.run("deploy", settings)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(deploy.stderr.contains("skipped: \(b.prefix(12))"), "\(deploy.stderr)")
        #expect(agent.currentSHA == a)
        let dry = try agent.run("deploy", settings + ["--dry-run"])
        #expect(dry.stdout.contains("would skip: \(b.prefix(12)) changes nothing under paths"), "\(dry.stdout)")

        // A change under a prefix deploys (the skipped commit's changes come with it).
        let c = try repo.commit("lib", files: ["lib/x": "1"])
        let next = try agent.run("poll", settings)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(agent.currentSHA == c)
        #expect(try String(contentsOfFile: agent.root + "/current/docs/readme", encoding: .utf8) == "2")

        // --force builds what would be skipped.
        let d = try repo.commit("docs again", files: ["docs/readme": "3"])
        let forced = try agent.run("deploy", settings + ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(agent.currentSHA == d)
        let built = try String(contentsOfFile: builds, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(built == [a, c, d], "\(built)")
        #expect(!(try agent.run("status").stdout.contains("skipped:")))
    }

    @Test("paths: a rollback from a release quarantines the head skipped against it, so poll does not undo it")
    func pathsRollback() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let settings = ["--paths", "api"]
        let good = try repo.commit("good", files: ["api/a": "1", "docs/d": "1"])
        #expect(try agent.run("poll", settings).status == 0)
        let bad = try repo.commit("bad api", files: ["api/a": "2"])
        #expect(try agent.run("poll", settings).status == 0)
        #expect(agent.currentSHA == bad)
        let docs = try repo.commit("docs", files: ["docs/d": "2"])
        #expect(try agent.run("poll", settings).stderr.contains("skipped: \(docs.prefix(12))"))
        let back = try agent.run("rollback", settings)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(agent.currentSHA == good)
        let poll = try agent.run("poll", settings)
        #expect(poll.status == 0, "\(poll.stderr)")
        #expect(agent.currentSHA == good, "poll brought the rolled-back change back through the skipped head")
        #expect(try agent.run("status").stdout.contains("\(docs.prefix(12))  [quarantined: rolled back from"))
        // A newer commit deploys as usual.
        let fixed = try repo.commit("fix api", files: ["api/a": "3"])
        #expect(try agent.run("poll", settings).status == 0)
        #expect(agent.currentSHA == fixed)
    }

    @Test("subdir: only that directory is written and is the release; verify reads it; a commit without it fails")
    func subdir() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let settings = ["--subdir", "services/api", "--build", "test -f app.txt && pwd > BUILT_IN"]
        let a = try repo.commit(
            "a",
            files: [
                "services/api/app.txt": "api", "services/api/lib/x.txt": "x", "services/web/w.txt": "w",
                "README": "top",
            ])
        let result = try agent.run("deploy", settings)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == a)
        let release = agent.root + "/releases/" + a
        let top = Set(try FileManager.default.contentsOfDirectory(atPath: release))
        #expect(top == ["app.txt", "lib", "REVISION", "BUILT_IN"], "\(top)")
        #expect(try String(contentsOfFile: release + "/BUILT_IN", encoding: .utf8) == release + "\n")
        #expect(try String(contentsOfFile: release + "/REVISION", encoding: .utf8) == a + "\n")
        #expect(try agent.run("verify", settings).status == 0)
        try "changed".write(toFile: release + "/lib/x.txt", atomically: false, encoding: .utf8)
        let drift = try agent.run("verify", settings)
        #expect(drift.status == 1)
        #expect(drift.stdout.contains("modified lib/x.txt"), "\(drift.stdout)")

        let gone = try repo.commit("moved", remove: ["services/api/app.txt", "services/api/lib/x.txt"])
        let failed = try agent.run("deploy", settings)
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("\(gone.prefix(12)) has no directory services/api (subdir)"), "\(failed.stderr)")
        #expect(failed.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1)
        #expect(agent.currentSHA == a)
        #expect(!agent.releaseDirs().contains(gone))
    }

    @Test("build-cache: warm on the second deploy, no file shared between releases, links out and linked paths skipped")
    func buildCache() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        // The build installs once: a package, a relative link inside, a link out, and `vendor`
        // as a link out of the release; every build then edits the package in place.
        let build = """
            if [ -f node_modules/pkg/index.js ]; then echo warm > WARMTH; else echo cold > WARMTH; \
            mkdir -p node_modules/pkg/bin && echo v1 > node_modules/pkg/index.js && \
            ln -s ../pkg/index.js node_modules/pkg/bin/inside && ln -s /etc/hostname node_modules/out && \
            ln -s \(outside) vendor; fi; echo edit >> node_modules/pkg/index.js
            """
        let settings = ["--build", build, "--build-cache", "node_modules,vendor,.venv"]
        let a = try repo.commit("a", files: ["app.txt": "1"])
        let first = try agent.run("deploy", settings)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("cache: no live release"), "\(first.stderr)")
        let b = try repo.commit("b", files: ["app.txt": "2", "deps/cache/seed.txt": "seed"])
        let second = try agent.run("deploy", settings)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(agent.currentSHA == b)
        let (old, new) = (agent.root + "/releases/" + a, agent.root + "/releases/" + b)
        #expect(try String(contentsOfFile: new + "/WARMTH", encoding: .utf8) == "warm\n")
        #expect(try String(contentsOfFile: old + "/node_modules/pkg/index.js", encoding: .utf8) == "v1\nedit\n")
        #expect(try String(contentsOfFile: new + "/node_modules/pkg/index.js", encoding: .utf8) == "v1\nedit\nedit\n")
        var (before, after) = (stat(), stat())
        #expect(
            lstat(old + "/node_modules/pkg/index.js", &before) == 0
                && lstat(new + "/node_modules/pkg/index.js", &after) == 0)
        #expect(before.st_ino != after.st_ino && after.st_nlink == 1)
        #expect(
            (try? FileManager.default.destinationOfSymbolicLink(atPath: new + "/node_modules/pkg/bin/inside"))
                == "../pkg/index.js")
        #expect(!FileManager.default.fileExists(atPath: new + "/node_modules/out"), "a link out is not copied")
        #expect(second.stderr.contains("skipped node_modules/out: a symlink to /etc/hostname"), "\(second.stderr)")
        #expect(second.stderr.contains("skipped vendor: a symlink in the live release"), "\(second.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(second.stderr.contains("cache: 1 file (0.0 MiB)"), "\(second.stderr)")

        // A committed symlink on the way to a cached path is not written through.
        let escape = scratch.sub("escape")
        try FileManager.default.createDirectory(atPath: escape, withIntermediateDirectories: true)
        try repo.git("rm", "-q", "-r", "deps")
        let deps = repo.path + "/deps"
        try FileManager.default.createSymbolicLink(atPath: deps, withDestinationPath: escape)
        let c = try repo.commit("deps link")
        let third = try agent.run("deploy", ["--build", build, "--build-cache", "deps/cache,node_modules"])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(agent.currentSHA == c)
        #expect(third.stderr.contains("skipped deps/cache: deps in the new release is a symlink"), "\(third.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: escape).isEmpty)

        // A file the live commit tracks is never brought back by the cache once a commit deletes it.
        let tracked = try repo.commit("tracked", files: ["node_modules/tracked.js": "t"])
        #expect(try agent.run("deploy", settings).status == 0)
        #expect(agent.currentSHA == tracked)
        try repo.git("rm", "-q", "node_modules/tracked.js")
        let deleted = try repo.commit("delete tracked")
        let fourth = try agent.run("deploy", settings)
        #expect(fourth.status == 0, "\(fourth.stderr)")
        #expect(agent.currentSHA == deleted)
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/current/node_modules/tracked.js"))
        #expect(try String(contentsOfFile: agent.root + "/current/WARMTH", encoding: .utf8) == "warm\n")

        // Overlapping with shared, or with itself: refused up front.
        for (flags, word) in [
            (["--build-cache", "storage/cache", "--shared", "storage"], "overlaps shared"),
            (["--build-cache", "vendor,vendor/bin"], "overlap"),
        ] {
            let refused = try agent.run("deploy", flags)
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(refused.stderr.contains(word), "\(refused.stderr)")
        }
    }
}
