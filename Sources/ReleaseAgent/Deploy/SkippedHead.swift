import Foundation

/// `.release-agent/skipped.json`: the head `paths` last skipped (it changed nothing under them
/// since the live release), so it is recorded once (history, the output) and a later poll or
/// webhook of the same head against the same live release says nothing. `status` shows it
/// while it is the head; a deploy that goes live clears it.
public struct SkippedHead: Codable, Equatable, Sendable {
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

    static func path(_ layout: Layout) -> String { layout.state + "/skipped.json" }

    package static func read(_ layout: Layout) -> SkippedHead? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(SkippedHead.self, from: data)
    }

    /// Whether `sha` was skipped against the release that is live now.
    package static func covers(_ sha: String, layout: Layout) -> Bool {
        guard let skipped = read(layout) else { return false }
        return skipped.sha == sha && skipped.live == layout.currentSHA()
    }

    package func write(_ layout: Layout) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? FileSystem.writeAtomically(data, to: SkippedHead.path(layout))
    }

    package static func clear(_ layout: Layout) {
        if FileSystem.exists(path(layout)) { unlink(path(layout)) }
    }
}
