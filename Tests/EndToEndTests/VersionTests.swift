import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 15, item 2 (only this item so far): one version string for both binaries and /metrics.
@Suite("--version")
struct VersionTests {
    @Test("both binaries print the same version and exit 0; /metrics has release_agent_build_info with it")
    func version() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("a")
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let full = (agent.binary as NSString).deletingLastPathComponent + "/release-agent-full"
        let thin = try ShellCommand.run([agent.binary, "--version"])
        let heavy = try ShellCommand.run([full, "--version"])
        #expect(thin.status == 0 && heavy.status == 0)
        let version = thin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!version.isEmpty && version.allSatisfy { $0.isNumber || $0 == "." }, "\(version)")
        #expect(heavy.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == version)
        let serve = try ServeProcess(agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0"])
        let metrics = try TestHTTP.send("GET", serve.base + "/metrics").body
        #expect(metrics.contains("release_agent_build_info{version=\"\(version)\"} 1"), "\(metrics)")
        #expect(try serve.stop().status == 0)
    }
}
