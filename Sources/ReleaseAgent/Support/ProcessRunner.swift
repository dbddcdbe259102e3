import CShims
import Foundation

/// How a child process ended.
public enum ProcessOutcome: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)
    case timedOut

    public var succeeded: Bool { self == .exited(0) }

    public var text: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        case .timedOut: return "timed out"
        }
    }
}

/// Runs `/bin/sh -c COMMAND` in its own process group, streams its output, and kills
/// the whole group on timeout or failure. It waits for the process itself, not for its
/// output pipe to close: a child left running in the background does not hold it up.
public struct ProcessRunner {
    public var command: String
    public var directory: String
    public var environment: [String: String]
    public var timeout: Duration
    public var killGrace: Duration = .seconds(3)

    public init(command: String, directory: String, environment: [String: String], timeout: Duration) {
        self.command = command
        self.directory = directory
        self.environment = environment
        self.timeout = timeout
    }

    /// `started` gets the process group id as soon as the child exists (to record it);
    /// `output` gets each chunk of combined stdout and stderr.
    public func run(started: (pid_t) -> Void, output: (Data) -> Void) throws -> ProcessOutcome {
        var pipeFDs: [Int32] = [0, 0]
        guard cshims_pipe_cloexec(&pipeFDs) == 0 else {
            throw AgentError.failed("cannot create a pipe: \(FileSystem.errnoText())")
        }
        let (readFD, writeFD) = (pipeFDs[0], pipeFDs[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeFD, 1)
        posix_spawn_file_actions_adddup2(&actions, writeFD, 2)
        cshims_spawn_addchdir(&actions, directory)
        // Nothing the agent holds (its lock, a supervisor's pipes or sockets) leaks into a build or hook.
        cshims_spawn_addclosefrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        close(writeFD)
        guard rc == 0 else {
            close(readFD)
            throw AgentError.failed("cannot start /bin/sh in \(directory): \(String(cString: strerror(rc)))")
        }
        started(pid)
        defer { close(readFD) }
        return wait(pid: pid, readFD: readFD, output: output)
    }

    private func wait(pid: pid_t, readFD: Int32, output: (Data) -> Void) -> ProcessOutcome {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        var pipeOpen = true
        var status: Int32 = 0

        func drain() {
            while pipeOpen {
                var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 0) > 0 else { return }
                let n = read(readFD, &buffer, buffer.count)
                if n > 0 { output(Data(buffer[0..<n])) } else { pipeOpen = false }
            }
        }

        while true {
            if pipeOpen {
                var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 50) > 0 {
                    let n = read(readFD, &buffer, buffer.count)
                    if n > 0 { output(Data(buffer[0..<n])) } else if n == 0 { pipeOpen = false }
                }
            } else {
                usleep(20_000)
            }
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid {
                drain()
                break
            }
            if ContinuousClock.now >= deadline {
                ProcessRunner.killGroup(pid, grace: killGrace)
                waitpid(pid, &status, 0)
                drain()
                return .timedOut
            }
        }
        let outcome: ProcessOutcome
        if status & 0x7f == 0 {
            outcome = .exited((status >> 8) & 0xff)
        } else {
            outcome = .signaled(status & 0x7f)
        }
        if !outcome.succeeded {
            // A failed build or hook leaves nothing behind.
            _ = kill(-pid, SIGKILL)
        }
        return outcome
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace` if anything is left.
    public static func killGroup(_ pgid: pid_t, grace: Duration) {
        guard pgid > 1 else { return }
        guard kill(-pgid, SIGTERM) == 0 else { return }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            _ = waitpid(pgid, &status, WNOHANG)
            if kill(-pgid, 0) != 0 { return }
            usleep(20_000)
        }
        _ = kill(-pgid, SIGKILL)
    }
}
