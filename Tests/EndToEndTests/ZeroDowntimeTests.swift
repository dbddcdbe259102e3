import Foundation
import ReleaseAgentTestSupport
import Testing

/// Real nginx in front of the demo service, a client loop sending requests nonstop.
@Suite(
    "zero downtime through nginx", .serialized,
    .enabled(if: PrivateNginx.binaryPath != nil, "needs nginx (apt-get install nginx-light)"))
struct ZeroDowntimeTests {
    @Test("blue-green with the sample nginx hooks: 10 deploys and 2 rollbacks, zero failed requests")
    func blueGreenZeroFailures() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        defer { DemoService.stopAll(root: agent.root) }
        let (blue, green, front) = (freePort(), freePort(), freePort())
        let nginx = try PrivateNginx(prefix: scratch.sub("nginx"), port: front, initialUpstreamPort: blue)
        defer { nginx.stop() }
        let hooks = scratch.sub("hooks")
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        for name in ["start", "activate", "stop"] {
            try FileManager.default.copyItem(
                atPath: "\(packageRoot)/hooks/nginx-blue-green/\(name)", toPath: "\(hooks)/\(name)")
        }
        agent.environment.merge(nginx.hookEnvironment) { $1 }
        agent.environment["APP_START"] = "python3 app.py"
        agent.environment["STOP_DRAIN"] = "1"
        let settings = [
            "--strategy", "blue-green", "--slots", "\(blue),\(green)", "--hooks-dir", hooks,
            "--health-url", "http://127.0.0.1:{port}/health", "--health-timeout", "20s", "--health-interval", "50ms",
        ]

        try repo.commit("v0", files: ["app.py": DemoService.app])
        let first = try agent.run("deploy", settings)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(DemoService.get(port: front)?.status == 200)

        let loop = try LoadLoop(port: front, directory: scratch.path)
        var operations = 0
        for n in 1...10 {
            let sha = try repo.commit("v\(n)", files: ["VERSION": "\(n)"])
            let result = try agent.run("deploy", settings)
            #expect(result.status == 0, "deploy \(n): \(result.stderr)")
            #expect(agent.currentSHA == sha)
            operations += 1
            if n == 5 || n == 10 {
                let back = try agent.run("rollback", settings)
                #expect(back.status == 0, "rollback after \(n): \(back.stderr)")
                operations += 1
            }
        }
        let report = try loop.finish()
        print("zero-downtime blue-green: \(report.total) requests, \(report.failed) failed, \(operations) operations")
        #expect(operations == 12)
        #expect(report.total > 100, "the client loop barely ran")
        #expect(report.failed == 0, "failed requests: \(report.firstErrors)")
    }

    @Test("for comparison, strategy restart with a plain restart hook: the failures are counted")
    func restartComparison() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        defer { DemoService.stopAll(root: agent.root) }
        let (appPort, front) = (freePort(), freePort())
        let nginx = try PrivateNginx(prefix: scratch.sub("nginx"), port: front, initialUpstreamPort: appPort)
        defer { nginx.stop() }
        try DemoService.writeHooks(into: scratch.sub("hooks"), restartPort: appPort)
        let settings = [
            "--hooks-dir", scratch.sub("hooks"), "--health-url", "http://127.0.0.1:\(appPort)/health",
            "--health-timeout", "20s", "--health-interval", "50ms",
        ]
        try repo.commit("v0", files: ["app.py": DemoService.app])
        #expect(try agent.run("deploy", settings).status == 0)
        let loop = try LoadLoop(port: front, directory: scratch.path)
        for n in 1...10 {
            try repo.commit("v\(n)", files: ["VERSION": "\(n)"])
            let result = try agent.run("deploy", settings)
            #expect(result.status == 0, "deploy \(n): \(result.stderr)")
            if n == 5 || n == 10 { #expect(try agent.run("rollback", settings).status == 0) }
        }
        let report = try loop.finish()
        print("zero-downtime restart (comparison): \(report.total) requests, \(report.failed) failed")
        #expect(report.total > 100)
        #expect(report.failed >= 0)
        _ = agent
    }
}
