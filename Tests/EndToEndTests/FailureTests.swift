import Foundation
import ReleaseAgentTestSupport
import Testing

@Suite("failing and timed-out builds")
struct FailureTests {
    @Test("a failing build leaves current alone, marks the release failed and exits 1")
    func failingBuild() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good", files: ["build.sh": "#!/bin/sh\nexit 0\n"])
        #expect(try agent.run("deploy", ["--build", "./build.sh"]).status == 0)
        let bad = try repo.commit("bad", files: ["build.sh": "#!/bin/sh\necho broken on purpose\nexit 3\n"])
        let result = try agent.run("deploy", ["--build", "./build.sh"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("the build failed (exit status 3)"))
        #expect(result.stderr.contains("build| broken on purpose"))
        #expect(agent.currentSHA == good)
        #expect(agent.recordState(bad) == "failed")
        let log = try String(contentsOfFile: "\(agent.root)/.release-agent/logs/\(bad).log", encoding: .utf8)
        #expect(log.contains("broken on purpose"))
        let events = try agent.historyEvents()
        #expect(events.last?["result"] as? String == "failed")
        #expect(events.last?["sha"] as? String == bad)
    }

    @Test("a build that times out is killed with its grandchild; current is left alone")
    func timedOutBuildKillsGroup() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good")
        #expect(try agent.run("deploy").status == 0)
        let pidFile = scratch.sub("grandchild.pid")
        // The build starts a grandchild that would outlive the shell, then hangs.
        let script = "#!/bin/sh\nsh -c 'echo $$ > \(pidFile); exec sleep 300' &\nsleep 300\n"
        let slow = try repo.commit("slow", files: ["build.sh": script])
        let result = try agent.run("deploy", ["--build", "./build.sh", "--build-timeout", "1s"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.stderr.contains("timed out after 1.00s"))
        #expect(agent.currentSHA == good)
        #expect(agent.recordState(slow) == "failed")
        let pid = Int32(
            try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(pid != nil)
        if let pid {
            // Reaped by init at once or shortly after; allow a bounded moment.
            var alive = true
            for _ in 0..<100 where alive {
                alive = kill(pid, 0) == 0 && !isZombie(pid)
                if alive { usleep(20_000) }
            }
            #expect(!alive, "grandchild \(pid) survived the build timeout")
        }
    }

    @Test("a deploy killed with SIGKILL mid-build is cleaned up by the next one, and its build group killed")
    func killedMidBuild() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let good = try repo.commit("good")
        #expect(try agent.run("deploy").status == 0)
        let marker = scratch.sub("started")
        let sha = try repo.commit(
            "slow", files: ["build.sh": "#!/bin/sh\necho $$ > \(marker).tmp; mv \(marker).tmp \(marker)\nsleep 300\n"])
        let running = try agent.start("deploy", ["--build", "./build.sh"])
        #expect(Agent.waitForFile(marker))
        kill(running.pid, SIGKILL)
        _ = try? running.wait(timeout: 10)
        #expect(agent.currentSHA == good)
        #expect(agent.releaseDirs().contains(sha))
        let buildPid =
            Int32(try String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            ?? 0
        let probe = kill(buildPid, 0)
        let ps = try ShellCommand.run(["/bin/ps", "-eo", "pid,ppid,pgid,stat,cmd"])
        #expect(
            probe == 0, "the orphaned build \(buildPid) should still run before recovery: errno \(errno)\n\(ps.stdout)")

        let next = try agent.run("status")
        #expect(next.status == 0)
        let prune = try agent.run("prune")
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stderr.contains("removed incomplete release \(sha)"))
        #expect(!agent.releaseDirs().contains(sha))
        var alive = true
        for _ in 0..<100 where alive {
            alive = kill(buildPid, 0) == 0 && !isZombie(buildPid)
            if alive { usleep(20_000) }
        }
        #expect(!alive, "the dead agent's build \(buildPid) was not killed")
        #expect(agent.currentSHA == good)
    }
}

/// A zombie is dead; only its parent's wait removes it.
func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}
