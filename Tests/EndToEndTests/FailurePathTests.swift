import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 11, item 2: every stage that can fail after the lock goes through one failure path:
/// the record, a history line with the stage, `on-failure`, exit 1, current on the good release.
@Suite("one failure path, stage by stage")
struct FailurePathTests {
    struct Outcome {
        var status: Int32
        var stderr: String
        var record: [String: Any]?
        var last: [String: Any]?
        var hookStages: [String]
    }

    /// Deploys a good commit, then `files` as a new commit with `arguments`; returns what happened.
    private func run(
        _ scratch: Scratch, files: [String: String] = [:], arguments: [String], badArguments: [String]? = nil,
        hooks: [String: String] = [:], prepare: (Agent) throws -> Void = { _ in }
    ) throws -> (Agent, good: String?, bad: String, Outcome) {
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hookDir = scratch.sub("hooks")
        let stages = scratch.sub("stages")
        try CorePromiseTests.hook(hookDir, "on-failure", "#!/bin/sh\necho \"$FAILURE_STAGE\" >> \(stages)\n")
        for (name, text) in hooks { try CorePromiseTests.hook(hookDir, name, text) }
        var good: String?
        if files["FIRST"] == nil {
            good = try repo.commit("good")
            let first = try agent.run("deploy", arguments + ["--hooks-dir", hookDir])
            #expect(first.status == 0, "\(first.stderr)")
        }
        try prepare(agent)
        let bad = try repo.commit("bad", files: files)
        let result = try agent.run("deploy", (badArguments ?? arguments) + ["--hooks-dir", hookDir])
        let hookStages = ((try? String(contentsOfFile: stages, encoding: .utf8)) ?? "").split(separator: "\n").map(
            String.init)
        let last = try agent.historyEvents().last
        return (
            agent, good, bad,
            Outcome(
                status: result.status, stderr: result.stderr, record: agent.record(bad), last: last,
                hookStages: hookStages)
        )
    }

    private func check(_ agent: Agent, good: String?, bad: String, _ outcome: Outcome, stage: String, quarantined: Bool)
    {
        #expect(outcome.status == 1, "\(stage): \(outcome.stderr)")
        let errorLine = outcome.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(
            errorLine.hasPrefix("Error: deploy of \(bad.prefix(12)) failed at \(stage)"), "\(stage): \(outcome.stderr)")
        #expect(agent.currentSHA == good, "\(stage): current moved")
        #expect(outcome.last?["sha"] as? String == bad && outcome.last?["result"] as? String == "failed", "\(stage)")
        #expect(outcome.last?["stage"] as? String == stage, "\(stage): history stage \(outcome.last?["stage"] ?? "-")")
        #expect(outcome.hookStages == [stage], "\(stage): on-failure saw \(outcome.hookStages)")
        #expect(
            (outcome.record?["quarantine"] != nil) == quarantined,
            "\(stage): quarantine \(outcome.record?["quarantine"] ?? "none")")
    }

    @Test("checkout, build, activate and health failures")
    func restartStages() throws {
        // The good release passes the check the bad one fails (a listening port, then port 1).
        let listener = try TCPListener()
        let passing = ["--health-tcp", "127.0.0.1:\(listener.port)", "--health-timeout", "1s"]
        let cases: [(String, [String], [String], [String: String])] = [
            ("build", ["--build", "test ! -e FAIL"], ["--build", "test ! -e FAIL"], [:]),
            ("activate", [], [], ["activate": "#!/bin/sh\ntest ! -e FAIL\n"]),
            ("health", passing, ["--health-tcp", "127.0.0.1:1", "--health-timeout", "1s"], [:]),
        ]
        for (stage, arguments, badArguments, hooks) in cases {
            let scratch = Scratch()
            let (agent, good, bad, outcome) = try run(
                scratch, files: ["FAIL": "1"], arguments: arguments, badArguments: badArguments, hooks: hooks)
            check(agent, good: good, bad: bad, outcome, stage: stage, quarantined: true)
        }
        // checkout: a committed symlink at REVISION.
        let scratch = Scratch()
        let (agent, good, bad, outcome) = try run(scratch, arguments: []) { agent in
            try FileManager.default.createSymbolicLink(
                atPath: scratch.sub("repo") + "/REVISION", withDestinationPath: "/etc/hostname")
        }
        check(agent, good: good, bad: bad, outcome, stage: "checkout", quarantined: true)
    }

    @Test("blue-green: a failing start hook, and an unexpected error after the swap")
    func blueGreenStages() throws {
        let slots = [freePort(), freePort()]
        let blueGreen = [
            "--strategy", "blue-green", "--slots", "\(slots[0]),\(slots[1])", "--health-tcp", "127.0.0.1:{port}",
            "--health-timeout", "5s",
        ]
        let listeners = [
            "#!/bin/sh\n[ -e FAIL ] && exit 1\n(exec python3 -c \"import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('127.0.0.1',$RELEASE_PORT)); s.listen(); time.sleep(60)\" &) \necho $! > \"$DEPLOY_ROOT/app-$RELEASE_PORT.pid\"\n"
        ]
        let stop =
            "#!/bin/sh\npkill -f \"'127.0.0.1',$STOP_PORT\" || true\necho $STOP_PORT >> \"$DEPLOY_ROOT/stopped\"\n"
        let scratch = Scratch()
        let (agent, good, bad, outcome) = try run(
            scratch, files: ["FAIL": "1"], arguments: blueGreen, hooks: ["start": listeners[0], "stop": stop])
        defer {
            for port in slots { _ = try? ShellCommand.run(["/usr/bin/pkill", "-f", "'127.0.0.1',\(port)"]) }
        }
        check(agent, good: good, bad: bad, outcome, stage: "start", quarantined: true)

        // An unexpected error after the swap: slot.json cannot be replaced (a directory is in
        // its way, on a first deploy, when nothing is live yet).
        let second = Scratch()
        let (agent2, _, bad2, outcome2) = try run(
            second, files: ["FIRST": "1"], arguments: blueGreen, hooks: ["start": listeners[0], "stop": stop]
        ) { agent in
            try FileManager.default.createDirectory(
                atPath: agent.root + "/.release-agent/slot.json/blocked", withIntermediateDirectories: true)
        }
        #expect(outcome2.status == 1, "\(outcome2.stderr)")
        #expect(outcome2.stderr.contains("failed at activate: unexpected error"), "\(outcome2.stderr)")
        #expect(agent2.currentSHA == nil, "current left on a release whose activation failed")
        #expect(agent2.recordState(bad2) == "failed")
        #expect(outcome2.last?["stage"] as? String == "activate")
        #expect(outcome2.hookStages == ["activate"])
        let stopped = (try? String(contentsOfFile: agent2.root + "/stopped", encoding: .utf8)) ?? ""
        #expect(!stopped.isEmpty, "the candidate was not stopped")
    }

    @Test("an unexpected error before the swap (the activation marker cannot be written): recorded, current stays")
    func unexpectedBeforeSwap() throws {
        let scratch = Scratch()
        let (agent, good, bad, outcome) = try run(scratch, arguments: []) { agent in
            try FileManager.default.createDirectory(
                atPath: agent.root + "/.release-agent/activation.json/blocked", withIntermediateDirectories: true)
        }
        #expect(outcome.status == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("unexpected error"), "\(outcome.stderr)")
        #expect(agent.currentSHA == good)
        #expect(outcome.last?["sha"] as? String == bad && outcome.last?["result"] as? String == "failed")
        #expect(outcome.hookStages == ["activate"])
    }
}
