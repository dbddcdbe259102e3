import Foundation

/// A stage of a deploy or rollback that failed; the caller records it and runs `on-failure`.
package struct StageFailure: Error {
    var stage: String
    var reason: String

    package init(stage: String, reason: String) {
        self.stage = stage
        self.reason = reason
    }
}

/// Makes a built release live by the configured strategy, the same path for deploy and
/// rollback. On failure `current` and the live slot are as they were before (restored if
/// they had moved), the release is marked failed and quarantined, and a `StageFailure` is thrown.
package struct Activation {
    let operation: Operation

    package init(operation: Operation) { self.operation = operation }
    var hooks: Hooks { Hooks(operation: operation) }
    var layout: Layout { operation.layout }

    package func run(sha: String, previous: String?) throws {
        let start = ContinuousClock.now
        switch operation.settings.strategy {
        case .restart: try restart(sha: sha, previous: previous)
        case .blueGreen: try blueGreen(sha: sha, previous: previous)
        }
        operation.output.stage("activate", ContinuousClock.now - start, "current -> releases/\(sha)")
    }

    // MARK: restart

    private func restart(sha: String, previous: String?) throws {
        try layout.swapCurrent(to: sha)
        if let outcome = try hooks.run(.activate, sha: sha, previous: previous), !outcome.succeeded {
            try revertRestart(
                sha: sha, previous: previous, stage: "activate", reason: "the activate hook \(outcome.text)")
        }
        if let check = try HealthCheck.from(operation.settings, port: nil) {
            let checkStart = ContinuousClock.now
            if let failure = check.wait() {
                operation.output.stage("health", ContinuousClock.now - checkStart, "FAILED: \(failure)")
                try revertRestart(sha: sha, previous: previous, stage: "health", reason: failure)
            }
            operation.output.stage("health", ContinuousClock.now - checkStart, "\(check.target) healthy")
        }
        try operation.recordActivation(of: sha, previous: previous)
    }

    /// Swaps back, activates the previous release again and checks it, then fails.
    private func revertRestart(sha: String, previous: String?, stage: String, reason: String) throws -> Never {
        if let previous, FileSystem.isDirectory(layout.release(previous)) {
            try layout.swapCurrent(to: previous)
            operation.output.line("rollback current -> releases/\(previous) (automatic, after \(stage) failed)")
            _ = try? hooks.run(.activate, sha: previous, previous: sha)
            if let check = try? HealthCheck.from(operation.settings, port: nil) {
                let result = check.wait()
                operation.output.line("health   previous release \(previous.prefix(12)): \(result ?? "healthy")")
            }
        } else {
            unlink(layout.current)
            FileSystem.syncDirectory(layout.root)
            operation.output.line("rollback no earlier release: current removed")
        }
        markFailed(sha, stage: stage, reason: reason)
        throw StageFailure(stage: stage, reason: reason)
    }

    // MARK: blue-green

    private func blueGreen(sha: String, previous: String?) throws {
        let slots = operation.settings.slots
        let live = SlotState.read(layout)
        let livePort = live?.port
        let candidate = livePort == slots[0] ? slots[1] : slots[0]
        let ports = ["RELEASE_PORT": String(candidate), "PREVIOUS_PORT": livePort.map(String.init) ?? ""]
        func stopCandidate() {
            hooks.runLogged(
                .stop, sha: sha, previous: previous,
                extra: ports.merging(
                    ["STOP_PORT": String(candidate), "STOP_SHA": sha, "STOP_DIR": layout.release(sha)]) { $1 })
        }
        func fail(_ stage: String, _ reason: String) -> StageFailure {
            stopCandidate()
            markFailed(sha, stage: stage, reason: reason)
            return StageFailure(stage: stage, reason: reason)
        }

        if let outcome = try hooks.run(.start, sha: sha, previous: previous, extra: ports), !outcome.succeeded {
            throw fail("start", "the start hook \(outcome.text) on port \(candidate)")
        }
        if let check = try HealthCheck.from(operation.settings, port: candidate) {
            let checkStart = ContinuousClock.now
            if let failure = check.wait() {
                operation.output.stage("health", ContinuousClock.now - checkStart, "FAILED: \(failure)")
                throw fail("health", "the candidate on port \(candidate) is unhealthy: \(failure)")
            }
            operation.output.stage("health", ContinuousClock.now - checkStart, "\(check.target) healthy")
        }
        try layout.swapCurrent(to: sha)
        try SlotState(port: candidate, sha: sha).write(layout)
        if let outcome = try hooks.run(.activate, sha: sha, previous: previous, extra: ports), !outcome.succeeded {
            if let previous, let live, FileSystem.isDirectory(layout.release(previous)) {
                try layout.swapCurrent(to: previous)
                try live.write(layout)
                _ = try? hooks.run(
                    .activate, sha: previous, previous: sha,
                    extra: ["RELEASE_PORT": String(live.port), "PREVIOUS_PORT": String(candidate)])
            } else {
                unlink(layout.current)
                unlink(SlotState.path(layout))
            }
            throw fail("activate", "the activate hook \(outcome.text)")
        }
        try operation.recordActivation(of: sha, previous: previous)
        if let livePort, livePort != candidate {
            hooks.runLogged(
                .stop, sha: sha, previous: previous,
                extra: ports.merging([
                    "STOP_PORT": String(livePort), "STOP_SHA": previous ?? live?.sha ?? "",
                    "STOP_DIR": (previous ?? live?.sha).map { layout.release($0) } ?? "",
                ]) { $1 })
        }
    }

    private func markFailed(_ sha: String, stage: String, reason: String) {
        _ = try? operation.records.move(sha, to: .failed) { record in
            record.failure = "\(stage): \(reason)"
            record.quarantine = "\(stage) failed"
        }
    }
}
