import Foundation

/// The states a release moves through.
public enum ReleaseState: String, Codable, Sendable, CaseIterable {
    case building, ready, active, retired, failed

    /// The moves the store allows; anything else is a bug.
    public func canMove(to next: ReleaseState) -> Bool {
        switch (self, next) {
        case (.building, .ready), (.building, .failed): return true
        case (.ready, .active), (.ready, .failed): return true
        case (.active, .retired), (.active, .failed): return true
        case (.retired, .active), (.retired, .failed): return true
        case (.failed, .building): return true
        default: return false
        }
    }

    /// Built completely: can be activated without a rebuild.
    public var isComplete: Bool { self == .ready || self == .active || self == .retired }
}

/// `.release-agent/releases/<sha>.json`: what the agent knows of one release.
public struct ReleaseRecord: Codable, Sendable, Equatable {
    public var sha: String
    public var state: ReleaseState
    public var commit: CommitInfo?
    public var createdAt: Double
    public var readyAt: Double?
    public var activatedAt: Double?
    public var checkoutSeconds: Double?
    public var buildSeconds: Double?
    public var log: String
    /// Process group of a running build or hook, and the boot it belongs to, so that the
    /// next operation can kill what a crashed agent left running.
    public var pgid: Int32?
    public var bootID: String?
    public var failure: String?
    /// Why poll and webhooks must not deploy this sha again (a failure, or a rollback away from it).
    public var quarantine: String?
    /// Who signed the commit, when verify-signatures checked it.
    public var signer: String?
    /// The tree's directory the release was checked out from (`subdir`), nil for the whole tree.
    public var subdir: String?
    /// The submodules written into the release: path in it -> the URL fetched (its cache's
    /// name comes from it); nil when submodules were off.
    public var submodules: [String: String]?

    public init(sha: String, state: ReleaseState, log: String, createdAt: Double = Date().timeIntervalSince1970) {
        self.sha = sha
        self.state = state
        self.log = log
        self.createdAt = createdAt
    }
}
