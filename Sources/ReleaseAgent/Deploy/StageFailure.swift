import Foundation

/// A stage of a deploy or rollback that failed; the caller records it and runs `on-failure`.
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
