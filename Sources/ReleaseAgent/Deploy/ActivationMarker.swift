import Foundation

/// `.release-agent/activation.json`: written just before the swap and removed once the
/// outcome is recorded. While it exists, an activation began and did not finish (the agent
/// was killed between the swap and a passed health check, or during the revert); the next
/// operation, under the lock, finishes it (see `ActivationRecovery`).
package struct ActivationMarker: Codable, Equatable {
    package enum Phase: String, Codable { case activating, reverting }

    package var sha: String
    package var previous: String?
    package var kind: HistoryEvent.Kind
    package var trigger: String
    package var phase: Phase
    /// Blue-green: the candidate's slot, and the slot that was live before.
    package var candidatePort: Int?
    package var livePort: Int?
    /// The release was already live (a forced redeploy of it).
    package var wasLive: Bool?
    /// The activation ends with a canary analysis: an agent that died after the swap and
    /// before the verdict left a release live but not judged.
    package var analyzing: Bool?

    package static func path(_ layout: Layout) -> String { layout.state + "/activation.json" }

    package static func exists(_ layout: Layout) -> Bool { FileSystem.exists(path(layout)) }

    /// Nil when there is none. A marker that does not parse (a torn write cannot happen:
    /// it is written atomically) is treated as none and removed by the caller.
    package static func read(_ layout: Layout) -> ActivationMarker? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(ActivationMarker.self, from: data)
    }

    package func write(_ layout: Layout) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(try encoder.encode(self), to: ActivationMarker.path(layout))
    }

    package static func remove(_ layout: Layout) {
        unlink(path(layout))
        FileSystem.syncDirectory(layout.state)
    }
}
