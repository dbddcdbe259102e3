import Foundation

/// The last stages of a deploy that went live: post-deploy (or on-failure for an
/// inconclusive analysis), the history line, the state files, then prune.
extension Deploy {
    /// Returns the analysis when it was inconclusive: the deploy is live, and exits 1 after prune.
    func record(_ built: Built, analysis: AnalysisRecord?) throws -> AnalysisRecord? {
        let target = built.target
        let current = built.current
        let inconclusive = analysis?.outcome == .inconclusive ? analysis : nil
        if let inconclusive {
            Hooks(operation: operation).runLogged(
                .onFailure, sha: target.hex, previous: current,
                extra: ["FAILURE_STAGE": "analysis", "FAILURE_REASON": inconclusive.reason])
        } else {
            Hooks(operation: operation).runLogged(.postDeploy, sha: target.hex, previous: current)
        }
        var event = HistoryEvent(
            event: .deploy, result: inconclusive == nil ? .ok : .inconclusive, sha: target.hex, previous: current)
        event.analysis = analysis
        if let inconclusive {
            event.stage = "analysis"
            event.reason = inconclusive.reason
        }
        event.trigger = built.request.trigger
        event.subject = built.info?.subject
        event.nonFastForward = built.nonFastForward ? true : nil
        event.signer = built.signer
        event.seconds = (ContinuousClock.now - built.started).seconds
        event.stages = operation.output.takeStageSeconds()
        try operation.history.append(event)
        Refusal.clear(operation.layout)
        SkippedHead.clear(operation.layout)
        if let branchHead = built.branchHead {
            built.cache.headSeen(branchHead, live: target.hex, source: built.request.trigger).record(operation.layout)
        }
        return inconclusive
    }

    /// The newest keep-releases stay (and what the SPEC's prune rules keep besides).
    func prune() throws {
        let removed = try operation.prune(keep: operation.settings.keepReleases)
        if !removed.isEmpty {
            operation.output.line(
                "prune    removed \(removed.count): \(removed.map { String($0.prefix(12)) }.joined(separator: " "))"
            )
        }
    }
}
