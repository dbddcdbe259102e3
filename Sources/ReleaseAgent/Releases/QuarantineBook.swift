import Foundation

/// Quarantines that outlive their release: a quarantine is a fact about a commit, not about a
/// release dir, so when prune removes a quarantined release its sha and reason move here
/// (`.release-agent/quarantine.json`, the newest `limit` kept). A record on disk is always
/// the authority for its sha: an explicit `deploy` makes a new record and so lifts it.
public struct QuarantineBook: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var sha: String
        public var reason: String
        public var time: Double
    }

    public let layout: Layout
    public static let limit = 1000

    public init(layout: Layout) { self.layout = layout }

    var path: String { layout.state + "/quarantine.json" }

    /// Every entry, oldest first; a missing or damaged file is empty.
    public func entries() -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([Entry].self, from: data)) ?? []
    }

    /// Remembers `removed` (sha -> reason; nil: no quarantine, forget it).
    func remember(_ removed: [(sha: String, reason: String?)]) throws {
        guard !removed.isEmpty else { return }
        let gone = Set(removed.map(\.sha))
        var list = entries().filter { !gone.contains($0.sha) }
        let now = Date().timeIntervalSince1970
        for item in removed {
            if let reason = item.reason { list.append(Entry(sha: item.sha, reason: reason, time: now)) }
        }
        if list.count > Self.limit { list.removeFirst(list.count - Self.limit) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(try encoder.encode(list), to: path)
    }
}

extension RecordStore {
    /// Why poll and webhooks must not deploy `sha`: its record's quarantine when it has a
    /// record, else what prune remembered of it.
    public func quarantine(_ sha: String) -> String? {
        if let record = read(sha) { return record.quarantine }
        return QuarantineBook(layout: layout).entries().last { $0.sha == sha }?.reason
    }
}
