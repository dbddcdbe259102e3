import Foundation

/// Writes the stage lines and progress bar to stderr.
public final class Output: @unchecked Sendable {
    public let isTerminal: Bool
    /// `log-format json`: each line is a JSON object with time and message.
    public let json: Bool
    private let lock = NSLock()
    private var stageSeconds: [String: Double] = [:]

    public init(json: Bool = false) {
        self.json = json
        isTerminal = isatty(STDERR_FILENO) == 1 && !json
    }

    public func line(_ text: String) { lines([text]) }

    /// Several lines in one write (a chunk of a child's output).
    public func lines(_ texts: [String]) {
        guard !texts.isEmpty else { return }
        var out = ""
        for text in texts {
            if json {
                let object: [String: String] = [
                    "time": ISO8601DateFormatter().string(from: Date()), "level": "info", "message": text,
                ]
                out +=
                    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? text
            } else {
                out += text
            }
            out += "\n"
        }
        lock.lock()
        defer { lock.unlock() }
        StandardStream.write(out, to: STDERR_FILENO)
    }

    /// One line per finished stage: `fetch     0.12s  detail`.
    public func stage(_ name: String, _ elapsed: Duration, _ detail: String = "") {
        // Longer names (post-deploy, on-failure) keep a space before the time.
        let column = name.count < 9 ? name.fitted(to: 9) : name + " "
        lock.lock()
        stageSeconds[name, default: 0] += elapsed.seconds
        lock.unlock()
        line("\(column)\(elapsed.short.fitted(to: 8))\(detail)")
    }

    /// The seconds of each stage printed since the last call (one operation's stages, for
    /// its history line and the /metrics histogram), and starts counting anew.
    public func takeStageSeconds() -> [String: Double] {
        lock.lock()
        defer { lock.unlock() }
        let taken = stageSeconds
        stageSeconds = [:]
        return taken
    }

    /// A progress bar for `stage`, only on a terminal.
    public func progress(_ stage: String) -> ProgressReporter? {
        isTerminal ? ProgressReporter(stage: stage, output: self) : nil
    }

    func raw(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        StandardStream.write(text, to: STDERR_FILENO)
    }
}

/// Redraws `stage [#####-----] 50% (n/m)` at most every 100 ms.
public final class ProgressReporter: @unchecked Sendable {
    let stage: String
    let output: Output
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var drawn = false
    private var lastDone = -1

    init(stage: String, output: Output) {
        self.stage = stage
        self.output = output
    }

    package func update(done: Int, total: Int) {
        guard total > 0, done != lastDone else { return }
        let now = ContinuousClock.now
        guard done == total || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        lastDone = done
        let width = 30
        let filled = min(width, done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        output.raw("\r\(stage) [\(bar)] \(done * 100 / total)% (\(done)/\(total))")
        drawn = true
    }

    package func finish() {
        if drawn { output.raw("\r\u{1B}[K") }
        drawn = false
    }
}

/// Writes to stdout or stderr with write(2). `FileHandle.write` traps (SIGILL) when the
/// reader went away (EPIPE) or the descriptor is closed; here a failed write loses that
/// output and nothing else, so a deploy whose terminal or ssh session is gone goes on to its
/// end (SIGPIPE is ignored by both binaries' main).
public enum StandardStream {
    public static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(fd, base + offset, buffer.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    public static func error(_ text: String) { write(text, to: STDERR_FILENO) }
}
