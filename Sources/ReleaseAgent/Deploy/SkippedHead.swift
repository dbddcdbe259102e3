import Foundation

/// `.release-agent/skipped.json`: the head `paths` last skipped (it changed nothing under them
/// since the live release), so it is recorded once (history, the output) and a later poll or
/// webhook of the same head against the same live release says nothing. `status` shows it
/// while it is the head; a deploy that goes live clears it.
public struct SkippedHead: StatusFile, Equatable, Sendable {
    public var sha: String
    public var live: String
    public var reason: String
    public var time: Double

    package init(sha: String, live: String, reason: String, time: Double = Date().timeIntervalSince1970) {
        self.sha = sha
        self.live = live
        self.reason = reason
        self.time = time
    }

    public static let fileName = "skipped.json"

    /// Whether `sha` was skipped against the release that is live now.
    package static func covers(_ sha: String, layout: Layout) -> Bool {
        guard let skipped = read(layout) else { return false }
        return skipped.sha == sha && skipped.live == layout.currentSHA()
    }

    package static func clear(_ layout: Layout) {
        if FileSystem.exists(path(layout)) { unlink(path(layout)) }
    }
}
