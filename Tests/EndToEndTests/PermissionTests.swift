import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 16, item 8: as a non-root user (root ignores permissions, so it would hide this),
/// builds that make their files read-only, with keep-releases 1.
@Suite("core promise: prune as a non-root user")
struct PermissionTests {
    @Test("read-only builds are pruned whole: no half-deleted release stays a rollback target, trash empties")
    func readOnlyBuildsPrunedWhole() throws {
        let nobody = try #require(getpwnam("nobody")?.pointee, "no user nobody on this machine")
        #expect(getuid() == 0, "this test switches to nobody with setpriv, which needs root")
        guard getuid() == 0 else { return }
        let scratch = Scratch()
        let home = scratch.sub("nobody")
        let bin = home + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        // Both binaries next to each other where nobody can run them (the build dir may not be).
        let built = try Agent.locateBinary()
        for name in ["release-agent", "release-agent-full"] {
            let from = (built as NSString).deletingLastPathComponent + "/" + name
            try FileManager.default.copyItem(atPath: from, toPath: bin + "/" + name)
            chmod(bin + "/" + name, 0o755)
        }
        #expect(chown(home, nobody.pw_uid, nobody.pw_gid) == 0)
        let repo = try GitFixture(at: scratch.sub("repo"))
        let root = home + "/root"
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
        environment["HOME"] = home
        func run(_ arguments: [String]) throws -> CommandResult {
            try ShellCommand.run(
                [
                    "/usr/bin/setpriv", "--reuid=\(nobody.pw_uid)", "--regid=\(nobody.pw_gid)", "--clear-groups",
                    bin + "/release-agent",
                ] + arguments + ["--root", root, "--repo", repo.path],
                environment: environment, directory: home, timeout: 120)
        }
        let build = [
            "--keep-releases", "1", "--build",
            "mkdir -p assets/deep && echo built > assets/deep/file && chmod -R a-w .",
        ]
        var shas: [String] = []
        for n in 1...4 {
            shas.append(try repo.commit("c\(n)", files: ["v.txt": "\(n)\n"]))
            let result = try run(["deploy"] + build)
            #expect(result.status == 0, "deploy \(n): \(result.stderr)")
        }
        let history = try run(["history", "--json", "-n", "100"])
        let events = try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(events.filter { $0["event"] as? String == "deploy" }.allSatisfy { $0["result"] as? String == "ok" })
        // Every release on disk that has a complete record is complete.
        let releases = (try? FileManager.default.contentsOfDirectory(atPath: root + "/releases")) ?? []
        for sha in releases where sha.count == 40 {
            if FileManager.default.fileExists(atPath: "\(root)/.release-agent/releases/\(sha).json") {
                #expect(FileManager.default.fileExists(atPath: "\(root)/releases/\(sha)/assets/deep/file"), "\(sha)")
            }
        }
        #expect(!releases.contains(shas[0]) && !releases.contains(shas[1]), "\(releases)")
        #expect(!FileManager.default.fileExists(atPath: "\(root)/.release-agent/releases/\(shas[0]).json"))
        #expect(
            eventually(timeout: 30) {
                ((try? FileManager.default.contentsOfDirectory(atPath: root + "/.release-agent/trash")) ?? ["?"])
                    .isEmpty
            }, "the trash did not empty")
        let back = try run(["rollback"])
        #expect(back.status == 0, "\(back.stderr)")
        let current = try FileManager.default.destinationOfSymbolicLink(atPath: root + "/current")
        #expect(current == "releases/\(shas[2])")
        #expect(FileManager.default.fileExists(atPath: "\(root)/releases/\(shas[2])/assets/deep/file"))
        // Nothing older is left to roll back to: a clear refusal, not an incomplete release.
        let further = try run(["rollback"])
        #expect(further.status == 1, "\(further.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/current") == "releases/\(shas[2])")
    }
}
