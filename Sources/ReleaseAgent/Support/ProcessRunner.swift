import Foundation

/// How a child process ended.
public enum ProcessOutcome: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)
    case timedOut
    /// Killed because the agent is shutting down (see `Cancellation`).
    case cancelled

    public var succeeded: Bool { self == .exited(0) }

    public var text: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        case .timedOut: return "timed out"
        case .cancelled: return "cancelled by shutdown"
        }
    }
}

/// Runs `/bin/sh -c COMMAND` in its own process group, streams its output, and kills
/// the whole group on timeout or failure. It waits for the process itself, not for its
/// output to end: a child left running in the background does not hold it up.
public struct ProcessRunner {
    public var command: String
    public var directory: String
    public var environment: [String: String]
    public var timeout: Duration
    public var killGrace: Duration = .seconds(3)
    /// False for what must finish once begun (activation, and the revert after it): a
    /// shutdown does not kill it; its own timeout still does.
    public var cancellable = true

    public init(command: String, directory: String, environment: [String: String], timeout: Duration) {
        self.command = command
        self.directory = directory
        self.environment = environment
        self.timeout = timeout
    }

    /// `started` gets the process group id as soon as the child exists (to record it).
    /// stdout and stderr go straight to the file at `logPath` (opened for append), so a
    /// process a hook leaves in the background keeps a valid stdout after the agent is
    /// gone; `output` gets each new chunk of that file while the command runs.
    public func run(logPath: String, started: (pid_t) -> Void, output: (Data) -> Void) throws -> ProcessOutcome {
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else {
            throw AgentError.system { "cannot open the log \(logPath): \($0); check permissions" }
        }
        let readFD = open(logPath, O_RDONLY | O_CLOEXEC)
        guard readFD >= 0 else {
            close(logFD)
            throw AgentError.system { "cannot read the log \(logPath): \($0)" }
        }
        defer { close(readFD) }
        lseek(readFD, 0, SEEK_END)

        let spawned = Spawn.start(
            ["/bin/sh", "-c", command], environment: environment, directory: directory,
            output: .descriptor(logFD), newProcessGroup: true)
        close(logFD)
        let pid: pid_t
        switch spawned {
        case .success(let child): pid = child
        case .failure(let error): throw AgentError.failed("cannot start /bin/sh in \(directory): \(error)")
        }
        started(pid)
        return wait(pid: pid, readFD: readFD, logPath: logPath, output: output)
    }

    private func wait(pid: pid_t, readFD: Int32, logPath: String, output: (Data) -> Void) -> ProcessOutcome {
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        var echo = OutputEcho(readFD: readFD, logPath: logPath)
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid {
                echo.drain(output)
                break
            }
            let cancelled = cancellable && Cancellation.isRequested
            if cancelled || ContinuousClock.now >= deadline {
                ProcessRunner.killGroup(pid, grace: cancelled ? .seconds(1) : killGrace)
                waitpid(pid, &status, 0)
                echo.drain(output)
                echo.cap.compactIfNeeded()
                return cancelled ? .cancelled : .timedOut
            }
            if !echo.drain(output) { usleep(20_000) }
        }
        echo.cap.compactIfNeeded()
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

    /// Bytes of a child's output read per check of the deadline, and echoed per second.
    static let readBudget = 1 << 20
    static let echoPerSecond = 256 << 10
    static let echoPerCheck = 16 << 10

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

/// A child's output as it reaches its log: read at most `readBudget` bytes of what the log
/// gained and echo them, at most `echoPerSecond` a second, so that a child that never stops
/// printing can neither keep the deadline and shutdown from being checked nor flood the
/// journal. What is not echoed stays in the log, which `LogCap` keeps bounded.
struct OutputEcho {
    let readFD: Int32
    let logPath: String
    let cap: LogCap
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var allowance = ProcessRunner.echoPerSecond
    private var refilled = ContinuousClock.now
    private var hidden = 0
    private var lastNote = ContinuousClock.now - .seconds(10)

    init(readFD: Int32, logPath: String) {
        self.readFD = readFD
        self.logPath = logPath
        cap = LogCap(path: logPath)
    }

    /// True when there was something to read.
    @discardableResult
    mutating func drain(_ output: (Data) -> Void) -> Bool {
        let now = ContinuousClock.now
        allowance = min(
            ProcessRunner.echoPerSecond,
            allowance + Int((now - refilled).seconds * Double(ProcessRunner.echoPerSecond)))
        refilled = now
        var total = 0
        var echoed = 0
        while total < ProcessRunner.readBudget {
            let n = read(readFD, &buffer, buffer.count)
            guard n > 0 else { break }
            // Echo costs far more than reading: at most `echoPerCheck` between two checks.
            let shown = min(n, max(0, min(allowance, ProcessRunner.echoPerCheck - echoed)))
            if shown > 0 {
                output(Data(buffer[0..<shown]))
                allowance -= shown
                echoed += shown
            }
            hidden += n - shown
            total += n
        }
        if total >= ProcessRunner.readBudget {
            // Further behind than one budget: skip to the end rather than read it all.
            let position = lseek(readFD, 0, SEEK_CUR)
            let end = lseek(readFD, 0, SEEK_END)
            hidden += max(0, Int(end - position))
        }
        if hidden > 0 && (ContinuousClock.now - lastNote > .seconds(1) || total == 0) {
            output(Data("\n[release-agent: \(hidden) bytes of output not shown here; see \(logPath)]\n".utf8))
            hidden = 0
            lastNote = ContinuousClock.now
        }
        if cap.compactIfNeeded() { lseek(readFD, 0, SEEK_END) }
        return total > 0
    }
}
