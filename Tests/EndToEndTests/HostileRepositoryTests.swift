import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("torture: hostile repositories and the disk")
struct HostileRepositoryTests {
    @Test("an empty repository and a deleted branch are one clear line each; nothing changes")
    func emptyAndDeleted() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let empty = try agent.run("deploy")
        #expect(empty.status == 1)
        #expect(empty.stderr.hasPrefix("Error: branch 'main' does not exist on"), "\(empty.stderr)")
        #expect(agent.currentSHA == nil)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        try repo.git("checkout", "-q", "-b", "other")
        try repo.git("branch", "-q", "-D", "main")
        let deleted = try agent.run("poll")
        #expect(deleted.status == 1)
        #expect(deleted.stderr.contains("branch 'main' does not exist"))
        #expect(agent.currentSHA == a)
    }

    @Test("min-free-space refuses to check out below the threshold and leaves current alone")
    func minFreeSpace() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy", ["--min-free-space", "1M"]).status == 0)
        let b = try repo.commit("b")
        let refused = try agent.run("deploy", ["--min-free-space", "1000000T"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("below min-free-space"), "\(refused.stderr)")
        #expect(agent.currentSHA == a)
        #expect(!agent.releaseDirs().contains(b))
    }

    @Test("file names with spaces, unicode and newlines are written as named")
    func oddNames() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let names = ["with space.txt", "ünïcødé/日本.txt", "new\nline.txt"]
        let sha = try repo.commit("odd", files: Dictionary(uniqueKeysWithValues: names.map { ($0, "x") }))
        #expect(try agent.run("deploy").status == 0)
        for name in names {
            #expect(FileManager.default.fileExists(atPath: "\(agent.root)/releases/\(sha)/\(name)"), "\(name)")
        }
    }
}

@Suite("torture: crafted trees, huge files, a full disk")
struct CraftedTreeTests {
    @Test(
        "a tree with '..', '.', '.git' or a name given twice is refused: nothing is written outside, current stays",
        arguments: ["..", ".", ".git", ".GIT", "twice"])
    func unsafeNames(_ name: String) throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a", files: ["app.txt": "a"])
        #expect(try agent.run("deploy").status == 0)

        let blob = try repo.blob("escaped\n")
        let inner = try repo.rawTree([("100644", "escaped", blob)])
        let entries: [(mode: String, name: String, id: String)] =
            name == "twice"
            ? [("120000", "dir", try repo.blob("/tmp")), ("40000", "dir", inner)]
            : [("40000", name, inner)]
        let evil = try repo.commitTree(try repo.rawTree(entries), message: "evil \(name)")

        let refused = try agent.run("deploy")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("has an unsafe path"), "\(refused.stderr)")
        #expect(agent.currentSHA == a)
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/releases/escaped"))
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/escaped"))
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/releases/\(evil)"))
        // The commit's fault: quarantined, so poll does not try it again.
        #expect(try agent.run("poll").stdout.isEmpty)
        #expect(agent.recordState(evil) == "failed")
    }

    @Test("a 48 MiB file is checked out byte for byte")
    func hugeFile() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 48 << 20)
        for index in stride(from: 0, to: bytes.count, by: 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { word in
                for offset in 0..<8 { bytes[index + offset] = word[offset] }
            }
        }
        let data = Data(bytes)
        try data.write(to: URL(fileURLWithPath: repo.path + "/huge.bin"))
        let sha = try repo.commit("huge")
        let result = try agent.run("deploy")
        #expect(result.status == 0, "\(result.stderr)")
        let written = FileManager.default.contents(atPath: "\(agent.root)/releases/\(sha)/huge.bin")
        #expect(written == data)
    }

    @Test("the disk fills during checkout: one clear line, current untouched, the partial release removed")
    func diskFull() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let mountPoint = scratch.sub("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // A 3 MiB file system of the test's own; without mount rights, a 3 MiB file-size limit.
        let mounted =
            try ShellCommand.run(["/bin/mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint]).status == 0
        defer { if mounted { _ = try? ShellCommand.run(["/bin/umount", "-l", mountPoint]) } }
        var agent = try Agent(root: mountPoint + "/root", repo: repo.path)
        let a = try repo.commit("a", files: ["app.txt": "a"])
        #expect(try agent.run("deploy").status == 0)

        // 8 MB of one byte: a tiny pack, a checkout that does not fit.
        let b = try repo.commit("b", files: ["big.txt": String(repeating: "x", count: 8_000_000)])
        if !mounted {
            agent.wrapper = ["/bin/sh", "-c", "ulimit -f 6144; exec \"$@\"", "sh"]
        }
        let full = try agent.run("deploy")
        #expect(full.status == 1)
        #expect(
            full.stderr.contains("No space left on device") || full.stderr.contains("File too large"), "\(full.stderr)")
        #expect(full.stderr.contains("check free space"))
        #expect(full.stderr.components(separatedBy: "\n").filter { !$0.isEmpty }.count <= 2, "\(full.stderr)")
        #expect(agent.currentSHA == a)
        #expect(FileManager.default.contents(atPath: agent.root + "/current/app.txt") == Data("a".utf8))
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/releases/\(b)"))
        #expect(agent.recordState(b) == "failed")
        // Not the commit's fault: not quarantined, so the next trigger tries it again.
        #expect(agent.record(b)?["quarantine"] == nil)

        let c = try repo.commit("c", remove: ["big.txt"])
        agent.wrapper = []
        #expect(try agent.run("deploy").status == 0)
        #expect(agent.currentSHA == c)
        #expect(try agent.run("status").status == 0)
    }

    @Test("a damaged git cache: the checkout names the cache and the fix, not libgit2's text; the fix works")
    func damagedCache() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a", files: ["a.txt": "a\n"])
        #expect(try agent.run("deploy").status == 0)
        // Incompressible content, so that the middle of the new pack is this blob's data.
        let noise = (0..<4000).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined(separator: "\n")
        let b = try repo.commit("b", files: ["noise.txt": noise])
        #expect(try agent.run("status", ["--fetch"]).status == 0)
        let packs = agent.root + "/.release-agent/repo.git/objects/pack"
        func modified(_ path: String) -> Date {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        }
        let newest = try FileManager.default.contentsOfDirectory(atPath: packs).filter { $0.hasSuffix(".pack") }
            .map { packs + "/" + $0 }.max { modified($0) < modified($1) }
        let pack = try #require(newest)
        chmod(pack, 0o644)
        let handle = try #require(FileHandle(forUpdatingAtPath: pack))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2)
        handle.write(Data(repeating: 0, count: 200))
        try handle.close()

        let failed = try agent.run("deploy")
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(
            failed.stderr.contains(
                "an object is missing or damaged in the git cache \(agent.root)/.release-agent/repo.git; delete that directory"
            ),
            "\(failed.stderr)")
        #expect(failed.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "\(failed.stderr)")
        #expect(agent.currentSHA == a)
        try FileManager.default.removeItem(atPath: agent.root + "/.release-agent/repo.git")
        #expect(try agent.run("deploy").status == 0)
        #expect(agent.currentSHA == b)

        // Over http, a damaged pack fails the fetch itself: the line names the cache, not the
        // remote (it said "cannot fetch ... (libgit2 error class 9, code -3); check the repo
        // setting"). A cache that is no longer a repository is named too.
        let token = "tok-\(UUID().uuidString)"
        try (token + "\n").write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        let server = try GitHTTPServer(
            projectRoot: scratch.sub("."), token: token, requestLog: scratch.sub("requests.log"))
        let remote = try Agent(root: scratch.sub("http-root"), repo: server.url(for: "repo/.git"))
        let http = ["--token-file", scratch.sub("token")]
        #expect(try remote.run("deploy", http).status == 0)
        let cache = remote.root + "/.release-agent/repo.git"
        for pack in try FileManager.default.contentsOfDirectory(atPath: cache + "/objects/pack")
        where pack.hasSuffix(".pack") {
            #expect(truncate(cache + "/objects/pack/" + pack, 100) == 0)
        }
        let c = try repo.commit("c")
        let fetch = try remote.run("deploy", http)
        #expect(fetch.status == 1, "\(fetch.stderr)")
        #expect(fetch.stderr.contains("damaged in the git cache \(cache); delete that directory"), "\(fetch.stderr)")
        #expect(remote.currentSHA == b)
        try FileManager.default.removeItem(atPath: cache + "/refs")
        let open = try remote.run("deploy", http)
        #expect(
            open.stderr.contains("the git cache \(cache) is damaged (no longer a git repository)"), "\(open.stderr)")
        try FileManager.default.removeItem(atPath: cache)
        #expect(try remote.run("deploy", http).status == 0)
        #expect(remote.currentSHA == c)
    }
}
