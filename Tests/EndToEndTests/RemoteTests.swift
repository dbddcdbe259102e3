import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 11, item 3: real remotes and what each refusal says. sshd and git http-backend run
/// on 127.0.0.1; under CI=true a missing sshd fails the suite (the fixture throws).
@Suite("remotes: ssh through a real sshd, smart HTTP with a token", .serialized)
struct RemoteTests {
    @Test("ssh: a known host deploys; unknown and changed host keys and a refused key each say what to do")
    func sshRemote() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let sha = try repo.commit("a")
        let server = try SSHServer(dir: scratch.sub("sshd"))
        let knownHosts = scratch.sub("known_hosts")
        try server.knownHostsLine.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let agent = try Agent(root: scratch.sub("root"), repo: server.url(for: repo.path))
        let key = ["--ssh-key", server.clientKey]

        let known = try agent.run("deploy", key + ["--known-hosts", knownHosts])
        #expect(known.status == 0, "\(known.stderr)")
        #expect(agent.currentSHA == sha)

        try "".write(toFile: scratch.sub("empty_known_hosts"), atomically: true, encoding: .utf8)
        let unknown = try agent.run("poll", key + ["--known-hosts", scratch.sub("empty_known_hosts")])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("is not in \(scratch.sub("empty_known_hosts"))"), "\(unknown.stderr)")
        #expect(unknown.stderr.contains("ssh-keyscan -p \(server.port) 127.0.0.1"), "\(unknown.stderr)")
        #expect(unknown.stderr.split(separator: "\n").count == 1)

        try SSHServer.keygen(scratch.sub("other-host"))
        let other = try String(contentsOfFile: scratch.sub("other-host.pub"), encoding: .utf8).split(separator: " ")
        try "[127.0.0.1]:\(server.port) \(other[0]) \(other[1])\n".write(
            toFile: scratch.sub("changed_known_hosts"), atomically: true, encoding: .utf8)
        try repo.commit("b")
        let changed = try agent.run("deploy", key + ["--known-hosts", scratch.sub("changed_known_hosts")])
        #expect(changed.status == 1)
        #expect(changed.stderr.contains("man in the middle"), "\(changed.stderr)")
        #expect(changed.stderr.contains(scratch.sub("changed_known_hosts")))
        #expect(agent.currentSHA == sha)

        try SSHServer.keygen(scratch.sub("stranger"))
        let refused = try agent.run("deploy", ["--ssh-key", scratch.sub("stranger"), "--known-hosts", knownHosts])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refused ssh-key \(scratch.sub("stranger"))"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("libgit2"), "\(refused.stderr)")

        // The default known-hosts is ~/.ssh/known_hosts; a HOME without one gets the remedy.
        var homeless = agent
        homeless.environment["HOME"] = scratch.sub("home")
        try FileManager.default.createDirectory(atPath: scratch.sub("home"), withIntermediateDirectories: true)
        let noFile = try homeless.run("deploy", key)
        #expect(noFile.status == 1)
        #expect(noFile.stderr.contains(scratch.sub("home") + "/.ssh/known_hosts"), "\(noFile.stderr)")
        #expect(agent.currentSHA == sha)
    }

    @Test("smart HTTP with a token: the right one deploys, a wrong one is refused, it reaches no file or output")
    func tokenRemote() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("work"))
        let sha = try repo.commit("a")
        let bare = scratch.sub("served/app.git")
        let cloned = try ShellCommand.run(["/usr/bin/env", "git", "clone", "-q", "--bare", repo.path, bare])
        #expect(cloned.status == 0, "\(cloned.stderr)")
        let token = "tok-\(UUID().uuidString)"
        let server = try GitHTTPServer(projectRoot: scratch.sub("served"), token: token)
        try (token + "\n").write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        try "wrong-token\n".write(toFile: scratch.sub("wrong"), atomically: true, encoding: .utf8)
        let agent = try Agent(root: scratch.sub("root"), repo: server.url(for: "app.git"))

        let right = try agent.run("deploy", ["--token-file", scratch.sub("token")])
        #expect(right.status == 0, "\(right.stderr)")
        #expect(agent.currentSHA == sha)
        let wrong = try agent.run("poll", ["--token-file", scratch.sub("wrong")])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("refused the token in token-file \(scratch.sub("wrong"))"), "\(wrong.stderr)")
        for output in [right.stdout, right.stderr, wrong.stdout, wrong.stderr] {
            #expect(!output.contains(token))
        }
        let grep = try ShellCommand.run(["/bin/grep", "-r", "-l", "-F", token, agent.root])
        #expect(grep.stdout.isEmpty, "the token is on disk in \(grep.stdout)")
    }
}
