import Foundation
import ReleaseAgent

/// Commit signatures, verified with the tools git itself uses (`ssh-keygen -Y verify`,
/// `gpgv`), never crypto of our own. Each tool runs without a shell, bounded in time.
struct SignatureCheck {
    let policy: SignaturePolicy
    let allowedSigners: String?
    let gpgKeyring: String?
    let scratch: String

    typealias Verdict = SignatureVerdict

    /// What was signed: the signature, the bytes it covers, and the signer's time.
    struct Signed {
        var signature: Data
        var payload: Data
        var time: Int64
    }

    func verify(_ id: CommitID, in repository: Repository) throws -> Verdict {
        guard let signed = try repository.commitSignature(id) else {
            return .refused(key: "unsigned", why: "the commit has no signature")
        }
        return try verify(Signed(signature: signed.signature, payload: signed.payload, time: signed.committerTime))
    }

    func verify(_ signed: Signed) throws -> Verdict {
        let armor = String(decoding: signed.signature.prefix(40), as: UTF8.self)
        let isSSH = armor.hasPrefix("-----BEGIN SSH SIGNATURE-----")
        let isGPG = armor.hasPrefix("-----BEGIN PGP SIGNATURE-----")
        switch (isSSH, isGPG, policy) {
        case (true, _, .ssh), (true, _, .any):
            guard let allowedSigners else { return .refused(key: "ssh", why: "no allowed-signers is set") }
            return try ssh(signed.signature, signed.payload, time: signed.time, allowed: allowedSigners)
        case (_, true, .gpg), (_, true, .any):
            guard let gpgKeyring else { return .refused(key: "gpg", why: "no gpg-keyring is set") }
            return try gpg(signed.signature, signed.payload, keyring: gpgKeyring)
        case (true, _, _):
            return .refused(key: "ssh", why: "an ssh signature, but verify-signatures is \(policy.rawValue)")
        case (_, true, _):
            return .refused(key: "gpg", why: "a gpg signature, but verify-signatures is \(policy.rawValue)")
        default: return .refused(key: "unknown", why: "a signature of a kind release-agent does not know")
        }
    }

    /// The policy file must be readable now: one that is missing or unreadable for a moment
    /// (a configuration run replacing it) is the machine's fault, never the commit's. Nothing
    /// is quarantined, and the next trigger checks again.
    static func requireReadable(_ path: String, setting: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        var info = stat()
        defer { if fd >= 0 { close(fd) } }
        guard fd >= 0, fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            let cause = fd < 0 ? String(cString: strerror(errno)) : "not a regular file"
            throw AgentError.environment(
                "\(setting) \(path) cannot be read (\(cause)); no commit is judged without it, nothing was quarantined, and the next trigger checks again: restore the file"
            )
        }
    }

    private func ssh(_ signature: Data, _ payload: Data, time: Int64, allowed: String) throws -> Verdict {
        try Self.requireReadable(allowed, setting: "allowed-signers")
        let files = try write(signature, payload)
        defer { files.forEach { unlink($0) } }
        let keygen = "/usr/bin/ssh-keygen"
        let fingerprint = try Tool.run(
            [keygen, "-Y", "check-novalidate", "-n", "git", "-s", files[0]], input: files[1])
        let key =
            fingerprint.stdout.components(separatedBy: " ").first { $0.hasPrefix("SHA256:") }?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "an unreadable ssh key"
        guard fingerprint.status == 0 else { return .refused(key: key, why: "the signature does not match the commit") }
        // Validity bounds in the file are judged at the committer's time, as git does.
        func stamp(_ time: Int64) -> String {
            var parts = tm()
            var seconds = time_t(time)
            gmtime_r(&seconds, &parts)
            return String(
                format: "%04d%02d%02d%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec)
        }
        func principals(at time: Int64) throws -> String? {
            let found = try Tool.run(
                [keygen, "-Y", "find-principals", "-s", files[0], "-f", allowed, "-O", "verify-time=\(stamp(time))"])
            return found.status == 0 ? found.stdout.split(separator: "\n").first.map(String.init) : nil
        }
        guard let principal = try principals(at: time) else {
            // Known at some other time: the key's validity in the file excludes the commit's time.
            let probes: [Int64] = [
                86400 * 365, 946_684_800, 1_577_836_800, Int64(Date().timeIntervalSince1970), 4_102_444_800,
            ]
            if let known = try probes.lazy.compactMap({ try principals(at: $0) }).first {
                return .refused(
                    key: key,
                    why:
                        "allowed-signers does not accept it for \(known) at the commit's time (expired or not yet valid)"
                )
            }
            return .refused(key: key, why: "the key is not in allowed-signers \(allowed)")
        }
        let verified = try Tool.run(
            [
                keygen, "-Y", "verify", "-f", allowed, "-I", principal, "-n", "git", "-s", files[0], "-O",
                "verify-time=\(stamp(time))",
            ],
            input: files[1])
        guard verified.status == 0 else {
            return .refused(
                key: key,
                why:
                    "allowed-signers does not accept it for \(principal) at the commit's time (expired or not yet valid)"
            )
        }
        return .trusted(signer: "ssh \(key) (\(principal))")
    }

    private func gpg(_ signature: Data, _ payload: Data, keyring: String) throws -> Verdict {
        try Self.requireReadable(keyring, setting: "gpg-keyring")
        let files = try write(signature, payload)
        defer { files.forEach { unlink($0) } }
        let result = try Tool.run(["/usr/bin/gpgv", "--status-fd", "1", "--keyring", keyring, files[0], files[1]])
        switch GPGStatus.judge(result.stdout, exit: result.status, keyring: keyring) {
        case .trusted(let fingerprint): return .trusted(signer: "gpg \(fingerprint)")
        case .refused(let key, let why): return .refused(key: key, why: why)
        }
    }

    private func write(_ signature: Data, _ payload: Data) throws -> [String] {
        let base = scratch + "/verify-\(getpid())-\(UUID().uuidString.prefix(8))"
        let files = [base + ".sig", base + ".payload"]
        guard FileManager.default.createFile(atPath: files[0], contents: signature),
            FileManager.default.createFile(atPath: files[1], contents: payload)
        else { throw AgentError.environment("cannot write under \(scratch) to check a signature; check free space") }
        return files
    }
}

/// A tool run without a shell: argv, stdin from a file, output captured, killed after `timeout`.
enum Tool {
    struct Result {
        var status: Int32
        var stdout: String
    }

    static func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(20)) throws -> Result {
        let out = NSTemporaryDirectory() + "/ra-tool-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { unlink(out) }
        // stdout and stderr together: ssh-keygen says what it found on either.
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError.environment("cannot write \(out); check free space") }
        let spawned = Spawn.start(arguments, output: .descriptor(fd), newProcessGroup: true, input: input)
        close(fd)
        guard case .success(let pid) = spawned else {
            throw AgentError.environment("cannot run \(arguments[0]); install it (openssh-client, gpgv)")
        }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if ContinuousClock.now > deadline {
                ProcessRunner.killGroup(pid, grace: .seconds(1))
                waitpid(pid, &status, 0)
                throw AgentError.environment("\(arguments[0]) did not finish within \(timeout.short)")
            }
            usleep(5_000)
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }
}
