import Foundation
import ReleaseAgent
import Testing

private func sha(_ n: Int) -> String { String(repeating: String(n % 10), count: 40) }

private func record(_ n: Int, _ state: ReleaseState) -> ReleaseRecord {
    ReleaseRecord(sha: sha(n), state: state, log: "", createdAt: Double(n))
}

@Suite("store rules")
struct PolicyTests {
    @Test("prune keeps the newest N complete releases plus current and previous")
    func pruneKeepsNewest() {
        let records = (1...6).map { record($0, $0 == 6 ? .active : .retired) }
        let victims = Policies.pruneVictims(records: records, current: sha(6), previous: sha(5), pins: [], keep: 3)
        #expect(Set(victims) == [sha(1), sha(2), sha(3)])
    }

    @Test("prune never removes current, the previous one, or a pinned prefix, even past N")
    func pruneProtects() {
        let records = (1...6).map { record($0, .retired) }
        let victims = Policies.pruneVictims(
            records: records, current: sha(1), previous: sha(2), pins: [String(sha(3).prefix(6))], keep: 1)
        // The newest (6) is kept as the one of N; 1, 2 and 3 are protected.
        #expect(Set(victims) == [sha(4), sha(5)])
    }

    @Test("failed releases do not count toward N; only the newest failed one stays")
    func pruneFailed() {
        let records = [
            record(1, .retired), record(2, .failed), record(3, .active), record(4, .failed), record(5, .failed),
        ]
        let victims = Policies.pruneVictims(records: records, current: sha(3), previous: sha(1), pins: [], keep: 2)
        #expect(Set(victims) == [sha(2), sha(4)])
    }

    @Test("prune leaves building releases to the crash cleanup")
    func pruneSkipsBuilding() {
        let records = [record(1, .building), record(2, .active)]
        #expect(Policies.pruneVictims(records: records, current: sha(2), previous: nil, pins: [], keep: 1).isEmpty)
    }

    @Test("rollback target walks back through what was live: C -> B -> A, never C again")
    func rollbackTarget() {
        let (a, b, c) = (sha(1), sha(2), sha(3))
        #expect(Policies.rollbackTarget(activations: [a, b, c], current: c, eligible: [a, b, c]) == b)
        // After C -> B, C is quarantined (not eligible).
        #expect(Policies.rollbackTarget(activations: [a, b, c, b], current: b, eligible: [a, b]) == a)
        // A release no longer on disk is skipped.
        #expect(Policies.rollbackTarget(activations: [a, b, c], current: c, eligible: [a, c]) == a)
        #expect(Policies.rollbackTarget(activations: [a], current: a, eligible: [a]) == nil)
        #expect(Policies.previous(activations: [a, b, c, c], current: c) == b)
    }

    @Test("state transitions follow building -> ready -> active/retired, plus failed")
    func transitions() {
        #expect(ReleaseState.building.canMove(to: .ready))
        #expect(ReleaseState.building.canMove(to: .failed))
        #expect(ReleaseState.ready.canMove(to: .active))
        #expect(ReleaseState.active.canMove(to: .retired))
        #expect(ReleaseState.retired.canMove(to: .active))
        #expect(ReleaseState.failed.canMove(to: .building))
        #expect(!ReleaseState.building.canMove(to: .active))
        #expect(!ReleaseState.failed.canMove(to: .active))
        #expect(!ReleaseState.failed.canMove(to: .ready))
        #expect(!ReleaseState.ready.canMove(to: .building))
        #expect(ReleaseState.allCases.filter(\.isComplete) == [.ready, .active, .retired])
    }
}

@Suite("history log")
struct HistoryTests {
    @Test("a torn last line is ignored, and the next append starts on a line of its own")
    func tornLine() throws {
        let dir = NSTemporaryDirectory() + "/ra-history-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let history = History(path: dir + "/history.jsonl")
        try history.append(HistoryEvent(event: .deploy, result: .ok, sha: sha(1)))
        let handle = try #require(FileHandle(forWritingAtPath: history.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"time":1,"event":"depl"#.utf8))
        try handle.close()
        #expect(history.read().map(\.sha) == [sha(1)])
        try history.append(HistoryEvent(event: .rollback, result: .ok, sha: sha(2)))
        #expect(history.read().map(\.sha) == [sha(1), sha(2)])
        #expect(History.activations(history.read()) == [sha(1), sha(2)])
    }

    @Test("garbage lines are skipped, failed events are not activations")
    func garbage() {
        let text =
            "not json\n{\"time\":1,\"event\":\"deploy\",\"result\":\"failed\",\"sha\":\"\(sha(1))\"}\n\u{0}\u{1}\n"
        let events = History.parse(Data(text.utf8))
        #expect(events.count == 1)
        #expect(History.activations(events).isEmpty)
    }
}
