import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("rollback end to end")
struct RollbackTests {
    @Test("rollback goes C -> B -> A, never back to C; the left release is quarantined")
    func rollbackWalksBack() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for n in 1...3 {
            shas.append(try repo.commit("c\(n)", files: ["v": "\(n)"]))
            #expect(try agent.run("deploy", ["--build", "touch BUILT"]).status == 0)
        }
        let first = try agent.run("rollback")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(agent.currentSHA == shas[1])
        #expect(first.stdout.contains(shas[1]))
        let second = try agent.run("rollback")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(agent.currentSHA == shas[0])
        let third = try agent.run("rollback")
        #expect(third.status == 1)
        #expect(third.stderr.hasPrefix("Error: no earlier release"))
        #expect(agent.currentSHA == shas[0])

        let status = try agent.run("status")
        #expect(status.stdout.contains("quarantined: rolled back from"))
        let events = try agent.historyEvents()
        #expect(
            events.filter { $0["event"] as? String == "rollback" }.compactMap { $0["sha"] as? String } == [
                shas[1], shas[0],
            ])
    }

    @Test("rollback to a named prefix, and an explicit deploy lifts the quarantine")
    func rollbackToPrefix() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for n in 1...3 {
            shas.append(try repo.commit("c\(n)", files: ["v": "\(n)"]))
            #expect(try agent.run("deploy").status == 0)
        }
        let named = try agent.run("rollback", [String(shas[0].prefix(7))])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(agent.currentSHA == shas[0])
        let missing = try agent.run("rollback", ["abcdef12"])
        #expect(missing.status == 1)
        #expect(agent.currentSHA == shas[0])
        let bad = try agent.run("rollback", ["not-hex"])
        #expect(bad.status == 2)

        let redeploy = try agent.run("deploy")
        #expect(redeploy.status == 0)
        #expect(agent.currentSHA == shas[2])
        #expect(redeploy.stderr.contains("skipped"))
        let object: [String: Any]? = try agent.statusObject()
        let releases = object?["releases"] as? [[String: Any]] ?? []
        #expect(releases.first { $0["sha"] as? String == shas[2] }?["quarantine"] == nil)
    }
}
