import Foundation
import ReleaseAgentTestSupport
import Testing

/// A gpg home made in the test: keys, signing wrappers for git (now, or at a faked time),
/// and the keyring of trusted public keys that the agent reads (`gpg-keyring`).
struct GPGHome {
    let home: String
    let scratch: Scratch
    var keyring: String { scratch.sub("trusted.gpg") }

    init(_ scratch: Scratch) throws {
        self.scratch = scratch
        home = scratch.sub("gnupg")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        chmod(home, 0o700)
    }

    @discardableResult
    func gpg(_ arguments: [String], input: String? = nil) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["GNUPGHOME"] = home
        var command = ["/usr/bin/gpg", "--pinentry-mode", "loopback", "--passphrase", ""] + arguments
        if let input {
            // gpg --gen-revoke asks its questions even in batch mode: answered on fd 0.
            let answers = scratch.sub("answers-\(UUID().uuidString.prefix(8))")
            try input.write(toFile: answers, atomically: true, encoding: .utf8)
            command = ["/bin/sh", "-c", "exec \"$0\" \"$@\" < \(answers)"] + command
        } else {
            command.insert("--batch", at: 1)
        }
        let result = try ShellCommand.run(command, environment: environment)
        guard result.status == 0 else {
            throw FixtureError("gpg \(arguments) exited \(result.status): \(result.stderr.split(separator: "\n"))")
        }
        return result.stdout
    }

    /// A signing-only key; `at` fakes the clock (gpg's --faked-system-time, e.g. 20200101T000000).
    func key(_ email: String, expires: String = "never", at time: String? = nil) throws -> String {
        let clock = time.map { ["--faked-system-time", $0] } ?? []
        try gpg(clock + ["--quick-gen-key", "\(email) <\(email)>", "ed25519", "sign", expires])
        let listing = try gpg(["--with-colons", "--list-keys", email])
        let fpr = listing.split(separator: "\n").first { $0.hasPrefix("fpr:") }?.split(separator: ":").last
        return try #require(fpr.map(String.init))
    }

    func trust(_ emails: [String]) throws {
        try gpg(["--yes", "--output", keyring, "--export"] + emails)
    }

    /// Revokes `email` with `gpg --gen-revoke` and imports the revocation into the keyring.
    func revoke(_ email: String) throws {
        let certificate = scratch.sub("\(email).rev")
        try gpg(
            ["--no-tty", "--command-fd", "0", "--yes", "--armor", "--output", certificate, "--gen-revoke", email],
            input: "y\n1\nCompromised\n\ny\n")
        // Without the trust check: the keyring lacks keys the home trusts (gpg would exit 2).
        try gpg(["--no-auto-check-trustdb", "--no-default-keyring", "--keyring", keyring, "--import", certificate])
    }

    /// A gpg.program for git: signs now, or at a faked time with extra options.
    func wrapper(_ name: String, extra: String = "") throws -> String {
        let path = scratch.sub("gpg-\(name)")
        try
            "#!/bin/sh\nGNUPGHOME=\(home) exec /usr/bin/gpg --batch --pinentry-mode loopback --passphrase '' \(extra) \"$@\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func stopAgent() {
        _ = try? ShellCommand.run(["/usr/bin/env", "GNUPGHOME=\(home)", "gpgconf", "--kill", "gpg-agent"])
    }
}

/// Issue 23, item 1: gpgv exits 0 and prints VALIDSIG beside REVKEYSIG or EXPKEYSIG; each
/// "do not trust" status line refuses the commit.
@Suite("signed commits: revoked, expired and bad gpg signatures")
struct SignatureRevocationTests {
    @Test("gpg: a revoked key, an expired key, an expired signature, a bad signature and an unknown key refuse")
    func refusals() throws {
        let scratch = Scratch()
        let gpg = try GPGHome(scratch)
        defer { gpg.stopAgent() }
        let trusted = try gpg.key("trusted@example.invalid")
        let revoked = try gpg.key("revoked@example.invalid")
        let expired = try gpg.key("expired@example.invalid", expires: "1d", at: "20200101T000000")
        let dated = try gpg.key("dated@example.invalid", at: "20200101T000000")
        let stranger = try gpg.key("stranger@example.invalid")
        try gpg.trust([
            "trusted@example.invalid", "revoked@example.invalid", "expired@example.invalid", "dated@example.invalid",
        ])
        let now = try gpg.wrapper("now")
        let in2020 = try gpg.wrapper("2020", extra: "--faked-system-time 20200101T010000")
        let shortSignature = try gpg.wrapper(
            "2020-expiring", extra: "--faked-system-time 20200101T010000 --default-sig-expire 1d")

        let repo = try GitFixture(at: scratch.sub("repo"))
        func signed(_ message: String, by email: String, with program: String) throws -> String {
            try repo.gitArgs([
                "-c", "gpg.program=\(program)", "-c", "user.signingkey=\(email)", "commit", "-q", "--allow-empty", "-S",
                "-m", message,
            ])
            return try repo.git("rev-parse", "HEAD")
        }
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let verify = ["--verify-signatures", "gpg", "--gpg-keyring", gpg.keyring]
        // Signed by the key before it was revoked: trusted then.
        let good = try signed("signed while the key was good", by: "revoked@example.invalid", with: now)
        let first = try agent.run("deploy", verify)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == good)

        func refused(_ sha: String, key: String, _ words: [String], _ label: String) throws {
            let result = try agent.run("deploy", verify)
            #expect(result.status == 1, "\(label): \(result.stderr)")
            let line = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(line.contains(String(sha.prefix(12))), "\(label): \(line)")
            #expect(line.contains(key), "\(label): the key \(key) is not named: \(line)")
            for word in words { #expect(line.contains(word), "\(label): \(line)") }
            #expect(!agent.releaseDirs().contains(sha), "\(label): checked out anyway")
            #expect(agent.currentSHA == good, "\(label): current moved")
            #expect(agent.record(sha)?["quarantine"] != nil, "\(label): not quarantined")
            let poll = try agent.run("poll", verify)
            #expect(poll.status == 0 && poll.stderr.isEmpty, "\(label): poll retried it: \(poll.stderr)")
            #expect(agent.currentSHA == good, "\(label): poll deployed it")
        }

        try gpg.revoke("revoked@example.invalid")
        let afterRevocation = try signed("signed by a revoked key", by: "revoked@example.invalid", with: now)
        try refused(afterRevocation, key: revoked, ["revoked", "REVKEYSIG"], "revoked key")

        let byExpired = try signed(
            "signed by a key that has expired since", by: "expired@example.invalid", with: in2020)
        try refused(byExpired, key: expired, ["key is expired", "EXPKEYSIG"], "expired key")

        let expiring = try signed("a signature that expired", by: "dated@example.invalid", with: shortSignature)
        try refused(expiring, key: dated, ["signature is expired", "EXPSIG"], "expired signature")

        let unknown = try signed("signed by a key not in the keyring", by: "stranger@example.invalid", with: now)
        try refused(unknown, key: stranger, ["not in gpg-keyring", "NO_PUBKEY"], "unknown key")

        // A good signature by a trusted key over a different payload: the object re-hashed.
        let base = try signed("to be tampered", by: "trusted@example.invalid", with: now)
        let object = try repo.git("cat-file", "commit", base)
        let file = scratch.sub("tampered")
        try (object.replacingOccurrences(of: "to be tampered", with: "tampered after signing") + "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let tampered = try repo.git("hash-object", "-t", "commit", "-w", "--literally", file)
        try repo.git("update-ref", "refs/heads/main", tampered)
        try refused(tampered, key: "gpg ", ["does not match", "BADSIG"], "bad signature")

        // A newer commit signed by a trusted key lifts it all.
        let newer = try signed("signed by the trusted key", by: "trusted@example.invalid", with: now)
        let last = try agent.run("poll", verify)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(agent.currentSHA == newer)
        #expect(try agent.run("status").stdout.contains("signed: gpg \(trusted)"))
    }
}
