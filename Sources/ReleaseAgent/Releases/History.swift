import Foundation

/// One line of `history.jsonl`.
public struct HistoryEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case deploy, rollback, prune }
    public enum Result: String, Codable, Sendable { case ok, failed }

    public var time: Double
    public var event: Kind
    public var result: Result
    public var sha: String?
    public var previous: String?
    public var trigger: String?
    public var stage: String?
    public var reason: String?
    public var seconds: Double?
    public var subject: String?
    public var nonFastForward: Bool?
    public var removed: [String]?

    public init(event: Kind, result: Result, sha: String?, previous: String? = nil) {
        self.time = Date().timeIntervalSince1970
        self.event = event
        self.result = result
        self.sha = sha
        self.previous = previous
    }

    /// True when this event made `sha` the live release.
    public var activated: Bool { result == .ok && (event == .deploy || event == .rollback) && sha != nil }
}

/// The append-only event log. Each append is one `write(2)` of a whole line, then fsync.
public struct History: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func append(_ event: HistoryEvent) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(event)
        line.append(0x0A)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AgentError.failed("cannot open \(path): \(FileSystem.errnoText()); check permissions and free space")
        }
        defer { close(fd) }
        // A torn last line (a crash mid-write) must not swallow this one.
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size > 0 {
            let reader = open(path, O_RDONLY | O_CLOEXEC)
            var last: UInt8 = 0x0A
            if reader >= 0 {
                _ = pread(reader, &last, 1, st.st_size - 1)
                close(reader)
            }
            if last != 0x0A { line.insert(0x0A, at: 0) }
        }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw AgentError.failed("cannot append to \(path): \(FileSystem.errnoText()); check free space")
        }
    }

    /// Every event, oldest first. A line that does not parse (a torn write) is skipped.
    public func read() -> [HistoryEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return History.parse(data)
    }

    public static func parse(_ data: Data) -> [HistoryEvent] {
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(HistoryEvent.self, from: Data($0)) }
    }

    /// The shas that were made live, oldest first.
    public static func activations(_ events: [HistoryEvent]) -> [String] {
        events.filter(\.activated).compactMap(\.sha)
    }
}
