import Foundation

/// Runs a build command or hook for one release: its output goes to the release log and,
/// prefixed with the stage, to stderr; its process group is recorded while it runs.
package struct StepRunner {
    let operation: DeployContext
    let sha: String

    package init(operation: DeployContext, sha: String) {
        self.operation = operation
        self.sha = sha
    }

    /// Variables systemd hands the agent's own process: a child that inherits them could speak
    /// for the agent (`NOTIFY_SOCKET`: READY, STOPPING, a new MAINPID) or take its sockets.
    static let serviceManagerVariables: Set<String> = [
        "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
        "MAINPID", "MANAGERPID", "SYSTEMD_EXEC_PID", "TRIGGER_UNIT", "TRIGGER_PATH", "MONITOR_SERVICE_RESULT",
    ]

    /// The SPEC's environment for builds and hooks, over the agent's own less every
    /// `RELEASE_AGENT_*` variable (settings and tokens stay with the agent) and less what
    /// systemd gave the agent's own process (`serviceManagerVariables`).
    package static func environment(
        event: String, sha: String, layout: Layout, branch: String, previous: String?, extra: [String: String] = [:]
    ) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("RELEASE_AGENT_") && !serviceManagerVariables.contains($0.key)
        }
        env["RELEASE_AGENT_EVENT"] = event
        env["RELEASE_SHA"] = sha
        env["RELEASE_DIR"] = layout.release(sha)
        env["DEPLOY_ROOT"] = layout.root
        env["BRANCH"] = branch
        env["PREVIOUS_SHA"] = previous ?? ""
        env["PREVIOUS_DIR"] = previous.map { layout.release($0) } ?? ""
        env.merge(extra) { _, new in new }
        return env
    }

    package func run(
        stage: String, command: String, timeout: Duration, environment: [String: String], cancellable: Bool = true
    ) throws -> ProcessOutcome {
        let logPath = operation.layout.log(sha)
        appendLog(logPath, "== \(stage) \(ISO8601DateFormatter().string(from: Date())): \(command)\n")
        var prefixer = LinePrefixer(prefix: "\(stage)| ", output: operation.output)
        // A checkout that failed is removed at once; `on-failure` then runs in the deploy root.
        let release = operation.layout.release(sha)
        let directory = FileSystem.isDirectory(release) ? release : operation.layout.root
        var runner = ProcessRunner(command: command, directory: directory, environment: environment, timeout: timeout)
        runner.cancellable = cancellable
        let records = operation.records
        let outcome = try runner.run(
            logPath: logPath,
            started: { pid in
                try? records.update(sha) { record in
                    record.pgid = pid
                    record.bootID = BootID.current
                }
            },
            output: { data in prefixer.feed(data) })
        prefixer.flush()
        appendLog(logPath, "== \(stage) \(outcome.text)\n")
        try? records.update(sha) { $0.pgid = nil }
        return outcome
    }

    private func appendLog(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }
}

/// Splits output into lines and prints each with a prefix.
struct LinePrefixer {
    let prefix: String
    let output: Output
    var pending = Data()

    init(prefix: String, output: Output) {
        self.prefix = prefix
        self.output = output
    }

    /// Complete lines go out in one write per chunk, with control characters escaped (a
    /// build's output comes from the repository).
    mutating func feed(_ data: Data) {
        pending.append(data)
        var lines: [String] = []
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            lines.append(prefix + String(decoding: pending[start..<newline], as: UTF8.self).terminalSafe)
            start = newline + 1
        }
        pending.removeSubrange(pending.startIndex..<start)
        output.lines(lines)
        if pending.count > 8192 { flush() }
    }

    mutating func flush() {
        guard !pending.isEmpty else { return }
        output.line(prefix + String(decoding: pending, as: UTF8.self).terminalSafe)
        pending.removeAll()
    }
}
