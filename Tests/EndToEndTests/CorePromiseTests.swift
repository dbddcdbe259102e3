import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 16, part one: ways an unchecked or wrong release went live. Each test drives the
/// real binary with real signals; RELIABILITY.md lists what each one does.
@Suite("core promise: no unchecked release stays live")
struct CorePromiseTests {
    static func hook(_ dir: String, _ name: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        chmod(dir + "/" + name, 0o755)
    }

    @Test("stderr whose reader went away (| head -n 1): the failed check is still rolled back, exit 1")
    func closedStderr() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good")
        #expect(try agent.run("deploy").status == 0)
        let hooks = scratch.sub("hooks")
        try Self.hook(hooks, "activate", "#!/bin/sh\nfor i in $(seq 1 200); do echo activate line $i; done\n")
        for round in 0..<3 {
            let bad = try repo.commit("bad \(round)")
            let status = scratch.sub("status-\(round)")
            let command =
                agent.command(
                    "deploy", ["--hooks-dir", hooks, "--health-tcp", "127.0.0.1:1", "--health-timeout", "1s"])
            // head exits after one line; every later write of the agent meets a closed pipe.
            let script = "\"$@\" 2>&1 | head -n 1 >/dev/null; echo ${PIPESTATUS[0]} > \(status)"
            let result = try ShellCommand.run(
                ["/bin/bash", "-c", script, "bash"] + command, environment: agent.environment, timeout: 120)
            #expect(result.status == 0)
            let code = try String(contentsOfFile: status, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
            #expect(
                code == "1", "round \(round): the agent exited \(code), not 1 (132 is the SIGILL of a failed write)")
            #expect(agent.currentSHA == good, "round \(round)")
            #expect(agent.recordState(bad) == "failed", "round \(round)")
            let last = try agent.historyEvents().last
            #expect(last?["sha"] as? String == bad && last?["result"] as? String == "failed", "round \(round)")
        }
    }

    /// A deploy whose activate hook hangs for SLOW releases, killed with SIGKILL inside it.
    /// The check each test gives is for the recovery; the kill comes before any check ran.
    private func killDuringActivate(_ scratch: Scratch) throws -> (Agent, good: String, bad: String) {
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        let marker = scratch.sub("activating")
        try Self.hook(
            hooks, "activate",
            "#!/bin/sh\n[ -e SLOW ] || exit 0\necho $$ > \(marker).tmp; mv \(marker).tmp \(marker)\nexec sleep 300\n")
        let good = try repo.commit("good")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        let bad = try repo.commit("slow", files: ["SLOW": "1"])
        let running = try agent.start("deploy", ["--hooks-dir", hooks])
        #expect(Agent.waitForFile(marker))
        kill(running.pid, SIGKILL)
        _ = try running.wait(timeout: 10)
        if let text = try? String(contentsOfFile: marker, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            kill(pid, SIGKILL)
        }
        // The kill left the swap done and no check run: exactly the state to repair.
        #expect(agent.currentSHA == bad)
        #expect(FileManager.default.fileExists(atPath: agent.root + "/.release-agent/activation.json"))
        return (agent, good, bad)
    }

    @Test("kill -9 during activate, unhealthy: the next poll checks it and rolls back as a failed deploy")
    func killDuringActivateUnhealthy() throws {
        let scratch = Scratch()
        let (agent, good, bad) = try killDuringActivate(scratch)
        let health = [
            "--hooks-dir", scratch.sub("hooks"), "--health-tcp", "127.0.0.1:\(freePort())", "--health-timeout", "1s",
        ]
        let poll = try agent.run("poll", health)
        #expect(poll.stderr.contains("interrupted during activation"), "\(poll.stderr)")
        #expect(agent.currentSHA == good, "\(poll.stderr)")
        #expect(agent.recordState(bad) == "failed")
        #expect(agent.record(bad)?["quarantine"] != nil)
        let last = try agent.historyEvents().last
        #expect(last?["sha"] as? String == bad)
        #expect(last?["result"] as? String == "failed")
        #expect(last?["trigger"] as? String == "recovery")
        #expect(!FileManager.default.fileExists(atPath: agent.root + "/.release-agent/activation.json"))
        // Quarantined: the next poll stays quiet and leaves it.
        let again = try agent.run("poll", health)
        #expect(again.status == 0)
        #expect(again.stderr.isEmpty, "\(again.stderr)")
        #expect(agent.currentSHA == good)
    }

    @Test("kill -9 during activate, healthy: the next deploy checks it and records it live")
    func killDuringActivateHealthy() throws {
        let scratch = Scratch()
        let listener = try TCPListener()
        let (agent, good, bad) = try killDuringActivate(scratch)
        let health = ["--hooks-dir", scratch.sub("hooks"), "--health-tcp", "127.0.0.1:\(listener.port)"]
        let deploy = try agent.run("deploy", health)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(deploy.stderr.contains("passed its health check"), "\(deploy.stderr)")
        #expect(agent.currentSHA == bad)
        #expect(agent.recordState(bad) == "active")
        #expect(agent.recordState(good) == "retired")
        let events = try agent.historyEvents()
        #expect(events.contains { $0["sha"] as? String == bad && $0["trigger"] as? String == "recovery" })
    }

    @Test("--force of the live release with a failing check: back to the one before; the only release stays live")
    func forceLiveFailing() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let failing = ["--force", "--health-tcp", "127.0.0.1:1", "--health-timeout", "1s"]
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        // Only one release: nothing to go back to, so it stays live and is not marked failed.
        let alone = try agent.run("deploy", failing)
        #expect(alone.status == 1)
        #expect(alone.stderr.contains("no earlier release"), "\(alone.stderr)")
        #expect(agent.currentSHA == a)
        #expect(agent.recordState(a) == "active")
        let b = try repo.commit("b")
        #expect(try agent.run("deploy").status == 0)
        let result = try agent.run("deploy", failing)
        #expect(result.status == 1)
        #expect(agent.currentSHA == a, "\(result.stderr)")
        #expect(agent.recordState(b) == "failed")
        #expect(["active", "retired", "ready"].contains(agent.recordState(a) ?? ""))
        #expect(agent.recordState(a) == "active")
    }

    @Test("blue-green with slot.json missing, garbage or naming another port: refused before any build")
    func blueGreenNeverGuesses() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        try DemoService.writeHooks(into: hooks, restartPort: nil)
        let slots = [freePort(), freePort()]
        let arguments = [
            "--strategy", "blue-green", "--slots", "\(slots[0]),\(slots[1])", "--hooks-dir", hooks,
            "--health-url", "http://127.0.0.1:{port}/health", "--health-timeout", "10s",
        ]
        defer { DemoService.stopAll(root: agent.root) }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        #expect(try agent.run("deploy", arguments).status == 0)
        let slotFile = agent.root + "/.release-agent/slot.json"
        let live = try String(contentsOfFile: slotFile, encoding: .utf8)
        let b = try repo.commit("b")
        for (label, content) in [
            ("missing", nil), ("garbage", "{\"port\": "), ("another port", "{\"port\": 1, \"sha\": \"\(a)\"}"),
        ] {
            if let content {
                try content.write(toFile: slotFile, atomically: true, encoding: .utf8)
            } else {
                unlink(slotFile)
            }
            let result = try agent.run("deploy", arguments)
            #expect(result.status == 1, "\(label)")
            #expect(
                result.stderr.contains(slotFile) && result.stderr.contains("will not guess"),
                "\(label): \(result.stderr)")
            #expect(agent.currentSHA == a, "\(label)")
            #expect(!agent.releaseDirs().contains(b), "\(label): built anyway")
            #expect(agent.recordState(a) == "active", "\(label)")
            let rollback = try agent.run("rollback", arguments)
            #expect(rollback.status == 1 && rollback.stderr.contains(slotFile), "\(label) rollback: \(rollback.stderr)")
        }
        // The app of the live release still serves.
        #expect(DemoService.get(port: slots[0])?.body == "ok \(a)")
        try live.write(toFile: slotFile, atomically: true, encoding: .utf8)
        let fixed = try agent.run("deploy", arguments)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(agent.currentSHA == b)
    }
}
