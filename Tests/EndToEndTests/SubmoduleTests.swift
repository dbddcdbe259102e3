import Foundation
import ReleaseAgentTestSupport
import Testing

/// SPEC "Repositories as they are", submodules: real repositories made with git, fetched by
/// the built binary through libgit2 (local paths, the test sshd, smart HTTP with a token).
@Suite("submodules: fetched into bare caches, written at their recorded commits")
struct SubmoduleTests {
    /// Records a gitlink at `path` for `commit` with `url` in `.gitmodules`, and commits.
    @discardableResult
    static func addGitlink(_ repo: GitFixture, path: String, url: String, commit: String) throws -> String {
        try FileManager.default.createDirectory(atPath: repo.path + "/" + path, withIntermediateDirectories: true)
        try repo.git("update-index", "--add", "--cacheinfo", "160000,\(commit),\(path)")
        let file = repo.path + "/.gitmodules"
        let old = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        try (old + "[submodule \"\(path)\"]\n\tpath = \(path)\n\turl = \(url)\n").write(
            toFile: file, atomically: true, encoding: .utf8)
        try repo.git("add", ".gitmodules")
        try repo.git("commit", "-q", "-m", "gitlink \(path)")
        return try repo.git("rev-parse", "HEAD")
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test("a submodule and a nested one by relative URLs: deployed, the pointer moved, then submodules off")
    func nestedRelative() throws {
        let scratch = Scratch()
        let nested = try GitFixture(at: scratch.sub("nested"))
        try nested.commit("n1", files: ["n.txt": "n1"])
        let sub = try GitFixture(at: scratch.sub("sub"))
        try sub.commit("s1", files: ["s.txt": "s1"])
        try sub.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", "../nested", "deps/nested")
        try sub.git("commit", "-q", "-m", "nested")
        let main = try GitFixture(at: scratch.sub("main"))
        try main.commit("m1", files: ["m.txt": "m1"])
        try main.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", "../sub", "lib/sub")
        let first = try main.commit("sub")
        let agent = try Agent(root: scratch.sub("root"), repo: main.path)

        let deploy = try agent.run("deploy")
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(agent.currentSHA == first)
        let current = agent.root + "/current"
        #expect(Self.read(current + "/lib/sub/s.txt") == "s1")
        #expect(Self.read(current + "/lib/sub/deps/nested/n.txt") == "n1")
        #expect(!FileManager.default.fileExists(atPath: current + "/lib/sub/.git"))
        let caches = try FileManager.default.contentsOfDirectory(atPath: agent.root + "/.release-agent/modules")
        #expect(caches.filter { $0.hasSuffix(".git") }.count == 2, "\(caches)")
        let verify = try agent.run("verify", ["--added"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("0 added"), "\(verify.stdout)")
        // verify finds the submodules' caches by the release's record, without the repo setting.
        try "changed".write(toFile: current + "/lib/sub/deps/nested/n.txt", atomically: false, encoding: .utf8)
        let bare = try ShellCommand.run([try Agent.locateBinary(), "verify", "--root", agent.root])
        #expect(bare.status == 1, "\(bare.stdout)\(bare.stderr)")
        #expect(bare.stdout.contains("modified lib/sub/deps/nested/n.txt"), "\(bare.stdout)")
        try "n1".write(toFile: current + "/lib/sub/deps/nested/n.txt", atomically: false, encoding: .utf8)

        // The pointer moved: the new commit of sub is fetched and written.
        try sub.commit("s2", files: ["s.txt": "s2"])
        try main.git("-C", "lib/sub", "pull", "-q", "origin", "main")
        let moved = try main.commit("move sub")
        let again = try agent.run("deploy")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(agent.currentSHA == moved)
        #expect(Self.read(current + "/lib/sub/s.txt") == "s2")
        #expect(Self.read(current + "/lib/sub/deps/nested/n.txt") == "n1")
        let dry = try agent.run("deploy", ["--dry-run", "--force"])
        #expect(dry.status == 0, "\(dry.stderr)")

        // Submodules off: the gitlink is an empty directory, as git leaves one it did not init.
        let off = try main.commit("m2", files: ["m.txt": "m2"])
        let plain = try agent.run("deploy", ["--no-submodules"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(agent.currentSHA == off)
        #expect(try FileManager.default.contentsOfDirectory(atPath: current + "/lib/sub").isEmpty)
    }

    @Test("with subdir: a submodule inside it is checked out, one outside it is not fetched")
    func insideSubdir() throws {
        let scratch = Scratch()
        let lib = try GitFixture(at: scratch.sub("lib"))
        let libSHA = try lib.commit("l1", files: ["l.txt": "l1"])
        let mono = try GitFixture(at: scratch.sub("mono"))
        try mono.commit("one", files: ["services/api/a.txt": "api", "services/web/w.txt": "web"])
        try Self.addGitlink(mono, path: "services/api/vendor/lib", url: "../lib", commit: libSHA)
        let both = try Self.addGitlink(
            mono, path: "services/web/vendor/far", url: "https://127.0.0.1:9/far.git", commit: libSHA)
        let agent = try Agent(root: scratch.sub("root"), repo: mono.path)
        let result = try agent.run("deploy", ["--subdir", "services/api"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == both)
        #expect(Self.read(agent.root + "/current/vendor/lib/l.txt") == "l1")
        #expect(result.stderr.contains("with 1 submodule"), "\(result.stderr)")
        #expect(try agent.run("verify", ["--subdir", "services/api"]).status == 0)
    }

    @Test("a refused URL and an unreachable one fail the checkout in one line naming path and URL; current untouched")
    func refusedAndUnreachable() throws {
        let scratch = Scratch()
        let lib = try GitFixture(at: scratch.sub("lib"))
        let libSHA = try lib.commit("l1", files: ["l.txt": "l1"])
        let main = try GitFixture(at: scratch.sub("main"))
        let good = try main.commit("m1", files: ["m.txt": "m1"])
        let agent = try Agent(root: scratch.sub("root"), repo: main.path)
        #expect(try agent.run("deploy").status == 0)
        let marker = scratch.sub("pwned")

        for (url, reason) in [
            ("file://" + lib.path, "is not https://, ssh://, scp form or relative"),
            (lib.path, "is not https://, ssh://, scp form or relative"),
            ("ext::sh -c touch% \(marker)", "is not https://, ssh://, scp form or relative"),
            ("http://127.0.0.1:9/lib.git", "is not https://, ssh://, scp form or relative"),
            ("../../../../../../../../../../../x", "climbs above the root"),
        ] {
            try main.git("reset", "-q", "--hard", good)
            try? FileManager.default.removeItem(atPath: main.path + "/.gitmodules")
            let bad = try Self.addGitlink(main, path: "vendor/lib", url: url, commit: libSHA)
            let result = try agent.run("deploy")
            #expect(result.status == 1, "\(url): \(result.stderr)")
            let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
            #expect(errors.count == 1, "\(url): \(result.stderr)")
            #expect(errors.first?.contains("submodule vendor/lib url \(url)") == true, "\(url): \(result.stderr)")
            #expect(errors.first?.contains(reason) == true, "\(url): \(result.stderr)")
            #expect(agent.currentSHA == good)
            #expect(!agent.releaseDirs().contains(bad))
            #expect(!FileManager.default.fileExists(atPath: marker))
        }

        // submodules-allow-local admits the local path.
        try main.git("reset", "-q", "--hard", good)
        try? FileManager.default.removeItem(atPath: main.path + "/.gitmodules")
        let local = try Self.addGitlink(main, path: "vendor/lib", url: "file://" + lib.path, commit: libSHA)
        let allowed = try agent.run("deploy", ["--submodules-allow-local"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(agent.currentSHA == local)
        #expect(Self.read(agent.root + "/current/vendor/lib/l.txt") == "l1")

        // Unreachable: the environment's fault, said in one line; not quarantined.
        try main.git("reset", "-q", "--hard", good)
        try? FileManager.default.removeItem(atPath: main.path + "/.gitmodules")
        let far = try Self.addGitlink(main, path: "ext/far", url: "https://127.0.0.1:9/far.git", commit: libSHA)
        let unreachable = try agent.run("deploy")
        #expect(unreachable.status == 1, "\(unreachable.stderr)")
        let errors = unreachable.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(unreachable.stderr)")
        #expect(
            errors.first?.contains("submodule ext/far (https://127.0.0.1:9/far.git) cannot be fetched") == true,
            "\(unreachable.stderr)")
        #expect(agent.currentSHA == local)
        #expect(agent.record(far)?["quarantine"] == nil, "an unreachable host is not the commit's fault")
        #expect(!agent.releaseDirs().contains(far))
    }

    @Test("over ssh with the deploy key and known hosts, and over smart HTTP with a token (relative URL)")
    func sshAndHTTP() throws {
        _ = try TestTools.require("sshd", package: "openssh-server")
        let scratch = Scratch()
        let lib = try GitFixture(at: scratch.sub("lib"))
        let libSHA = try lib.commit("l1", files: ["l.txt": "from lib"])

        // ssh: the main remote and the submodule both through the test sshd.
        let server = try SSHServer(dir: scratch.sub("sshd"))
        let knownHosts = scratch.sub("known_hosts")
        try server.knownHostsLine.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let viaSSH = try GitFixture(at: scratch.sub("main-ssh"))
        try viaSSH.commit("m1", files: ["m.txt": "m1"])
        let sshSHA = try Self.addGitlink(viaSSH, path: "lib", url: server.url(for: lib.path), commit: libSHA)
        let sshAgent = try Agent(root: scratch.sub("root-ssh"), repo: server.url(for: viaSSH.path))
        let key = ["--ssh-key", server.clientKey, "--known-hosts", knownHosts]
        let overSSH = try sshAgent.run("deploy", key)
        #expect(overSSH.status == 0, "\(overSSH.stderr)")
        #expect(sshAgent.currentSHA == sshSHA)
        #expect(Self.read(sshAgent.root + "/current/lib/l.txt") == "from lib")
        // The submodule's host key is checked as the main remote's: an empty known_hosts refuses it.
        try "".write(toFile: scratch.sub("empty"), atomically: true, encoding: .utf8)
        let moved = try lib.commit("l2", files: ["l.txt": "l2"])
        try viaSSH.git("update-index", "--cacheinfo", "160000,\(moved),lib")
        try viaSSH.git("commit", "-q", "-m", "move")
        let unknown = try sshAgent.run(
            "deploy", ["--ssh-key", server.clientKey, "--known-hosts", scratch.sub("empty")])
        #expect(unknown.status == 1)
        #expect(sshAgent.currentSHA == sshSHA)

        // Smart HTTP: main.git and lib.git served with a token; the submodule's URL is relative.
        let served = scratch.sub("served")
        for (source, name) in [(lib.path, "lib.git")] {
            let cloned = try ShellCommand.run([
                "/usr/bin/env", "git", "clone", "-q", "--bare", source, served + "/" + name,
            ])
            #expect(cloned.status == 0, "\(cloned.stderr)")
        }
        let viaHTTP = try GitFixture(at: scratch.sub("main-http"))
        try viaHTTP.commit("m1", files: ["m.txt": "m1"])
        let httpSHA = try Self.addGitlink(viaHTTP, path: "vendor/lib", url: "../lib.git", commit: libSHA)
        let cloned = try ShellCommand.run([
            "/usr/bin/env", "git", "clone", "-q", "--bare", viaHTTP.path, served + "/main.git",
        ])
        #expect(cloned.status == 0, "\(cloned.stderr)")
        let token = "tok-\(UUID().uuidString)"
        let http = try GitHTTPServer(projectRoot: served, token: token)
        try (token + "\n").write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        let httpAgent = try Agent(root: scratch.sub("root-http"), repo: http.url(for: "main.git"))
        let overHTTP = try httpAgent.run("deploy", ["--token-file", scratch.sub("token")])
        #expect(overHTTP.status == 0, "\(overHTTP.stderr)")
        #expect(httpAgent.currentSHA == httpSHA)
        #expect(Self.read(httpAgent.root + "/current/vendor/lib/l.txt") == "from lib")
        let grep = try ShellCommand.run(["/bin/grep", "-r", "-l", "-F", token, httpAgent.root])
        #expect(grep.stdout.isEmpty, "the token is on disk in \(grep.stdout)")
    }
}
