import Foundation

/// `.release-agent/paused`: while it exists, poll, the poll loop and webhooks deploy nothing
/// (an explicit deploy or rollback still does: the operator is in charge). Written without
/// the lock, so a pause never waits for a running deploy, which finishes.
public struct PauseState: Codable, Sendable, Equatable {
    public var reason: String
    public var time: Double
    public var user: String

    static func path(_ layout: Layout) -> String { layout.state + "/paused" }

    public static func read(_ layout: Layout) -> PauseState? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        // A file that does not parse still pauses: someone meant it.
        return (try? JSONDecoder().decode(PauseState.self, from: data))
            ?? PauseState(reason: "paused (unreadable \(path(layout)))", time: 0, user: "?")
    }

    public static func isPaused(_ layout: Layout) -> Bool { FileSystem.exists(path(layout)) }

    public func write(_ layout: Layout) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(try encoder.encode(self), to: PauseState.path(layout))
    }

    /// True when there was a pause to lift.
    public static func remove(_ layout: Layout) -> Bool {
        guard isPaused(layout) else { return false }
        unlink(path(layout))
        FileSystem.syncDirectory(layout.state)
        return true
    }

    /// "maintenance window, by deploy at 2026-12-01T10:00:00Z"
    public var text: String {
        let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: time))
        return "\(reason.terminalSafe), by \(user.terminalSafe) at \(when)"
    }
}
