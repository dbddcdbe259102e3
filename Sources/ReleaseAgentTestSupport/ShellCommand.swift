import CShims
import Foundation

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
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let directory { cshims_spawn_addchdir(&actions, directory) }
        cshims_spawn_addclosefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = environment ?? ProcessInfo.processInfo.environment
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard rc == 0 else { throw FixtureError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        pid = child
    }

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
