import Foundation

/// A small JSON file under `.release-agent/` that status, /healthz and /metrics read
/// (head.json, fetch.json, fleet.json): read whole, written atomically, best effort: a state
/// file that cannot be written loses only a line of status or a metric.
public protocol StatusFile: Codable {
    static var fileName: String { get }
}

extension StatusFile {
    static func path(_ layout: Layout) -> String { layout.state + "/" + fileName }

    public static func read(_ layout: Layout) -> Self? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(Self.self, from: data)
    }

    public func write(_ layout: Layout) {
        guard FileSystem.isDirectory(layout.state), let data = try? JSONEncoder().encode(self) else { return }
        try? FileSystem.writeAtomically(data, to: Self.path(layout))
    }
}
