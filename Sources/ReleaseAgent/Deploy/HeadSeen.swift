import Foundation

/// `.release-agent/head.json`: the branch head as last seen (by a fetch, a poll or a
/// webhook's deploy), when, and how far the live release was behind it then, so `status`
/// and `/metrics` can say whether the server runs what the branch says.
public struct HeadSeen: TimedStatusFile, Sendable {
    public static let fileName = "head.json"

    public var sha: String
    public var time: Double
    public var source: String
    /// The live release this was measured against.
    public var live: String?
    /// Commits on the branch after the live release; nil when not known (the head was seen
    /// without a fetch) or when the live release is not on the branch.
    public var behind: Int?
    /// False when the live release is not in the branch's history (a rollback to another
    /// line, a force push); nil when not known.
    public var liveOnBranch: Bool?
    /// Subjects of up to 10 pending commits, newest first.
    public var pending: [String] = []

    public init(sha: String, source: String, live: String?) {
        self.sha = sha
        self.time = Date().timeIntervalSince1970
        self.source = source
        self.live = live
    }

    /// A head seen without a fetch (poll's lock-free look): what was counted stays when it
    /// is the same head and the same live release.
    public static func sawHead(_ sha: String, source: String, layout: Layout) {
        let live = layout.currentSHA()
        var seen = HeadSeen(sha: sha, source: source, live: live)
        let old = read(layout)
        if let old, old.sha == sha, old.live == live {
            seen.behind = old.behind
            seen.liveOnBranch = old.liveOnBranch
            seen.pending = old.pending
        } else if sha == live {
            seen.behind = 0
            seen.liveOnBranch = true
        }
        seen.record(layout, over: old)
    }

    /// Whether the live release is behind what was seen, in one line for `status`.
    public func line(branch: String, live: String?, now: Double = Date().timeIntervalSince1970) -> String {
        let ago = Self.ago(now - time)
        let head = "head \(sha.prefix(7)), seen \(ago) ago by \(source)"
        guard let live else { return "nothing is live; \(branch) is at \(sha.prefix(7)) (\(head))" }
        if live == sha { return "up to date with \(branch) (\(head))" }
        guard self.live == live else {
            return "live differs from \(branch) (\(head)); the count is from before the last change"
        }
        if liveOnBranch == false {
            return "live \(live.prefix(7)) is not on \(branch) (a rollback or a force push; \(head))"
        }
        guard let behind else {
            return "live is behind \(branch) (\(head); status --fetch counts the commits)"
        }
        return "live is \(behind) commit\(behind == 1 ? "" : "s") behind \(branch) (\(head))"
    }

    static func ago(_ seconds: Double) -> String {
        let s = Int(max(0, seconds))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min" }
        if s < 86400 { return "\(s / 3600) h" }
        return "\(s / 86400) d"
    }

    /// Out of sync for /metrics: the live release is not the head last seen.
    public var outOfSync: Bool { live != sha }
}
