import Foundation

/// Makes a built release live by the configured strategy, the same path for deploy and
/// rollback. On failure `current` and the live slot are as they were before (restored if
/// they had moved), the release is marked failed and quarantined, and a `StageFailure` is thrown.
///
/// From the swap on, nothing is cancelled by a shutdown (hooks run with `cancellable:
/// false`, bounded by hook-timeout and health-timeout), and an `ActivationMarker` says what
/// is under way, so a kill at any instant is finished by the next operation.
package struct Activation {
    let operation: DeployContext
    var kind: HistoryEvent.Kind = .deploy
    var trigger = "cli"
    /// Fleet mode: confirms the lease just before the swap; throwing `FleetHold` stops the
    /// activation with nothing changed (a blue-green candidate is stopped).
    package var beforeSwap: (() throws -> Void)?
    /// Fleet mode: false on a host that is not a canary when the fleet has canaries (their
    /// analysis stands for the sha).
    package var analyzes = true

    package init(operation: DeployContext, kind: HistoryEvent.Kind = .deploy, trigger: String = "cli") {
        self.operation = operation
        self.kind = kind
        self.trigger = trigger
    }

    var hooks: Hooks { Hooks(operation: operation) }

    /// This activation ends with a canary analysis.
    var analysisDue: Bool {
        analyzes && kind == .deploy && trigger != "recovery" && operation.settings.analysis != nil
    }
    var layout: Layout { operation.layout }

    /// `previous` is what is live now; when that is `sha` itself (a forced redeploy of the
    /// live release), a failure rolls back to the release live before it, if there is one.
    /// Returns the canary analysis when one ran and did not fail (passed or inconclusive).
    @discardableResult
    package func run(sha: String, previous: String?) throws -> AnalysisRecord? {
        let start = ContinuousClock.now
        var analysis: AnalysisRecord?
        var marker = ActivationMarker(sha: sha, previous: previous, kind: kind, trigger: trigger, phase: .activating)
        // Said before the swap: an agent killed anywhere from the swap to the verdict left a
        // release live that the analysis did not judge, and recovery must not call it ok.
        if analysisDue { marker.analyzing = true }
        if previous == sha {
            marker.wasLive = true
            marker.previous = Policies.previous(
                activations: operation.history.recentActivations(), current: sha)
        }
        do {
            switch operation.settings.strategy {
            case .restart: analysis = try restart(marker)
            case .blueGreen: analysis = try blueGreen(marker)
            }
        } catch let error as StageFailure {
            throw error
        } catch let error as AgentError where error.kind == .cancelled {
            throw error
        } catch let hold as FleetHold {
            throw hold
        } catch let halt as FleetHalt {
            throw halt
        } catch {
            // Any other error (a link or state file that cannot be written): if the swap has
            // begun, the same revert as a failed activate; before it, the release stays as it was.
            let reason = "unexpected error: \((error as? AgentError)?.message ?? "\(error)")"
            guard let began = ActivationMarker.read(layout), began.sha == sha else {
                throw StageFailure(stage: "activate", reason: reason)
            }
            if began.candidatePort != nil { try revertBlueGreen(began, stage: "activate", reason: reason) }
            try revertRestart(began, stage: "activate", reason: reason)
        }
        operation.output.stage("activate", ContinuousClock.now - start, "current -> releases/\(sha)")
        return analysis
    }

    /// The canary analysis of `sha`, live now; nil when none is set, and for a rollback or a
    /// recovery (the release served before, or its deploy is being finished). A failed one
    /// calls `revert` and carries its measurements in the `StageFailure`.
    func analyze(_ marker: ActivationMarker, port: Int?, revert: (String) throws -> Never) throws -> AnalysisRecord? {
        guard analysisDue, let settings = operation.settings.analysis else { return nil }
        let sha = marker.sha
        let record: AnalysisRecord
        do {
            // A SIGTERM to `deploy` ends the analysis (inconclusive), as it ends fleet waits.
            let run = try AnalysisRun(operation: operation, settings: settings, sha: sha, port: port)
            record = Cancellation.interruptible { run.run() }
        } catch {
            record = AnalysisRecord(
                outcome: .inconclusive, reason: (error as? AgentError)?.message ?? "\(error)", measurements: [])
        }
        guard record.outcome == .failed else { return record }
        do {
            try revert(record.reason)
        } catch var failure as StageFailure {
            failure.analysis = record
            throw failure
        }
    }

    // MARK: restart

    private func restart(_ marker: ActivationMarker) throws -> AnalysisRecord? {
        let sha = marker.sha
        try beforeSwap?()
        try marker.write(layout)
        try layout.swapCurrent(to: sha)
        if let outcome = try hooks.run(.activate, sha: sha, previous: marker.previous, cancellable: false),
            !outcome.succeeded
        {
            try revertRestart(marker, stage: "activate", reason: "the activate hook \(outcome.text)")
        }
        if let failure = checkLive(port: nil) {
            try revertRestart(marker, stage: "health", reason: failure)
        }
        let analysis = try analyze(marker, port: nil) { try revertRestart(marker, stage: "analysis", reason: $0) }
        try finish(marker)
        return analysis
    }

    /// Health-checks what is live now; nil when healthy (or no check is configured).
    func checkLive(port: Int?) -> String? {
        guard let check = operation.settings.healthCheck(port: port) else { return nil }
        let checkStart = ContinuousClock.now
        if let failure = check.wait() {
            operation.output.stage("health", ContinuousClock.now - checkStart, "FAILED: \(failure)")
            return failure
        }
        operation.output.stage("health", ContinuousClock.now - checkStart, "\(check.target) healthy")
        return nil
    }

    /// Records the release live and drops the marker.
    func finish(_ marker: ActivationMarker) throws {
        try operation.recordActivation(of: marker.sha, previous: marker.wasLive == true ? nil : marker.previous)
        ActivationMarker.remove(layout)
    }

    /// Swaps back, activates the previous release again and checks it, then fails.
    func revertRestart(_ marker: ActivationMarker, stage: String, reason: String) throws -> Never {
        var marker = marker
        marker.phase = .reverting
        try? marker.write(layout)
        let sha = marker.sha
        if let previous = marker.previous, previous != sha, FileSystem.isDirectory(layout.release(previous)) {
            if layout.currentSHA() != previous { try layout.swapCurrent(to: previous) }
            restoreRecord(previous)
            operation.output.line("rollback current -> releases/\(previous) (automatic, after \(stage) failed)")
            _ = try? hooks.run(.activate, sha: previous, previous: sha, cancellable: false)
            if let check = operation.settings.healthCheck(port: nil) {
                let result = check.wait()
                operation.output.line("health   previous release \(previous.prefix(12)): \(result ?? "healthy")")
            }
        } else if marker.wasLive == true {
            // Nothing earlier to go back to: the release that was live stays live.
            ActivationMarker.remove(layout)
            throw StageFailure(
                stage: stage, reason: "\(reason); it stays live, as there is no earlier release to roll back to")
        } else {
            unlink(layout.current)
            FileSystem.syncDirectory(layout.root)
            operation.output.line("rollback no earlier release: current removed")
        }
        markFailed(sha, stage: stage, reason: reason)
        ActivationMarker.remove(layout)
        throw StageFailure(stage: stage, reason: reason)
    }

    func markFailed(_ sha: String, stage: String, reason: String) {
        // An operator's rollback goes to a release that served before: a hook that fails on
        // the way (a unit it may not restart, a setting missing) is the system's fault, not the
        // release's, and must not make it ineligible for the next rollback. A failed health
        // check still marks it: then the release itself does not serve.
        if kind == .rollback, stage == "activate" || stage == "start" {
            operation.output.line(
                "rollback releases/\(sha) stays ready: the \(stage) hook failed, which is not the release's fault")
            return
        }
        _ = try? operation.records.move(sha, to: .failed) { record in
            record.failure = "\(stage): \(reason)"
            record.quarantine = "\(stage) failed"
        }
    }
}
