import Foundation

/// The servers and tools the seed-setup tests start (caddy, prometheus, influxd, lintian...).
/// `.ci/run` installs them; under `CI=true` a missing one fails its suite instead of skipping.
public enum TestTools {
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The executable `name` on PATH or in the sbin folders, or nil.
    public static func path(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// For `.enabled(if:)`: true when every tool is there, or under CI (then a missing one fails).
    public static func runnable(_ names: String...) -> Bool { inCI || names.allSatisfy { path($0) != nil } }

    /// The .deb that `packaging/deb.sh` built last in this checkout, or nil.
    public static var builtDeb: String? {
        let dir = packageRoot + "/.build-deb"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("release-agent_") && $0.hasSuffix(".deb") }.sorted().last.map {
            dir + "/" + $0
        }
    }

    /// The tool's path, or an error naming the package that has it.
    public static func require(_ name: String, package: String) throws -> String {
        guard let found = path(name) else {
            throw FixtureError("\(name) is not installed; .ci/run installs it (apt-get install -y \(package))")
        }
        return found
    }
}

/// A server process of a test, killed (and waited for) when the value goes away.
public final class TestServer: @unchecked Sendable {
    public let running: RunningCommand
    public let log: String

    /// Starts `arguments` with output in `log`, then waits until `port` accepts connections.
    public convenience init(_ arguments: [String], port: Int, log: String, environment: [String: String]? = nil)
        throws
    {
        let running = try ShellCommand.start(
            ["/bin/sh", "-c", "exec \"$@\" >>\"$0\" 2>&1", log] + arguments, environment: environment)
        try self.init(adopting: running, port: port, log: log)
    }

    /// Takes a started process over and waits until `port` accepts connections.
    public init(adopting running: RunningCommand, port: Int, log: String) throws {
        self.log = log
        self.running = running
        let deadline = Date().addingTimeInterval(60)
        while !portAcceptsConnections(port) {
            guard Date() < deadline, kill(running.pid, 0) == 0 else {
                stop()
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw FixtureError("the server logging to \(log) did not listen on \(port): \(text.suffix(2000))")
            }
            usleep(50_000)
        }
    }

    public func stop() {
        kill(running.pid, SIGTERM)
        if (try? running.wait(timeout: 15)) == nil {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 5)
        }
    }

    deinit { stop() }
}
