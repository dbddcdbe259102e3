import Foundation

/// The second phase of a deploy, under the lock: the re-check after a fleet wait, the
/// activation by the strategy (with its canary analysis), the result to the fleet, the
/// record, prune; and the refusals, which go through the one failure path (`locked` records).
extension Deploy {
    /// Refusals go through the one failure path, recorded once per sha and stage for poll and
    /// webhooks (a refusal that stands is not a new failure every minute).
    func refuse(_ built: Built, _ stage: String, _ reason: String, fetchLine: (() -> Void)? = nil) throws
        -> DeployResult
    {
        let refusal = Refusal(sha: built.target.hex, stage: stage)
        if Refusal.read(operation.layout) == refusal && built.request.trigger != "cli" {
            return .refusedAgain(built.target.hex)
        }
        fetchLine?()
        refusal.write(operation.layout)
        throw UnrecordedFailure(StageFailure(stage: stage, reason: reason), built.attempt)
    }

    /// Fleet mode, the lock taken again after the wait: what the operator did meanwhile wins.
    func recheck(_ built: Built, gate: FleetGate) throws {
        let layout = operation.layout
        let sha = built.target.hex
        if layout.currentSHA() != built.current {
            let rolledBack = operation.history.tail(1).first?.event == .rollback
            if rolledBack {
                // So the next poll does not undo the operator's rollback.
                try? operation.records.update(sha) {
                    $0.quarantine = "an operator's rollback on this host while it waited for the fleet"
                }
            }
            throw FleetHold(
                "the live release changed while this host waited (\(rolledBack ? "a rollback" : "a deploy") here); \(built.target.short) is not activated",
                quiet: true)
        }
        if built.request.trigger != "cli" && PauseState.isPaused(layout) {
            throw FleetHold("this host was paused while it waited; \(built.target.short) is not activated", quiet: true)
        }
        guard let record = operation.records.read(sha), record.state.isComplete,
            FileSystem.isDirectory(layout.release(sha))
        else {
            throw FleetHold("releases/\(sha) was removed while this host waited; the next trigger builds it again")
        }
    }

    /// Under the lock: swap and check by the strategy, the result to the fleet, the record, prune.
    func activate(_ built: Built, gate: FleetGate?) throws -> DeployResult {
        let analysis: AnalysisRecord?
        switch try swapIn(built, gate: gate) {
        case .refused(let result): return result
        case .live(let measured): analysis = measured
        }
        let inconclusive = try record(built, analysis: analysis)
        try prune()
        if let inconclusive {
            throw AgentError.failed(
                "deploy of \(built.target.short) is live, but its canary analysis was inconclusive: \(inconclusive.reason); check Prometheus and the queries, then keep it or run release-agent rollback"
            )
        }
        return .deployed(built.target.hex)
    }

    enum Swapped {
        /// Live, with the canary analysis when one ran (passed or inconclusive).
        case live(AnalysisRecord?)
        /// The fleet refused it at the swap (a halt, an unreadable value).
        case refused(DeployResult)
    }

    /// The activation by the strategy and the result to the fleet; a failure is thrown for
    /// `locked` to record (history, on-failure).
    private func swapIn(_ built: Built, gate: FleetGate?) throws -> Swapped {
        let target = built.target
        do {
            var activation = Activation(operation: operation, kind: .deploy, trigger: built.request.trigger)
            activation.beforeSwap = gate.map { gate in { try gate.confirm(sha: target.hex) } }
            activation.analyzes = gate?.analyzes ?? true
            let analysis = try activation.run(sha: target.hex, previous: built.current)
            // Inconclusive: live here, and no other host takes it until an operator looked.
            if let analysis, analysis.outcome == .inconclusive {
                gate?.pause(
                    reason:
                        "the canary analysis of \(target.short) on \(operation.settings.fleet?.hostID ?? "a host") was inconclusive: \(analysis.reason)"
                )
            }
            gate?.finish(sha: target.hex, ok: true, reason: nil)
            return .live(analysis)
        } catch let error as AgentError where error.kind == .cancelled {
            gate?.release()
            throw error
        } catch let hold as FleetHold {
            gate?.release()
            throw AgentError.environment(
                "fleet: \(hold.reason); \(target.short) was not swapped in, current is unchanged")
        } catch let halt as FleetHalt {
            gate?.release()
            try? operation.records.update(target.hex) { $0.quarantine = halt.reason }
            return .refused(try refuse(built, "fleet", halt.reason))
        } catch let failure as FleetFailure {
            gate?.release()
            return .refused(try refuse(built, "fleet", failure.reason))
        } catch {
            let failure = StageFailure(error)
            gate?.finish(sha: target.hex, ok: false, reason: failure.reason)
            throw UnrecordedFailure(failure, built.attempt)
        }
    }
}
