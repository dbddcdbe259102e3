import Foundation

/// One line of `history.jsonl`.
public struct HistoryEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case deploy, rollback, prune }
    /// `skipped`: a head `paths` did not build (it changed nothing under them).
    /// `inconclusive`: live and healthy, but its canary analysis could not judge it.
    public enum Result: String, Codable, Sendable { case ok, failed, skipped, inconclusive }

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
    public var signer: String?
    /// Seconds per stage (fetch, checkout, build, start, health, activate, ...).
    public var stages: [String: Double]?
    /// The canary analysis of a deploy: outcome and measurements.
    public var analysis: AnalysisRecord?

    public init(event: Kind, result: Result, sha: String?, previous: String? = nil) {
        self.time = Date().timeIntervalSince1970
        self.event = event
        self.result = result
        self.sha = sha
        self.previous = previous
    }

    /// True when this event made `sha` the live release.
    public var activated: Bool {
        (result == .ok || result == .inconclusive) && (event == .deploy || event == .rollback) && sha != nil
    }
}

/// The append-only event log. Each append is one `write(2)` of a whole line, then fsync.
/// Readers go from the end, so status, history -n and rollback cost the same with a million
/// lines as with ten. Past `rotateBytes` the older lines move to `history.old.jsonl.gz`
/// (gzip members appended), which only `history` with a large `-n` reads.
public struct History: Sendable {
    public let path: String
    public static let rotateBytes = 8 << 20
    public static let keepBytes = 2 << 20

    public init(path: String) { self.path = path }

    public var archive: String { (path as NSString).deletingPathExtension + ".old.jsonl.gz" }
    var totalsPath: String { (path as NSString).deletingLastPathComponent + "/totals.json" }

    public func append(_ event: HistoryEvent) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(event)
        line.append(0x0A)
        // The running totals first, from what was there before this line (see `totals()`).
        var totals = self.totals()
        totals.add(event)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AgentError.system { "cannot open \(path): \($0); check permissions and free space" }
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
            throw AgentError.system { "cannot append to \(path): \($0); check free space" }
        }
        try? totals.write(to: totalsPath)
        if Int(st.st_size) + line.count > Self.rotateBytes { rotate() }
    }

    /// Every event, oldest first, the archive included. A line that does not parse (a torn
    /// write) is skipped.
    public func read() -> [HistoryEvent] {
        archived() + (FileManager.default.contents(atPath: path).map(History.parse) ?? [])
    }

    public static func parse(_ data: Data) -> [HistoryEvent] {
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(HistoryEvent.self, from: Data($0)) }
    }

    /// The newest `count` events, oldest first, read from the end.
    public func tail(_ count: Int) -> [HistoryEvent] {
        var events: [HistoryEvent] = []
        scanBackward { event in
            events.append(event)
            return events.count < count
        }
        if events.count < count {
            events += archived().suffix(count - events.count).reversed()
        }
        return events.reversed()
    }

    /// The shas made live, oldest first: the newest `limit` activations, read from the end.
    /// Rollback and prune look back no further than releases are kept on disk.
    public func recentActivations(limit: Int = 1000) -> [String] {
        var shas: [String] = []
        scanBackward { event in
            if event.activated, let sha = event.sha { shas.append(sha) }
            return shas.count < limit
        }
        return shas.reversed()
    }

    /// The shas that were made live, oldest first.
    public static func activations(_ events: [HistoryEvent]) -> [String] {
        events.filter(\.activated).compactMap(\.sha)
    }

    /// Calls `visit` with each event of the current file, newest first, until it answers false.
    func scanBackward(_ visit: (HistoryEvent) -> Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let decoder = JSONDecoder()
        var end = Int(st.st_size)
        var carry = Data()
        let chunk = 64 << 10
        while end > 0 {
            let start = max(0, end - chunk)
            var bytes = [UInt8](repeating: 0, count: end - start)
            guard pread(fd, &bytes, bytes.count, off_t(start)) == bytes.count else { return }
            var data = Data(bytes)
            data.append(carry)
            var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            // The first piece may be the tail of a line that starts in an earlier chunk.
            carry = start > 0 ? Data(lines.removeFirst()) : Data()
            for line in lines.reversed() where !line.isEmpty {
                guard let event = try? decoder.decode(HistoryEvent.self, from: Data(line)) else { continue }
                if !visit(event) { return }
            }
            end = start
        }
    }

    /// Events in the archive, oldest first (gzip -dc: read only when asked for that far back).
    func archived() -> [HistoryEvent] {
        guard FileSystem.exists(archive) else { return [] }
        let out = archive + ".read-\(getpid())"
        defer { unlink(out) }
        guard
            case .success(let pid) = Spawn.start(
                ["/bin/gzip", "-dc", archive], output: .files(stdout: out, stderr: "/dev/null"))
        else { return [] }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return FileManager.default.contents(atPath: out).map(History.parse) ?? []
    }

    /// Moves all but the newest `keepBytes` (whole lines) to the archive: appended there
    /// first (gzip members concatenate), then the kept part replaces the file atomically. A
    /// crash between the two repeats some lines in `history -n` with a large n, never loses one.
    func rotate() {
        guard let data = FileManager.default.contents(atPath: path), data.count > Self.keepBytes else { return }
        var cut = data.count - Self.keepBytes
        while cut < data.count, data[cut - 1] != 0x0A { cut += 1 }
        guard cut < data.count else { return }
        let old = path + ".rotate-\(getpid())"
        guard (try? data[..<cut].write(to: URL(fileURLWithPath: old))) != nil else { return }
        defer { unlink(old) }
        let command = "gzip -c < \"$1\" >> \"$2\" && sync \"$2\""
        guard case .success(let pid) = Spawn.start(["/bin/sh", "-c", command, "rotate", old, archive]) else { return }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0 else { return }
        try? FileSystem.writeAtomically(Data(data[cut...]), to: path)
    }

    /// Deploy and rollback counts for /metrics, kept beside the history so a scrape does not
    /// read it; rebuilt from the whole history once when missing (an upgrade).
    public func totals() -> HistoryTotals {
        if let data = FileManager.default.contents(atPath: totalsPath),
            let totals = try? JSONDecoder().decode(HistoryTotals.self, from: data)
        {
            return totals
        }
        var totals = HistoryTotals()
        read().forEach { totals.add($0) }
        return totals
    }
}

/// What /metrics counts, summed as events are appended.
public struct HistoryTotals: Codable, Sendable, Equatable {
    public var deploysOK = 0
    public var deploysFailed = 0
    public var rollbacksOK = 0
    public var rollbacksFailed = 0
    public var deploySeconds = 0.0
    public var lastDeploySeconds: Double?
    /// When the newest successful deploy ended (Unix seconds).
    public var lastSuccessTime: Double?
    /// Stage durations of deploys and rollbacks, by stage (nil in a totals file of 0.10.0).
    public var stages: [String: StageHistogram]?
    /// Deploys live whose canary analysis was inconclusive (nil in a file written before it).
    public var deploysInconclusive: Int?

    public init() {}

    mutating func add(_ event: HistoryEvent) {
        switch (event.event, event.result) {
        case (.deploy, .ok):
            deploysOK += 1
            deploySeconds += event.seconds ?? 0
            lastDeploySeconds = event.seconds
            lastSuccessTime = event.time
        case (.deploy, .failed): deploysFailed += 1
        case (.deploy, .inconclusive): deploysInconclusive = (deploysInconclusive ?? 0) + 1
        case (.rollback, .ok): rollbacksOK += 1
        case (.rollback, .failed): rollbacksFailed += 1
        default: break
        }
        for (stage, seconds) in event.stages ?? [:] {
            stages = stages ?? [:]
            stages?[stage, default: StageHistogram()].observe(seconds)
        }
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(try encoder.encode(self), to: path)
    }
}

/// One stage's durations in fixed buckets, the way a Prometheus histogram counts them.
public struct StageHistogram: Codable, Sendable, Equatable {
    /// Upper bounds in seconds: a health check of a second to a build of half an hour.
    public static let bounds: [Double] = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
    /// Observations per bucket, not cumulative; the last is above every bound.
    public var counts = [Int](repeating: 0, count: StageHistogram.bounds.count + 1)
    public var sum = 0.0
    public var count = 0

    public init() {}

    mutating func observe(_ seconds: Double) {
        let index = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
        if counts.count != Self.bounds.count + 1 { counts = [Int](repeating: 0, count: Self.bounds.count + 1) }
        counts[index] += 1
        sum += seconds
        count += 1
    }
}
