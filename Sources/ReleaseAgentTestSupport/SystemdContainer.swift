import Foundation

/// A Debian 12 container booted with systemd as PID 1 (`systemd-nspawn --boot`), for the seed
/// tests that need a real service manager: the host of these tests runs none. Its root is the
/// cached `DebianTree` under a tmpfs overlay (`--volatile=overlay`), so the tree is never
/// changed and nothing is left behind; it shares the host's network, so what runs inside
/// listens on the host's 127.0.0.1. Commands enter it with `nsenter` into its systemd's
/// namespaces. Stopped (and waited for) on `stop()` or deinit, whatever failed.
public final class SystemdContainer: @unchecked Sendable {
    public struct Bind: Sendable {
        public var host: String
        public var inside: String
        public var readOnly: Bool
        public init(host: String, inside: String, readOnly: Bool = true) {
            self.host = host
            self.inside = inside
            self.readOnly = readOnly
        }
    }

    public let log: String
    /// The container's PID 1 (systemd) as the host sees it.
    public let leader: pid_t
    private let nspawn: RunningCommand
    private let nsenter: String

    public init(tree: String, binds: [Bind], log: String) throws {
        let binary = try TestTools.require("systemd-nspawn", package: "systemd-container")
        nsenter = try TestTools.require("nsenter", package: "util-linux")
        self.log = log
        let name = "ra-\(UUID().uuidString.prefix(8).lowercased())"
        var arguments = [
            binary, "--quiet", "-D", tree, "--volatile=overlay", "--boot", "--register=no", "--keep-unit",
            "--machine=\(name)",
        ]
        for bind in binds {
            arguments.append((bind.readOnly ? "--bind-ro=" : "--bind=") + "\(bind.host):\(bind.inside)")
        }
        // nspawn wants a terminal or none: its console goes to the log, its stdin is /dev/null.
        nspawn = try ShellCommand.start(
            ["/bin/sh", "-c", "exec \"$@\" --console=read-only </dev/null >>\"$0\" 2>&1", log] + arguments)
        var found: pid_t = 0
        let deadline = Date().addingTimeInterval(60)
        while found == 0 {
            let children =
                (try? String(contentsOfFile: "/proc/\(nspawn.pid)/task/\(nspawn.pid)/children", encoding: .utf8))
            found = children?.split(separator: " ").first.flatMap { pid_t($0) } ?? 0
            // nspawn's first child is a helper until it execs the container's init.
            let comm = (try? String(contentsOfFile: "/proc/\(found)/comm", encoding: .utf8)) ?? ""
            if comm != "systemd\n" { found = 0 }
            if found == 0 {
                guard Date() < deadline, kill(nspawn.pid, 0) == 0 else {
                    throw FixtureError("systemd-nspawn did not start a container: \(Self.tail(log))")
                }
                usleep(50_000)
            }
        }
        leader = found
        // `is-system-running --wait` answers at once with an error while the bus is not up yet.
        var answer = ""
        let booted = Date().addingTimeInterval(90)
        while Date() < booted {
            let state = try? run(["systemctl", "is-system-running", "--wait"], timeout: 90)
            answer = (state?.stdout ?? "") + (state?.stderr ?? "")
            let word = state?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if ["running", "degraded"].contains(word) { return }
            usleep(200_000)
        }
        stop()
        throw FixtureError("the container's systemd did not come up (\(answer)): \(Self.tail(log))")
    }

    /// Runs `command` inside, as root or as `user` (runuser: no NoNewPrivileges, a login-less
    /// session, as an operator's `sudo -u` would be).
    public func run(_ command: [String], user: String? = nil, timeout: TimeInterval = 120) throws -> CommandResult {
        let prefix = [nsenter, "-t", String(leader), "-a"]
        let asUser = user.map { ["runuser", "-u", $0, "--"] } ?? []
        return try ShellCommand.run(
            prefix + ["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"] + asUser + command,
            timeout: timeout)
    }

    /// `sh -c script` inside; fails the test with its output when it exits non-zero.
    @discardableResult
    public func shell(_ script: String, user: String? = nil, timeout: TimeInterval = 120) throws -> String {
        let result = try run(["/bin/sh", "-c", script], user: user, timeout: timeout)
        guard result.status == 0 else {
            throw FixtureError(
                "in the container, `\(script)` exited \(result.status): \(result.stdout)\(result.stderr)")
        }
        return result.stdout
    }

    /// `systemctl show -p NAME --value UNIT` inside.
    public func property(_ name: String, of unit: String) throws -> String {
        try shell("systemctl show --property \(name) --value \(unit)").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Powers the container off (SIGTERM to nspawn: an orderly shutdown), SIGKILL after 20 s.
    public func stop() {
        guard kill(nspawn.pid, 0) == 0 else { return }
        kill(nspawn.pid, SIGTERM)
        if (try? nspawn.wait(timeout: 20)) == nil {
            kill(nspawn.pid, SIGKILL)
            kill(leader, SIGKILL)
            _ = try? nspawn.wait(timeout: 10)
        }
    }

    deinit { stop() }

    static func tail(_ path: String) -> String {
        String(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").suffix(2000))
    }
}
