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
        // An activate hook and a passing health check, so kills also land between the swap
        // and the check (issue 16, item 2): the next operation must finish that activation.
        let hooks = scratch.sub("hooks")
        try CorePromiseTests.hook(hooks, "activate", "#!/bin/sh\nsleep 0.05\n")
        let listener = try TCPListener()
        let build = [
            "--build", "sleep 0.05; cat REVISION > BUILT", "--keep-releases", "3", "--hooks-dir", hooks,
            "--health-tcp", "127.0.0.1:\(listener.port)",
        ]
        #expect(try agent.run("deploy", build).status == 0)
        var generator = SystemRandomNumberGenerator()
        var killed = 0
        var finished = 0
        var activations = 0
        let marker = agent.root + "/.release-agent/activation.json"
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
            let interrupted = FileManager.default.fileExists(atPath: marker)
            if interrupted { activations += 1 }
            let next = try agent.run("prune", ["--keep", "3"] + build.suffix(4))
            #expect(next.status == 0, "prune after round \(round): \(next.stderr)")
            try checkClean(agent, after: "round \(round)")
            // Item 2's rule: no activation is left half done, and what is live was checked.
            #expect(!FileManager.default.fileExists(atPath: marker), "round \(round): activation left unfinished")
            if let sha = agent.currentSHA {
                #expect(agent.recordState(sha) == "active", "round \(round): live \(sha) is not recorded active")
            }
        }
        print(
            "torture kill -9: \(Self.kills) rounds, \(killed) killed mid-operation, \(finished) finished first, \(activations) inside an activation"
        )
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

@Suite("torture: damaged state")
struct DamagedStateTests {
    @Test(
        "a truncated record, garbage history, a missing lock file, current on a deleted dir: repaired or clear, never a crash"
    )
    func damagedState() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let b = try repo.commit("b")
        #expect(try agent.run("deploy").status == 0)
        let state = agent.root + "/.release-agent"

        // The live release's record is truncated: it is rebuilt, never taken for incomplete.
        try Data("{\"sha\":".utf8).write(to: URL(fileURLWithPath: "\(state)/releases/\(b).json"))
        try Data("garbage\n{\"time\":".utf8).write(to: URL(fileURLWithPath: state + "/history.jsonl"), options: .atomic)
        unlink(state + "/lock")
        let repaired = try agent.run("prune")
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stderr.contains("record of the live release \(b)"))
        #expect(agent.releaseDirs().contains(b))
        #expect(agent.currentSHA == b)
        #expect(agent.recordState(b) == "active")
        for command in ["status", "history"] {
            let result = try agent.run(command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"))
        }

        // current points at a deleted dir: status says so in one line; a deploy repairs it.
        try FileManager.default.removeItem(atPath: "\(agent.root)/releases/\(b)")
        let status = try agent.run("status")
        #expect(status.status == 0)
        #expect(status.stdout.contains("which is missing; deploy or roll back to repair it"))
        let rollback = try agent.run("rollback", [String(a.prefix(8))])
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(agent.currentSHA == a)
        let redeploy = try agent.run("deploy")
        #expect(redeploy.status == 0, "\(redeploy.stderr)")
        #expect(agent.currentSHA == b)
        #expect(FileManager.default.fileExists(atPath: "\(agent.root)/releases/\(b)/REVISION"))
    }
}

@Suite("torture: concurrency")
struct ConcurrencyTortureTests {
    @Test("20 concurrent deploy, poll and rollback invocations: no corruption, no stale lock, consistent history")
    func twentyAtOnce() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let build = ["--build", "sleep 0.02; cat REVISION > BUILT"]
        for n in 1...3 {
            try repo.commit("c\(n)", files: ["v": "\(n)"])
            #expect(try agent.run("deploy", build).status == 0)
        }
        try repo.commit("head", files: ["v": "head"])
        var running: [(String, RunningCommand)] = []
        for n in 0..<20 {
            let kind = ["deploy", "poll", "rollback", "deploy"][n % 4]
            let wait = n % 2 == 0 ? ["--wait", "60s"] : []
            let arguments = kind == "poll" ? build : (kind == "rollback" ? wait : build + wait)
            running.append((kind, try agent.start(kind, arguments)))
        }
        for (kind, process) in running {
            let result = try process.wait(timeout: 120)
            let allowed: Set<Int32> = kind == "poll" ? [0] : (kind == "rollback" ? [0, 1, 75] : [0, 75])
            #expect(allowed.contains(result.status), "\(kind) exited \(result.status): \(result.stderr)")
        }
        // No stale lock: an operation without --wait gets it at once.
        let after = try agent.run("deploy", build)
        #expect(after.status == 0, "\(after.stderr)")
        // current is complete.
        let sha = try #require(agent.currentSHA)
        #expect(["ready", "active", "retired"].contains(agent.recordState(sha) ?? ""))
        #expect((try? String(contentsOfFile: "\(agent.root)/releases/\(sha)/BUILT", encoding: .utf8)) == sha + "\n")
        // Every history line parses, and each successful event names a release that was built.
        let text = try String(contentsOfFile: agent.root + "/.release-agent/history.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count >= 4)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["event"] != nil, "bad history line: \(line)")
        }
    }
}
