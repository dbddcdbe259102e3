import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 17, item 8: a long history is read from its end and rotated; nothing is lost.
@Suite("history: read from the end, rotated")
struct HistoryScaleTests {
    @Test("200,000 old lines: status, history -n and rollback read the end; a deploy rotates; history still has all")
    func longHistory() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let b = try repo.commit("b")
        #expect(try agent.run("deploy").status == 0)
        let path = agent.root + "/.release-agent/history.jsonl"
        let kept = try Data(contentsOf: URL(fileURLWithPath: path))
        let old =
            #"{"event":"deploy","result":"failed","sha":"\#(String(repeating: "e", count: 40))","stage":"build","time":1700000000,"trigger":"poll"}"#
            + "\n"
        let count = 200_000
        var data = Data(String(repeating: old, count: count).utf8)
        data.append(kept)
        try data.write(to: URL(fileURLWithPath: path))
        unlink(agent.root + "/.release-agent/totals.json")

        let last = try agent.historyEvents(["-n", "2"])
        #expect(last.map { $0["sha"] as? String } == [a, b])
        let status = try agent.run("status")
        #expect(status.stdout.contains("last:    deploy ok \(b.prefix(12))"), "\(status.stdout)")
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == a)

        let c = try repo.commit("c")
        #expect(try agent.run("deploy").status == 0)
        #expect(agent.currentSHA == c)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
        #expect(size > 0 && size < 8 << 20, "history.jsonl is \(size) bytes after rotation")
        #expect(FileManager.default.fileExists(atPath: agent.root + "/.release-agent/history.old.jsonl.gz"))
        let all = try agent.historyEvents(["-n", "1000000"])
        #expect(all.count == count + 4, "\(all.count) events")
        #expect(all.suffix(4).map { $0["sha"] as? String } == [a, b, a, c])
        #expect(try agent.run("rollback").status == 0)
        #expect(agent.currentSHA == a)
        // /metrics' counts come from totals.json, rebuilt from the whole history once.
        let totals =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: agent.root + "/.release-agent/totals.json")))
            as? [String: Any]
        #expect(totals?["deploysFailed"] as? Int == count)
        #expect(totals?["deploysOK"] as? Int == 3)
        #expect(totals?["rollbacksOK"] as? Int == 2)
    }
}
