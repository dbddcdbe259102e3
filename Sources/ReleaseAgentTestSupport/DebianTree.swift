import Foundation
import ReleaseAgent

/// A Debian 12 tree made by debootstrap once per machine, for the seed tests that need a real
/// systemd as PID 1 (booted with systemd-nspawn) or a Docker base image (`docker import`).
/// Cached under `/var/cache/release-agent-tests/` by a content key (suite, mirror, packages), so
/// a second run, or a second suite, does not debootstrap again; made under a temporary name and
/// renamed, under an flock, so a run killed half-way leaves nothing that looks complete.
public enum DebianTree {
    public static let suite = "bookworm"
    /// What the tests need inside: systemd as init with polkitd for the agent's user, the agent's
    /// own library (libgit2), python3 for the demo app, curl for the checks inside.
    public static let packages = [
        "systemd", "systemd-sysv", "dbus", "libpam-systemd", "polkitd", "libgit2-1.5", "adduser", "python3", "curl",
        "ca-certificates", "procps",
    ]
    /// `RA_TEST_CACHE` moves it (to try a cold run on a machine that has the cache).
    public static let cacheRoot =
        ProcessInfo.processInfo.environment["RA_TEST_CACHE"] ?? "/var/cache/release-agent-tests"

    /// The tree's path, made now if no earlier run made it.
    public static func ensure() throws -> String {
        let debootstrap = try TestTools.require("debootstrap", package: "debootstrap")
        let mirror = aptMirror()
        let key = contentKey(mirror: mirror)
        let path = "\(cacheRoot)/debian-\(suite)-\(key)"
        try FileManager.default.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        let lock = open("\(cacheRoot)/debian.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw FixtureError("cannot open \(cacheRoot)/debian.lock: errno \(errno)") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw FixtureError("cannot lock \(cacheRoot)/debian.lock") }
        if FileManager.default.fileExists(atPath: path + "/.complete") { return path }
        let partial = "\(path).partial"
        _ = try? ShellCommand.run(["rm", "-rf", partial, path], timeout: 300)
        let result = try ShellCommand.run(
            [
                debootstrap, "--variant=minbase", "--include=" + packages.joined(separator: ","), suite, partial,
                mirror,
            ], timeout: 900)
        guard result.status == 0 else {
            _ = try? ShellCommand.run(["rm", "-rf", partial], timeout: 300)
            throw FixtureError(
                "debootstrap \(suite) from \(mirror) failed (exit \(result.status)): \(result.stderr.suffix(1500))"
                    + " \(result.stdout.suffix(1500))")
        }
        try Data("\(key)\n".utf8).write(to: URL(fileURLWithPath: partial + "/.complete"))
        guard rename(partial, path) == 0 else { throw FixtureError("cannot rename \(partial) to \(path)") }
        return path
    }

    /// The Debian mirror this machine's apt uses (debootstrap needs one; there is no other network).
    public static func aptMirror() -> String {
        var files = ["/etc/apt/sources.list"]
        let dir = "/etc/apt/sources.list.d"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? [] {
            files.append("\(dir)/\(name)")
        }
        for file in files {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                if words.first == "URIs:", let uri = words.dropFirst().first(where: { !$0.contains("security") }) {
                    return uri
                }
                if words.first == "deb", let uri = words.dropFirst().first(where: { $0.hasPrefix("http") }),
                    !uri.contains("security")
                {
                    return uri
                }
            }
        }
        return "http://deb.debian.org/debian"
    }

    static func contentKey(mirror: String) -> String {
        let text = ([suite, mirror] + packages).joined(separator: "\n")
        return String(FNV1a.hash(text), radix: 16)
    }
}
