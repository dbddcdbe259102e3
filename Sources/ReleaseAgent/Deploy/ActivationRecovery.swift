import Foundation

/// Finishes an activation that a dead agent began (its `ActivationMarker` is still there),
/// under the lock, before the next operation does anything else: a release that went live
/// without a passed health check is checked now, and rolled back as a failed deploy if it
/// does not pass; a revert that began is completed.
package struct ActivationRecovery {
    let operation: DeployContext

    package init(operation: DeployContext) { self.operation = operation }

    var layout: Layout { operation.layout }

    package func run() {
        guard ActivationMarker.exists(layout) else { return }
        guard let marker = ActivationMarker.read(layout) else {
            operation.output.line("recover  removed an unreadable \(ActivationMarker.path(layout))")
            ActivationMarker.remove(layout)
            return
        }
        let started = ContinuousClock.now
        let activation = Activation(operation: operation, kind: marker.kind, trigger: "recovery")
        let blueGreen = marker.candidatePort != nil
        let short = marker.sha.prefix(12)
        operation.output.line(
            "recover  the \(marker.kind.rawValue) of \(short) was interrupted during activation; finishing it")
        let live = layout.currentSHA()
        do {
            if live == marker.sha && marker.phase == .activating {
                if let port = marker.candidatePort { try SlotState(port: port, sha: marker.sha).write(layout) }
                if let failure = activation.checkLive(port: marker.candidatePort) {
                    try revert(activation, marker, stage: "health", reason: failure)
                }
                try activation.finish(marker)
                if blueGreen { activation.stopOldSlot(marker) }
                if marker.analyzing == true {
                    unjudged(marker, started: started)
                    return
                }
                recordSuccess(marker, started: started)
                operation.output.line("recover  \(short) passed its health check and is live")
            } else if live == marker.sha || marker.phase == .reverting {
                try revert(
                    activation, marker, stage: "activate", reason: "the agent died during activation (revert finished)")
            } else {
                // Killed before the swap: current never moved. A started candidate is stopped;
                // the release stays ready, deployable by the next trigger.
                activation.stopCandidate(marker)
                ActivationMarker.remove(layout)
                operation.output.line(
                    "recover  \(short) was never swapped in; current stays on \(live.map { String($0.prefix(12)) } ?? "nothing")"
                )
            }
        } catch let failure as StageFailure {
            // Recovery runs inside `locked` before its body and ends here: it records itself.
            let error = operation.recordFailure(
                failure,
                Attempt(
                    marker.kind, sha: marker.sha, previous: marker.previous, trigger: "recovery",
                    subject: operation.records.read(marker.sha)?.commit?.subject, started: started))
            operation.output.line("recover  \(error.message)")
        } catch {
            // The marker stays: the next operation tries again.
            operation.output.line("recover  could not finish the activation of \(short): \(error)")
        }
    }

    private func revert(_ activation: Activation, _ marker: ActivationMarker, stage: String, reason: String) throws
        -> Never
    {
        if marker.candidatePort != nil {
            try activation.revertBlueGreen(marker, stage: stage, reason: reason)
        }
        try activation.revertRestart(marker, stage: stage, reason: reason)
    }

    /// The agent died during the canary analysis: the release passed its health check, so it
    /// stays live, but it was not judged. It ends inconclusive as a deploy whose analysis a
    /// shutdown cut (history, `on-failure`, and in fleet mode a pause when the result is
    /// written), without running the analysis again: the next operation may be the
    /// operator's rollback, which must not wait minutes for it.
    private func unjudged(_ marker: ActivationMarker, started: ContinuousClock.Instant) {
        let reason = "the agent stopped during the canary analysis; \(marker.sha.prefix(12)) is live but was not judged"
        // The state may still be the previous release's (killed before the first measurement).
        let previous = AnalysisState.read(layout)
        var state =
            previous?.sha == marker.sha
            ? previous!
            : AnalysisState(
                sha: marker.sha, started: Date().timeIntervalSince1970, running: false, totals: previous?.totals ?? [:])
        state.running = false
        state.outcome = .inconclusive
        state.reason = reason
        state.write(layout)
        if var pending = FleetPendingResult.read(layout), pending.sha == marker.sha, pending.ok == nil {
            pending.inconclusive = reason
            pending.write(layout)
        }
        Hooks(operation: operation).runLogged(
            .onFailure, sha: marker.sha, previous: marker.previous,
            extra: ["FAILURE_STAGE": "analysis", "FAILURE_REASON": reason])
        var event = HistoryEvent(event: .deploy, result: .inconclusive, sha: marker.sha, previous: marker.previous)
        event.trigger = "recovery"
        event.stage = "analysis"
        event.reason = reason
        event.subject = operation.records.read(marker.sha)?.commit?.subject
        event.seconds = (ContinuousClock.now - started).seconds
        try? operation.history.append(event)
        operation.output.line("recover  \(reason): inconclusive; keep it or run release-agent rollback")
    }

    private func recordSuccess(_ marker: ActivationMarker, started: ContinuousClock.Instant) {
        if marker.kind == .rollback, let previous = marker.previous, operation.records.read(previous) != nil {
            _ = try? operation.records.move(previous, to: .retired) { $0.quarantine = "rolled back from" }
        }
        var event = HistoryEvent(event: marker.kind, result: .ok, sha: marker.sha, previous: marker.previous)
        event.trigger = "recovery"
        event.subject = operation.records.read(marker.sha)?.commit?.subject
        event.seconds = (ContinuousClock.now - started).seconds
        try? operation.history.append(event)
    }
}
