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
}
