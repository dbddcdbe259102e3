import Foundation

/// Blue-green: which port is live, in `.release-agent/slot.json`, written atomically.
struct SlotState: Codable {
    var port: Int
    var sha: String

    static func path(_ layout: Layout) -> String { layout.state + "/slot.json" }

    static func read(_ layout: Layout) -> SlotState? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(SlotState.self, from: data)
    }

    func write(_ layout: Layout) throws {
        try FileSystem.writeAtomically(try JSONEncoder().encode(self), to: SlotState.path(layout))
    }
}
