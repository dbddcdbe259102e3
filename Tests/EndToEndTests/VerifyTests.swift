import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 13, item 4: `verify`, the drift check.
@Suite("verify: the live release against its commit")
struct VerifyTests {
    @Test(
        "no drift: exit 0; edits, deletions, mode and type changes: exit 1, listed; build output counted; shared and REVISION not drift"
    )
    func drift() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try FileManager.default.createDirectory(atPath: agent.root + "/shared", withIntermediateDirectories: true)
        try "secret\n".write(toFile: agent.root + "/shared/.env", atomically: true, encoding: .utf8)
        try repo.commit(
            "a",
            files: [
                "app/main.txt": "hello\n", "run.sh": "#!/bin/sh\necho run\n", "static/style.css": "body {}\n",
                "gone.txt": "soon gone\n", ".env": "committed default\n",
            ])
        try FileManager.default.createSymbolicLink(atPath: repo.path + "/latest", withDestinationPath: "app/main.txt")
        try repo.commit("a link")
        let arguments = ["--shared", ".env", "--build", "mkdir -p build && echo out > build/out.txt"]
        #expect(try agent.run("deploy", arguments).status == 0)
        let clean = try agent.run("verify", ["--shared", ".env"])
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        #expect(clean.stdout.contains("0 modified, 0 missing, 0 type changed, 1 added"), "\(clean.stdout)")

        let release = "\(agent.root)/releases/\(try #require(agent.currentSHA))"
        try "changed on the server\n".write(toFile: release + "/app/main.txt", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: release + "/gone.txt")
        chmod(release + "/run.sh", 0o644)
        try FileManager.default.removeItem(atPath: release + "/latest")
        try "not a link\n".write(toFile: release + "/latest", atomically: true, encoding: .utf8)
        try "hot fix\n".write(toFile: release + "/static/extra.css", atomically: true, encoding: .utf8)
        let drifted = try agent.run("verify", ["--shared", ".env", "--added"])
        #expect(drifted.status == 1, "\(drifted.stdout) \(drifted.stderr)")
        for line in [
            "modified app/main.txt", "missing  gone.txt", "modified run.sh (mode 644, the commit has 755)",
            "type     latest (a symlink in the commit)", "added    static/extra.css", "added    build/out.txt",
        ] {
            #expect(drifted.stdout.contains(line), "\(line) not in \(drifted.stdout)")
        }
        #expect(!drifted.stdout.contains(".env") && !drifted.stdout.contains("REVISION"), "\(drifted.stdout)")
        let json = try agent.run("verify", ["--shared", ".env", "--json"])
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["missing"] as? [String] == ["gone.txt"])
        #expect((object?["added"] as? [String])?.sorted() == ["build/out.txt", "static/extra.css"])
    }

    /// Issue 23, item 4: read through a directory that became a symlink, an identical copy
    /// outside the release looked clean ("added (build output)", exit 0).
    @Test("a directory of the tree that is now a symlink out of the release, a file or gone: drift, exit 1, listed")
    func directoryReplaced() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit(
            "a",
            files: [
                "assets/logo.txt": "logo\n", "assets/img/a.txt": "a\n", "lib/x.txt": "x\n", "docs/guide/one.txt": "1\n",
                "docs/two.txt": "2\n", "keep.txt": "kept\n",
            ])
        #expect(try agent.run("deploy").status == 0)
        #expect(try agent.run("verify").status == 0)
        let release = "\(agent.root)/releases/\(try #require(agent.currentSHA))"
        // The same files outside the release: read through the link, every one would match.
        let outside = scratch.sub("outside")
        try FileManager.default.createDirectory(atPath: outside + "/img", withIntermediateDirectories: true)
        try "logo\n".write(toFile: outside + "/logo.txt", atomically: true, encoding: .utf8)
        try "a\n".write(toFile: outside + "/img/a.txt", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: release + "/assets")
        try FileManager.default.createSymbolicLink(atPath: release + "/assets", withDestinationPath: outside)
        let linked = try agent.run("verify")
        #expect(linked.status == 1, "\(linked.stdout) \(linked.stderr)")
        #expect(linked.stdout.contains("0 modified, 0 missing, 1 type changed, 0 added"), "\(linked.stdout)")
        #expect(linked.stdout.contains("type     assets (a directory in the commit, now a symlink to \(outside))"))

        try FileManager.default.removeItem(atPath: release + "/lib")
        try "not a directory\n".write(toFile: release + "/lib", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: release + "/docs")

        let drifted = try agent.run("verify", ["--added"])
        #expect(drifted.status == 1, "\(drifted.stdout) \(drifted.stderr)")
        for line in [
            "type     assets (a directory in the commit, now a symlink to \(outside))",
            "type     lib (a directory in the commit, now a file)", "missing  docs/",
        ] {
            #expect(drifted.stdout.contains(line), "\(line) not in \(drifted.stdout)")
        }
        #expect(drifted.stdout.contains("0 modified, 1 missing, 2 type changed, 0 added"), "\(drifted.stdout)")
        // Nothing under a replaced directory is read through it or listed as build output.
        for word in ["added", "assets/", "lib/", "docs/guide"] {
            #expect(
                !drifted.stdout.split(separator: "\n").dropFirst().contains { $0.contains(word) },
                "\(word): \(drifted.stdout)")
        }
        let json = try agent.run("verify", ["--json"])
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["missing"] as? [String] == ["docs/"])
        #expect((object?["typeChanged"] as? [String])?.count == 2, "\(json.stdout)")
    }
}
