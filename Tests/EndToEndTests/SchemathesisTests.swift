import Foundation
import ReleaseAgentTestSupport
import Testing

/// schemathesis (PyPI) on PATH, or nil.
private let schemathesis: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/schemathesis" }.first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
}()

/// schemathesis against a live `serve`, driven by `openapi.yaml`. CI installs it (.ci/run);
/// `RELEASE_AGENT_SCHEMATHESIS_EXAMPLES=500` runs the long mode.
@Suite(
    "torture: schemathesis against a live serve", .serialized,
    // Under CI=true a missing tool fails the suite instead of skipping it.
    .enabled(
        if: schemathesis != nil || ProcessInfo.processInfo.environment["CI"] == "true",
        "needs schemathesis (pip install schemathesis)"))
struct SchemathesisTests {
    static let examples = ProcessInfo.processInfo.environment["RELEASE_AGENT_SCHEMATHESIS_EXAMPLES"] ?? "60"

    @Test(
        "every check passes, with and without a webhook secret: no server error, answers as the spec says",
        arguments: [true, false])
    func run(signed: Bool) throws {
        let binary = try #require(schemathesis, "schemathesis is not on PATH; .ci/run installs it with pip")
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        try "secret".write(toFile: scratch.sub("secret"), atomically: true, encoding: .utf8)
        let serve = try ServeProcess(
            agent: agent,
            arguments: (signed ? ["--webhook-secret-file", scratch.sub("secret")] : ["--allow-unsigned"])
                + ["--poll-interval", "0"])
        let report = scratch.sub("junit.xml")
        let result = try ShellCommand.run(
            [
                binary, "run", "\(packageRoot)/openapi.yaml", "--url", serve.base, "--checks", "all",
                "--max-examples", Self.examples, "--seed", "20261123", "--workers", "1", "--no-color",
                "--report", "junit", "--report-junit-path", report,
            ], directory: scratch.path, timeout: 900)
        let summary = result.stdout.components(separatedBy: "\n").filter {
            $0.contains("generated") || $0.contains("passed") || $0.contains("failure") || $0.contains("ST")
        }
        print("schemathesis (\(signed ? "signed" : "unsigned")): \(summary.joined(separator: " | "))")
        #expect(result.status == 0, "\(result.stdout.suffix(4000))\n\(result.stderr.suffix(2000))")
        #expect(result.stdout.contains("No issues found"), "\(result.stdout.suffix(2000))")
        // The daemon is still up and answers its own health check.
        #expect(try TestHTTP.send("GET", serve.base + "/healthz").status == 200)
        #expect(try serve.stop().status == 0)
    }
}
