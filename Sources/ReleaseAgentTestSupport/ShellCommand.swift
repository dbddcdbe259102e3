import Foundation
import ReleaseAgent

/// The result of a finished command.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a command to completion, with a bounded wait, capturing its output through files.
/// It spawns with posix_spawn and closes every other descriptor in the child, so a daemon
/// the command leaves behind (nginx, a hook's app) holds nothing of the test's.
public enum ShellCommand {
    public static func run(
        _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        timeout: TimeInterval = 120
    ) throws -> CommandResult {
        try start(arguments, environment: environment, directory: directory).wait(timeout: timeout)
    }

    public static func start(_ arguments: [String], environment: [String: String]? = nil, directory: String? = nil)
        throws -> RunningCommand
    {
        try RunningCommand(arguments, environment: environment, directory: directory)
    }
}

/// A command running in the background.
public final class RunningCommand: @unchecked Sendable {
    public let pid: pid_t
    private let outPath: String
    private let errPath: String
    private let name: String
    private var finished: CommandResult?

    init(_ arguments: [String], environment: [String: String]?, directory: String?) throws {
        let id = UUID().uuidString
        outPath = NSTemporaryDirectory() + "/ra-out-\(id)"
        errPath = NSTemporaryDirectory() + "/ra-err-\(id)"
        name = arguments.first ?? ""
        switch Spawn.start(
            arguments, environment: environment, directory: directory,
            output: .files(stdout: outPath, stderr: errPath))
        {
        case .success(let child): pid = child
        case .failure(let error): throw FixtureError("cannot start \(arguments[0]): \(error)")
        }
    }

    /// What it has written to stderr so far (it may still be running).
    public var stderrSoFar: String { finished?.stderr ?? read(errPath) }

    /// Waits at most `timeout` seconds; a command still running then is killed and reported.
    public func wait(timeout: TimeInterval = 120) throws -> CommandResult {
        if let finished { return finished }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { throw FixtureError("waitpid(\(pid)) failed: \(errno)") }
            if Date() >= deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw FixtureError("\(name) did not finish within \(timeout)s: \(read(errPath))")
            }
            usleep(5_000)
        }
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let result = CommandResult(status: code, stdout: read(outPath), stderr: read(errPath))
        finished = result
        return result
    }

    private func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }
}
