import Foundation

/// Switches `current` back to a release already on disk: no fetch, no build.
public struct Rollback {
    let operation: DeployContext

    public init(operation: DeployContext) { self.operation = operation }

    /// `target` is a sha or unique prefix; nil takes the release live before the current one.
    public func run(target: String?, trigger: String = "cli") throws -> String {
        try operation.locked {
            let started = ContinuousClock.now
            try operation.checkLiveSlot()
            let current = operation.layout.currentSHA()
            let complete = operation.completeOnDisk()
            let sha: String
            if let target {
                sha = try resolve(target, among: complete)
            } else {
                let eligible = Set(complete.values.filter { $0.quarantine == nil }.map(\.sha))
                let activations = operation.history.recentActivations()
                guard
                    let found = Policies.rollbackTarget(activations: activations, current: current, eligible: eligible)
                else {
                    throw AgentError.failed(
                        "no earlier release is ready on disk to roll back to; name one with rollback SHA (see status)")
                }
                sha = found
            }
            if sha == current {
                operation.output.line("rollback \(sha.prefix(12)) is already live; nothing to do")
                return sha
            }
            do {
                try Activation(operation: operation, kind: .rollback).run(sha: sha, previous: current)
            } catch let error as AgentError where error.kind == .cancelled {
                throw error
            } catch {
                throw UnrecordedFailure(
                    StageFailure(error),
                    Attempt(
                        .rollback, sha: sha, previous: current, trigger: trigger,
                        subject: complete[sha]?.commit?.subject, started: started))
            }
            if let current, operation.records.read(current) != nil {
                // poll and webhooks must not undo the operator's rollback by redeploying it.
                try operation.records.move(current, to: .retired) { $0.quarantine = "rolled back from" }
                // A head `paths` skipped against the release left behind carries its changes:
                // redeploying it would undo the rollback as surely as redeploying that release.
                if let skipped = SkippedHead.read(operation.layout), skipped.live == current,
                    operation.records.read(skipped.sha) == nil
                {
                    try QuarantineBook(layout: operation.layout).remember([
                        (skipped.sha, "rolled back from (skipped by paths against \(current.prefix(12)))")
                    ])
                }
            }
            Hooks(operation: operation).runLogged(.postDeploy, sha: sha, previous: current)
            var event = HistoryEvent(event: .rollback, result: .ok, sha: sha, previous: current)
            event.trigger = trigger
            event.subject = complete[sha]?.commit?.subject
            event.seconds = (ContinuousClock.now - started).seconds
            try operation.history.append(event)
            return sha
        }
    }

    private func resolve(_ prefix: String, among complete: [String: ReleaseRecord]) throws -> String {
        let wanted = prefix.lowercased()
        guard !wanted.isEmpty, wanted.allSatisfy(\.isHexDigit) else {
            throw AgentError.usage("'\(prefix)' is not a commit id or prefix; pass hex digits as status shows them")
        }
        let matches = complete.keys.filter { $0.hasPrefix(wanted) }.sorted()
        switch matches.count {
        case 1: return matches[0]
        case 0:
            throw AgentError.failed(
                "no ready release on disk matches \(prefix); see status for the releases you can roll back to")
        default:
            throw AgentError.usage(
                "\(prefix) matches \(matches.count) releases (\(matches.map { String($0.prefix(12)) }.joined(separator: ", "))); give more digits"
            )
        }
    }
}

/// `prune [--keep N]` on its own.
public struct Prune {
    let operation: DeployContext

    public init(operation: DeployContext) { self.operation = operation }

    public func run(keep: Int?) throws -> [String] {
        try operation.locked {
            let removed = try operation.prune(keep: keep ?? operation.settings.keepReleases)
            if !removed.isEmpty {
                var event = HistoryEvent(event: .prune, result: .ok, sha: nil)
                event.trigger = "cli"
                event.removed = removed
                try operation.history.append(event)
            }
            return removed
        }
    }
}
