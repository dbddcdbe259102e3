import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 14: deploy only commits signed by a trusted key, checked with ssh-keygen and gpgv.
@Suite("signed commits: verify-signatures")
struct SignatureTests {
    /// A repository whose commits are signed with an ssh key made here.
    static func sshRepo(_ scratch: Scratch) throws -> (GitFixture, key: String, allowed: String) {
        let repo = try GitFixture(at: scratch.sub("repo"))
        let key = scratch.sub("signing")
        try SSHServer.keygen(key)
        let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8).split(separator: " ")
        let allowed = scratch.sub("allowed_signers")
        try "deploy@example.invalid namespaces=\"git\" \(publicKey[0]) \(publicKey[1])\n".write(
            toFile: allowed, atomically: true, encoding: .utf8)
        try repo.git("config", "gpg.format", "ssh")
        try repo.git("config", "user.signingkey", key)
        return (repo, key, allowed)
    }

    private func signed(_ repo: GitFixture, _ message: String, key: String? = nil) throws -> String {
        try repo.git("add", "-A")
        var arguments = ["commit", "-q", "--allow-empty", "-m", message]
        if let key {
            arguments = ["-c", "user.signingkey=\(key)"] + arguments + ["-S"]
        } else {
            arguments.append("-S")
        }
        try repo.gitArgs(arguments)
        return try repo.git("rev-parse", "HEAD")
    }

    @Test(
        "ssh: a trusted signature deploys; unsigned, another key, a re-hashed payload and an expired principal refuse")
    func sshSignatures() throws {
        let scratch = Scratch()
        let (repo, _, allowed) = try Self.sshRepo(scratch)
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "ssh", "--allowed-signers", allowed]
        let good = try signed(repo, "signed")
        let first = try agent.run("deploy", verify)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == good)
        #expect(try agent.run("status").stdout.contains("signed: ssh SHA256:"))
        #expect(try agent.historyEvents().last?["signer"] as? String != nil)

        func refused(_ sha: String, _ words: [String], _ label: String) throws {
            let result = try agent.run("deploy", verify)
            #expect(result.status == 1, "\(label): \(result.stderr)")
            let line = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(line.contains(String(sha.prefix(12))), "\(label): \(line)")
            for word in words { #expect(line.contains(word), "\(label): \(line)") }
            #expect(!agent.releaseDirs().contains(sha), "\(label): checked out anyway")
            #expect(agent.currentSHA == good, "\(label)")
            #expect(agent.record(sha)?["quarantine"] != nil, "\(label): not quarantined")
            let poll = try agent.run("poll", verify)
            #expect(poll.status == 0 && poll.stderr.isEmpty, "\(label): poll retried it: \(poll.stderr)")
        }
        let unsigned = try repo.commit("unsigned")
        try refused(unsigned, ["unsigned"], "unsigned")

        let otherKey = scratch.sub("other")
        try SSHServer.keygen(otherKey)
        let other = try signed(repo, "signed by another key", key: otherKey)
        try refused(other, ["SHA256:", "not in allowed-signers"], "another key")

        // A valid signature over a different payload: the commit object edited and re-hashed.
        let base = try signed(repo, "to be tampered")
        let object = try repo.git("cat-file", "commit", base)
        let tamperedText = object.replacingOccurrences(of: "to be tampered", with: "tampered after signing") + "\n"
        let file = scratch.sub("tampered")
        try tamperedText.write(toFile: file, atomically: true, encoding: .utf8)
        let tampered = try repo.git("hash-object", "-t", "commit", "-w", "--literally", file)
        try repo.git("update-ref", "refs/heads/main", tampered)
        try refused(tampered, ["does not match"], "tampered")

        // A principal whose validity ended before the commit was made.
        let publicKey = try String(contentsOfFile: scratch.sub("signing.pub"), encoding: .utf8).split(separator: " ")
        try "deploy@example.invalid namespaces=\"git\",valid-before=\"20200101\" \(publicKey[0]) \(publicKey[1])\n"
            .write(toFile: allowed, atomically: true, encoding: .utf8)
        let expired = try signed(repo, "signed after the key expired")
        try refused(expired, ["expired"], "expired principal")

        // Rollback to a release on disk needs no check; a newer trusted commit lifts it all.
        try "deploy@example.invalid namespaces=\"git\" \(publicKey[0]) \(publicKey[1])\n".write(
            toFile: allowed, atomically: true, encoding: .utf8)
        let newer = try signed(repo, "newer signed")
        #expect(try agent.run("poll", verify).status == 0)
        #expect(agent.currentSHA == newer)
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == good)
    }

    @Test("gpg: a commit signed by a key in gpg-keyring deploys; one signed by another key is refused")
    func gpgSignatures() throws {
        let scratch = Scratch()
        let home = scratch.sub("gnupg")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        chmod(home, 0o700)
        var environment = ProcessInfo.processInfo.environment
        environment["GNUPGHOME"] = home
        func gpg(_ arguments: [String]) throws -> CommandResult {
            let result = try ShellCommand.run(
                ["/usr/bin/gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""] + arguments,
                environment: environment)
            #expect(result.status == 0, "gpg \(arguments): \(result.stderr)")
            return result
        }
        _ = try gpg(["--quick-gen-key", "Trusted <trusted@example.invalid>", "ed25519", "sign", "never"])
        _ = try gpg(["--quick-gen-key", "Stranger <stranger@example.invalid>", "ed25519", "sign", "never"])
        let keyring = scratch.sub("trusted.gpg")
        _ = try gpg(["--output", keyring, "--export", "trusted@example.invalid"])

        let repo = try GitFixture(at: scratch.sub("repo"))
        let wrapper = scratch.sub("gpg-wrapper")
        try "#!/bin/sh\nGNUPGHOME=\(home) exec /usr/bin/gpg --batch --pinentry-mode loopback --passphrase '' \"$@\"\n"
            .write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        try repo.git("config", "gpg.program", wrapper)
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "gpg", "--gpg-keyring", keyring]
        try repo.git("config", "user.signingkey", "trusted@example.invalid")
        try repo.git("commit", "-q", "--allow-empty", "-S", "-m", "signed by the trusted key")
        let good = try repo.git("rev-parse", "HEAD")
        let first = try agent.run("deploy", verify)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == good)
        try repo.git("config", "user.signingkey", "stranger@example.invalid")
        try repo.git("commit", "-q", "--allow-empty", "-S", "-m", "signed by a stranger")
        let stranger = try repo.git("rev-parse", "HEAD")
        let refused = try agent.run("deploy", verify)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("not in gpg-keyring"), "\(refused.stderr)")
        #expect(refused.stderr.contains(String(stranger.prefix(12))))
        #expect(agent.currentSHA == good)
    }

    @Test("start-up checks: ssh without allowed-signers, or an unreadable file, exits 2")
    func startUpChecks() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        let missing = try agent.run("deploy", ["--verify-signatures", "ssh"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("needs allowed-signers"), "\(missing.stderr)")
        let unreadable = try agent.run(
            "deploy", ["--verify-signatures", "ssh", "--allowed-signers", scratch.sub("nowhere")])
        #expect(unreadable.status == 2)
        #expect(unreadable.stderr.contains("cannot be read"), "\(unreadable.stderr)")
        #expect(try agent.run("deploy", ["--verify-signatures", "maybe"]).status == 2)
        #expect(!FileManager.default.fileExists(atPath: agent.root))
    }
}

@Suite("signed commits: annotated tags")
struct SignedTagTests {
    @Test("--ref on a signed annotated tag: the tag's signature counts, an unsigned tag of an unsigned commit refuses")
    func signedTag() throws {
        let scratch = Scratch()
        let (repo, _, allowed) = try SignatureTests.sshRepo(scratch)
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "ssh", "--allowed-signers", allowed]
        // The commit itself is unsigned: only the tag's signature can make it deployable.
        let sha = try repo.commit("release 1.0, commit unsigned")
        try repo.git("tag", "-s", "-m", "v1.0", "v1.0")
        let tagged = try agent.run("deploy", verify + ["--ref", "v1.0"])
        #expect(tagged.status == 0, "\(tagged.stderr)")
        #expect(agent.currentSHA == sha)
        #expect(tagged.stderr.contains("signed by ssh SHA256:"), "\(tagged.stderr)")
        let next = try repo.commit("release 1.1, commit unsigned")
        try repo.git("tag", "-a", "-m", "v1.1 unsigned", "v1.1")
        let unsigned = try agent.run("deploy", verify + ["--ref", "v1.1"])
        #expect(unsigned.status == 1, "\(unsigned.stderr)")
        #expect(unsigned.stderr.contains("unsigned"), "\(unsigned.stderr)")
        #expect(!agent.releaseDirs().contains(next))
        #expect(agent.currentSHA == sha)
    }
}
