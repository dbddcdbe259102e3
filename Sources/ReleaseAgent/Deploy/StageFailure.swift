import Foundation

/// A stage of a deploy or rollback that failed: what `on-failure` and the history line say.
package struct StageFailure: Error {
    package var stage: String
    package var reason: String
    /// A failed canary analysis: its measurements, for the history.
    package var analysis: AnalysisRecord?
    /// Blue-green: `RELEASE_PORT` and `PREVIOUS_PORT` of the failed activation, for `on-failure`.
    package var ports: [String: String] = [:]

    package init(stage: String, reason: String) {
        self.stage = stage
        self.reason = reason
    }

    /// Any error as a failure: a StageFailure as it is, anything else as unexpected.
    package init(_ error: Error) {
        if let failure = error as? StageFailure {
            self = failure
        } else {
            self.init(stage: "deploy", reason: "unexpected error: \((error as? AgentError)?.message ?? "\(error)")")
        }
    }
}

/// The deploy or rollback a failure belongs to, as its history line names it.
package struct Attempt: Sendable {
    package var kind: HistoryEvent.Kind
    package var sha: String
    package var previous: String?
    package var trigger: String
    package var subject: String?
    package var started: ContinuousClock.Instant

    package init(
        _ kind: HistoryEvent.Kind, sha: String, previous: String?, trigger: String, subject: String?,
        started: ContinuousClock.Instant
    ) {
        self.kind = kind
        self.sha = sha
        self.previous = previous
        self.trigger = trigger
        self.subject = subject
        self.started = started
    }
}

/// A failed stage not yet recorded. Stages throw it and never record themselves: the one
/// place that records (`on-failure`, the history line, exit 1) is `DeployContext.locked`,
/// while it still holds the lock, so no stage and no new error type can skip the record.
package struct UnrecordedFailure: Error {
    package var failure: StageFailure
    package var attempt: Attempt

    package init(_ failure: StageFailure, _ attempt: Attempt) {
        self.failure = failure
        self.attempt = attempt
    }
}
