import Foundation
import ReleaseAgentTestSupport
import Testing

/// kill -9 at random instants during deploy, rollback and prune. CI runs 20 kills;
/// RELEASE_AGENT_TORTURE_KILLS=100 (or more) is the long mode.
@Suite("torture: kill -9 at random instants")
struct TortureTests {
    static var kills: Int {
        Int(ProcessInfo.processInfo.environment["RELEASE_AGENT_TORTURE_KILLS"] ?? "") ?? 20
    }

    @Test("after every kill, current is a complete release; the next operation cleans up and succeeds")
    func killNine() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var files: [String: String] = [:]
        for n in 0..<400 { files["src/\(n % 20)/file\(n).txt"] = "content \(n)\n" }
        try repo.commit("base", files: files)
        let build = ["--build", "sleep 0.05; cat REVISION > BUILT", "--keep-releases", "3"]
        #expect(try agent.run("deploy", build).status == 0)
        var generator = SystemRandomNumberGenerator()
        var killed = 0
        var finished = 0
        for round in 0..<Self.kills {
            let operation = round % 4
            let arguments: (String, [String])
            switch operation {
            case 0, 1:
                try repo.commit("round \(round)", files: ["round.txt": "\(round)\n"])
                arguments = ("deploy", build)
            case 2: arguments = ("rollback", [])
            default: arguments = ("prune", ["--keep", "1"])
            }
            let running = try agent.start(arguments.0, arguments.1)
            usleep(UInt32.random(in: 0...250_000, using: &generator))
            kill(running.pid, SIGKILL)
            let result = try running.wait(timeout: 60)
            if result.status == 128 + SIGKILL { killed += 1 } else { finished += 1 }
            try checkInvariants(agent, after: "\(arguments.0) round \(round)")
            // The next operation repairs what the kill left, under the lock, and succeeds.
            let next = try agent.run("prune", ["--keep", "3"])
            #expect(next.status == 0, "prune after round \(round): \(next.stderr)")
            try checkClean(agent, after: "round \(round)")
        }
        print("torture kill -9: \(Self.kills) rounds, \(killed) killed mid-operation, \(finished) finished first")
        let final = try agent.run("deploy", build)
        #expect(final.status == 0, "\(final.stderr)")
    }

    /// `current`, when present, resolves to a release whose record is complete, whose
    /// REVISION matches, and whose build output is there.
    private func checkInvariants(_ agent: Agent, after label: String) throws {
        guard let sha = agent.currentSHA else {
            Issue.record("\(label): current is missing")
            return
        }
        let dir = "\(agent.root)/releases/\(sha)"
        let state = agent.recordState(sha)
        #expect(
            ["ready", "active", "retired"].contains(state ?? ""), "\(label): current \(sha) is \(state ?? "unrecorded")"
        )
        #expect((try? String(contentsOfFile: dir + "/REVISION", encoding: .utf8)) == sha + "\n", "\(label): REVISION")
        #expect((try? String(contentsOfFile: dir + "/BUILT", encoding: .utf8)) == sha + "\n", "\(label): build output")
    }

    /// No partial release dir, temp link or temp record is left after an operation.
    private func checkClean(_ agent: Agent, after label: String) throws {
        for sha in agent.releaseDirs() {
            let state = agent.recordState(sha)
            #expect(
                ["ready", "active", "retired", "failed"].contains(state ?? ""),
                "\(label): \(sha) left as \(state ?? "unrecorded")")
        }
        let top = try FileManager.default.contentsOfDirectory(atPath: agent.root)
        #expect(!top.contains { $0.hasPrefix(".current.tmp-") }, "\(label): temp link left")
        let records = try FileManager.default.contentsOfDirectory(atPath: agent.root + "/.release-agent/releases")
        #expect(!records.contains { $0.contains(".tmp-") }, "\(label): temp record left")
        try checkInvariants(agent, after: label)
    }
}
