import Foundation

/// What `poll` decides before any fetch: is the branch head new? Shared by the two binaries;
/// the reading of a local remote's head needs no git library.
public struct PollCheck {
    let operation: DeployContext

    public init(operation: DeployContext) { self.operation = operation }

    public enum Verdict: Equatable, Sendable {
        case live
        case quarantined(reason: String)
        case paused
        /// `paths` skipped this head against the live release already: nothing to do.
        case skipped
        case new
    }

    /// The remote, normalised once, and its branch head when it is a local repository whose
    /// files can be read (nil: ask over git).
    public func remote() throws -> (url: String, localHead: CommitID?) {
        let url = try RemoteURL.normalize(try operation.settings.requireRepo())
        return (url, LocalRefs.branchHead(repository: url, branch: operation.settings.branch))
    }

    /// Live, quarantined (a failed build, or what a rollback left: `--force` deploys it
    /// anyway), or new.
    public func verdict(head: CommitID, force: Bool) -> Verdict {
        // A pause holds poll and webhooks, `--force` too: only an explicit deploy goes through.
        if PauseState.isPaused(operation.layout) { return .paused }
        // An activation a dead agent left unfinished: take the lock, so recovery checks it.
        if ActivationMarker.exists(operation.layout) { return .new }
        // A result this host owes the fleet (a crash or an etcd outage): written under the lock.
        if operation.settings.fleet != nil && FleetPendingResult.exists(operation.layout) { return .new }
        let layout = operation.layout
        if head.hex == layout.currentSHA() && FileSystem.isDirectory(layout.release(head.hex)) { return .live }
        if !force, let reason = operation.records.quarantine(head.hex) { return .quarantined(reason: reason) }
        if !force && SkippedHead.covers(head.hex, layout: layout) { return .skipped }
        return .new
    }
}
