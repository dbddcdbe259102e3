import Foundation

/// Reads and writes per-release records atomically.
public struct RecordStore: Sendable {
    public let layout: Layout

    public init(layout: Layout) { self.layout = layout }

    public func read(_ sha: String) -> ReleaseRecord? {
        guard let data = FileManager.default.contents(atPath: layout.record(sha)) else { return nil }
        return try? JSONDecoder().decode(ReleaseRecord.self, from: data)
    }

    public func write(_ record: ReleaseRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(try encoder.encode(record), to: layout.record(record.sha))
    }

    /// Moves a release to `state`, checking the move is one the store allows.
    @discardableResult
    public func move(_ sha: String, to state: ReleaseState, _ change: (inout ReleaseRecord) -> Void = { _ in }) throws
        -> ReleaseRecord
    {
        guard var record = read(sha) else {
            throw AgentError.failed("the record \(layout.record(sha)) is missing; run the command again to rebuild it")
        }
        if record.state != state {
            guard record.state.canMove(to: state) else {
                throw AgentError.failed("release \(sha) cannot move from \(record.state) to \(state)")
            }
            record.state = state
        }
        change(&record)
        try write(record)
        return record
    }

    /// Changes a record without moving its state (process group bookkeeping).
    public func update(_ sha: String, _ change: (inout ReleaseRecord) -> Void) throws {
        guard var record = read(sha) else { return }
        change(&record)
        try write(record)
    }

    /// Every record on disk; unreadable ones are skipped (the cleanup treats their dirs as incomplete).
    public func all() -> [ReleaseRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.records)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { read(String($0.dropLast(5))) }
    }

    /// Release directories on disk (full commit ids only).
    public func directories() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.releases)) ?? []
        return names.filter { CommitID(hex: $0) != nil }
    }
}

/// This boot's id, so a process group id recorded before a reboot is never signalled.
public enum BootID {
    public static let current: String? = {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }()
}
