import Foundation

/// Blue-green: which port is live, in `.release-agent/slot.json`, written atomically.
package struct SlotState: Codable {
    package var port: Int
    package var sha: String

    static func path(_ layout: Layout) -> String { layout.state + "/slot.json" }

    static func read(_ layout: Layout) -> SlotState? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(SlotState.self, from: data)
    }

    /// The live slot, never guessed: nil when nothing is live (both slots are free); an error
    /// naming the file and the fix when a release is live and the file is missing, does not
    /// parse, or names a port that is not one of `slots`.
    package static func live(_ layout: Layout, slots: SlotPair) throws -> SlotState? {
        guard let current = layout.currentSHA() else { return nil }
        let path = path(layout)
        let problem: String
        if !FileSystem.exists(path) {
            problem = "is missing"
        } else if let state = read(layout) {
            if slots.contains(state.port) { return state }
            problem = "names port \(state.port), which is not one of slots \(slots)"
        } else {
            problem = "cannot be read as {\"port\": N, \"sha\": \"...\"}"
        }
        throw AgentError.failed(
            "blue-green: \(path) \(problem) while releases/\(current.prefix(12)) is live, so the live slot is unknown and release-agent will not guess it; write the port that serves now, e.g. echo '{\"port\": \(slots.first), \"sha\": \"\(current)\"}' > \(path), and deploy again"
        )
    }

    func write(_ layout: Layout) throws {
        try FileSystem.writeAtomically(try JSONEncoder().encode(self), to: SlotState.path(layout))
    }
}
