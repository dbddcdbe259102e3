import Foundation

/// Writes the stage lines and progress bar to stderr.
public final class Output: @unchecked Sendable {
    public let isTerminal: Bool
    /// `log-format json`: each line is a JSON object with time and message.
    public let json: Bool
    private let lock = NSLock()

    public init(json: Bool = false) {
        self.json = json
        isTerminal = isatty(STDERR_FILENO) == 1 && !json
    }

    public func line(_ text: String) {
        var out = text
        if json {
            let object: [String: String] = [
                "time": ISO8601DateFormatter().string(from: Date()), "level": "info", "message": text,
            ]
            out =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
                .map { String(decoding: $0, as: UTF8.self) } ?? text
        }
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data((out + "\n").utf8))
    }

    /// One line per finished stage: `fetch     0.12s  detail`.
    public func stage(_ name: String, _ elapsed: Duration, _ detail: String = "") {
        // Longer names (post-deploy, on-failure) keep a space before the time.
        let column = name.count < 9 ? name.fitted(to: 9) : name + " "
        line("\(column)\(elapsed.short.fitted(to: 8))\(detail)")
    }

    /// A progress bar for `stage`, only on a terminal.
    public func progress(_ stage: String) -> ProgressReporter? {
        isTerminal ? ProgressReporter(stage: stage, output: self) : nil
    }

    func raw(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data(text.utf8))
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
