import CShims
import Foundation

/// posix_spawn with the rules every child of the agent follows: stdin is /dev/null,
/// stdout and stderr go where the caller says, every other descriptor is closed (no lock,
/// no supervisor socket leaks into a build, hook or helper), and signal handling is reset.
public enum Spawn {
    /// Where a child's stdout and stderr go.
    public enum Output {
        /// Both to an open descriptor (dup2'ed).
        case descriptor(Int32)
        /// Each to its own file, created or truncated.
        case files(stdout: String, stderr: String)
        case devNull
    }

    /// Starts `arguments[0]` and returns its pid, or the errno of a failed spawn.
    /// `newProcessGroup` makes the child the leader of its own group (to kill it whole).
    public static func start(
        _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        output: Output = .devNull, newProcessGroup: Bool = false, input: String? = nil
    ) -> Result<pid_t, Errno> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        switch output {
        case .descriptor(let fd):
            posix_spawn_file_actions_adddup2(&actions, fd, 1)
            posix_spawn_file_actions_adddup2(&actions, fd, 2)
        case .files(let stdout, let stderr):
            posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        case .devNull:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        if let directory { cshims_spawn_addchdir(&actions, directory) }
        cshims_spawn_addclosefrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let env = environment ?? ProcessInfo.processInfo.environment
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        return rc == 0 ? .success(pid) : .failure(Errno(rc))
    }

    /// An errno value with its text.
    public struct Errno: Error, CustomStringConvertible {
        public let code: Int32
        init(_ code: Int32) { self.code = code }
        public var description: String { String(cString: strerror(code)) }
    }
}
