import Foundation

/// What `status` shows: read without the lock, so it works while a deploy runs.
public struct StatusReport: Codable, Sendable {
    public struct Release: Codable, Sendable {
        public var sha: String
        public var state: ReleaseState
        public var current: Bool
        public var subject: String?
        public var author: String?
        public var createdAt: Double
        public var quarantine: String?
        public var failure: String?
        public var signer: String?
        public var log: String
    }

    public var root: String
    public var current: String?
    public var currentProblem: String?
    public var releases: [Release]
    /// Quarantined commits with no release dir (pruned, or a checkout that was removed):
    /// poll and webhooks skip them all the same, so they are listed too.
    public var quarantinedElsewhere: [QuarantineBook.Entry]
    public var lastResult: HistoryEvent?
    public var paused: PauseState?
    /// Fleet mode: this host's gate.
    public var fleet: FleetLocalState?
    public var headSeen: HeadSeen?
    /// Commits on the branch after the live release, when counted against it (`status --fetch`).
    public var behind: Int?
    /// "live is 3 commits behind main (head abc1234, seen 2 min ago by poll)".
    public var sync: String?
    /// `paths` skipped the head seen last: it changed nothing under them since the live release.
    public var skipped: SkippedHead?
    /// The canary analysis running, or the last one (its totals left out).
    public var analysis: AnalysisState?

    public init(layout: Layout, branch: String = "main") {
        let records = RecordStore(layout: layout)
        root = layout.root
        current = layout.currentSHA()
        if FileSystem.exists(layout.current), current == nil {
            currentProblem = "\(layout.current) does not point into releases/; deploy or roll back to repair it"
        } else if let current, !FileSystem.isDirectory(layout.release(current)) {
            currentProblem = "current points at releases/\(current), which is missing; deploy or roll back to repair it"
        }
        let dirs = Set(records.directories())
        let live = current
        let all = records.all()
        releases = all.filter { dirs.contains($0.sha) }
            .sorted { ($0.createdAt, $0.sha) > ($1.createdAt, $1.sha) }
            .map { record in
                Release(
                    sha: record.sha, state: record.state, current: record.sha == live,
                    subject: record.commit?.subject, author: record.commit?.author, createdAt: record.createdAt,
                    quarantine: record.quarantine, failure: record.failure, signer: record.signer, log: record.log)
            }
        var elsewhere = all.filter { !dirs.contains($0.sha) }.compactMap { record in
            record.quarantine.map { QuarantineBook.Entry(sha: record.sha, reason: $0, time: record.createdAt) }
        }
        let recorded = Set(all.map(\.sha))
        elsewhere += QuarantineBook(layout: layout).entries().filter { !recorded.contains($0.sha) }
        quarantinedElsewhere = elsewhere.sorted { $0.time > $1.time }
        lastResult = History(path: layout.history).tail(1).last
        paused = PauseState.read(layout)
        fleet = FleetLocalState.read(layout)
        headSeen = HeadSeen.read(layout)
        if let headSeen, headSeen.live == current { behind = headSeen.behind }
        sync = headSeen?.line(branch: branch, live: current)
        if let skip = SkippedHead.read(layout), skip.live == current, headSeen.map({ $0.sha == skip.sha }) ?? true {
            skipped = skip
        }
        if var state = AnalysisState.read(layout) {
            state.totals = [:]
            analysis = state
        }
    }

    public var text: String {
        var lines: [String] = []
        lines.append("root:    \(root)")
        if let current {
            let subject = releases.first { $0.sha == current }?.subject ?? ""
            lines.append("current: \(current)  \(subject.terminalSafe)")
        } else {
            lines.append("current: none (nothing deployed yet)")
        }
        if let currentProblem { lines.append("warning: \(currentProblem)") }
        if let paused { lines.append("paused:  \(paused.text); poll and webhooks deploy nothing until resume") }
        if let fleet { lines.append("fleet:   \(fleet.text.terminalSafe)") }
        if let sync {
            lines.append("sync:    \(sync)")
            if let headSeen, headSeen.live == current, headSeen.sha != current {
                lines += headSeen.pending.map { "           pending: \($0.terminalSafe)" }
            }
        }
        if let skipped {
            lines.append(
                "skipped: \(skipped.sha.prefix(12)) \(skipped.reason.terminalSafe); not built (deploy --force builds it)"
            )
        }
        if let analysis { lines.append("analysis: \(analysis.line)") }
        if let last = lastResult {
            let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: last.time))
            let what = "\(last.event.rawValue) \(last.result.rawValue) \(last.sha.map { String($0.prefix(12)) } ?? "")"
            lines.append("last:    \(what) at \(when)\(last.reason.map { ": \($0.terminalSafe)" } ?? "")")
        }
        lines.append("releases (\(releases.count)):")
        for release in releases {
            let marker = release.current ? "*" : " "
            var line =
                "\(marker) \(release.sha.prefix(12))  \(release.state.rawValue.fitted(to: 8))  \((release.subject ?? "").terminalSafe)"
            if let signer = release.signer { line += "  signed: \(signer.terminalSafe)" }
            if let quarantine = release.quarantine { line += "  [quarantined: \(quarantine.terminalSafe)]" }
            lines.append(line)
        }
        if !quarantinedElsewhere.isEmpty {
            lines.append("quarantined, not on disk (\(quarantinedElsewhere.count)):")
            for entry in quarantinedElsewhere.prefix(20) {
                lines.append("  \(entry.sha.prefix(12))  [quarantined: \(entry.reason.terminalSafe)]")
            }
            if quarantinedElsewhere.count > 20 { lines.append("  ... and \(quarantinedElsewhere.count - 20) more") }
        }
        return lines.joined(separator: "\n")
    }
}

extension HistoryEvent {
    public var text: String {
        let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: time))
        var line =
            "\(when)  \(event.rawValue.fitted(to: 8)) \(result.rawValue.fitted(to: 12)) \(sha.map { String($0.prefix(12)) } ?? "-")"
        if let previous { line += " (from \(previous.prefix(12)))" }
        if let subject { line += "  \(subject.terminalSafe)" }
        if let seconds { line += "  " + Duration.twoDecimals(seconds) + "s" }
        if nonFastForward == true { line += "  non-fast-forward" }
        if let removed { line += "  removed \(removed.count)" }
        if let signer { line += "  signed: \(signer.terminalSafe)" }
        if let reason { line += "  \(reason.terminalSafe)" }
        return line
    }
}
