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
}
