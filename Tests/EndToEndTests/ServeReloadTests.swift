import Foundation
import ReleaseAgentTestSupport
import Testing

/// `systemctl reload` is SIGHUP to serve: the settings read again from their sources.
@Suite("serve: SIGHUP reads the settings again", .serialized)
struct ServeReloadTests {
    @Test(
        "a new build command applies to the next deploy; a changed listen is named; a broken config is refused and serve goes on"
    )
    func reload() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let config = scratch.sub("agent.toml")
        let port = freePort()
        func write(_ text: String) throws { try text.write(toFile: config, atomically: true, encoding: .utf8) }
        func settings(build: String, listen: Int = port) -> String {
            "build = \"\(build)\"\nlisten = \"127.0.0.1:\(listen)\"\npoll_interval = \"0\"\nallow_unsigned = true\n"
        }
        func built(_ sha: String) -> String? {
            try? String(contentsOfFile: agent.root + "/releases/\(sha)/built.txt", encoding: .utf8)
        }
        try write(settings(build: "echo one > built.txt"))
        let a = try repo.commit("a")
        let running = try agent.start("serve", ["--config", config])
        defer {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 10)
        }
        #expect(eventually(timeout: 30) { portAcceptsConnections(port) }, "\(running.stderrSoFar)")
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { agent.currentSHA == a }, "\(running.stderrSoFar)")
        #expect(built(a) == "one\n")

        try write(settings(build: "echo two > built.txt"))
        let b = try repo.commit("b")
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { agent.currentSHA == b }, "\(running.stderrSoFar)")
        #expect(built(b) == "two\n")

        // A setting serve fixed at its start is named, the rest of the file still applies.
        try write(settings(build: "echo three > built.txt", listen: freePort()))
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { running.stderrSoFar.contains("reload: listen changed") })
        // A config that no longer checks: one line, the running settings stay, serve goes on.
        try write(settings(build: "echo four > built.txt") + "keep_releases = 0\n")
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { running.stderrSoFar.contains("reload refused: keep-releases") })
        let c = try repo.commit("c")
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { agent.currentSHA == c }, "\(running.stderrSoFar)")
        #expect(built(c) == "three\n")
        #expect(portAcceptsConnections(port), "serve left the listen it bound at start")
    }

    @Test("a new root refuses the whole reload: nothing derived from it (hooks-dir) half applies")
    func newRoot() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let a = try repo.commit("a")
        let port = freePort()
        let config = scratch.sub("agent.toml")
        func settings(root: String) -> String {
            "root = \"\(root)\"\nrepo = \"\(repo.path)\"\nlisten = \"127.0.0.1:\(port)\"\n"
                + "poll_interval = \"0\"\nallow_unsigned = true\n"
        }
        let root = scratch.sub("root")
        try FileManager.default.createDirectory(atPath: root + "/hooks", withIntermediateDirectories: true)
        try "#!/bin/sh\ntouch \"$DEPLOY_ROOT/activated\"\n".write(
            toFile: root + "/hooks/activate", atomically: true, encoding: .utf8)
        chmod(root + "/hooks/activate", 0o755)
        try settings(root: root).write(toFile: config, atomically: true, encoding: .utf8)
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
        let running = try ShellCommand.start(
            [try Agent.locateBinary(), "serve", "--config", config], environment: environment)
        defer {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 10)
        }
        #expect(eventually(timeout: 30) { portAcceptsConnections(port) }, "\(running.stderrSoFar)")
        try settings(root: scratch.sub("other")).write(toFile: config, atomically: true, encoding: .utf8)
        kill(running.pid, SIGHUP)
        #expect(eventually(timeout: 30) { running.stderrSoFar.contains("reload refused: root changed") })
        // The poll the SIGHUP asked for deploys into the running root, with its own hooks.
        #expect(eventually(timeout: 30) { FileManager.default.fileExists(atPath: root + "/activated") })
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/current")) == "releases/\(a)")
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("other")))
    }
}
