import Foundation

/// `.release-agent/refused.json`: the last refusal to deploy (refuse-force-push,
/// min-free-space), so each is recorded once (history, `on-failure`, `last_result`) and a
/// cron `poll` that meets the same refusal again stays quiet. A deploy that succeeds clears it.
package struct Refusal: Codable, Equatable {
    package var sha: String
    package var stage: String

    package init(sha: String, stage: String) {
        self.sha = sha
        self.stage = stage
    }

    static func path(_ layout: Layout) -> String { layout.state + "/refused.json" }

    package static func read(_ layout: Layout) -> Refusal? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(Refusal.self, from: data)
    }

    package func write(_ layout: Layout) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? FileSystem.writeAtomically(data, to: Refusal.path(layout))
    }

    package static func clear(_ layout: Layout) {
        if FileSystem.exists(path(layout)) { unlink(path(layout)) }
    }
}
