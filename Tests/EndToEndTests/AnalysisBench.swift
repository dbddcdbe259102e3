import Foundation
import ReleaseAgentTestSupport
import Testing

/// Canary analysis against a real Prometheus scraping the example app
/// (`releases.example/app/app.py`) under real traffic from the test: requests to / every
/// 20 ms, counted by the app by status code and sha, scraped every second.
final class AnalysisBench {
    let scratch = Scratch()
    let repo: GitFixture
    var agent: Agent
    let appPort = freePort()
    /// Blue-green: the two slots (appPort is the first); nil under restart.
    let slots: [Int]?
    let prometheusPort = freePort()
    var prometheus: TestServer?
    let traffic: RunningCommand
    /// Errors over requests of the release, from its own series.
    static let errorRate =
        #"errors: (sum(rate(demo_http_requests_total{sha="{sha}",code="500"}[4s])) or vector(0)) / sum(rate(demo_http_requests_total{sha="{sha}"}[4s])) <= 0.1"#

    init(prometheus withPrometheus: Bool = true, blueGreen: Bool = false) throws {
        repo = try GitFixture(at: scratch.sub("repo"))
        agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        slots = blueGreen ? [appPort, freePort()] : nil
        try DemoService.writeHooks(into: scratch.sub("hooks"), restartPort: blueGreen ? nil : appPort)
        let onFailure =
            "#!/bin/sh\necho \"$FAILURE_STAGE $RELEASE_SHA $FAILURE_REASON port=${RELEASE_PORT:-} previous=${PREVIOUS_PORT:-}\" >> \"$DEPLOY_ROOT/on-failure.log\"\n"
        try onFailure.write(toFile: scratch.sub("hooks/on-failure"), atomically: true, encoding: .utf8)
        chmod(scratch.sub("hooks/on-failure"), 0o755)
        agent.environment["RELEASE_AGENT_HOOKS_DIR"] = scratch.sub("hooks")
        agent.environment["RELEASE_AGENT_BUILD"] = "sh build.sh"
        agent.environment["RELEASE_AGENT_HEALTH_URL"] =
            "http://127.0.0.1:\(blueGreen ? "{port}" : String(appPort))/health"
        if let slots {
            agent.environment["RELEASE_AGENT_STRATEGY"] = "blue-green"
            agent.environment["RELEASE_AGENT_SLOTS"] = "\(slots[0]),\(slots[1])"
        }
        agent.environment["RELEASE_AGENT_HEALTH_TIMEOUT"] = "20s"
        agent.environment["RELEASE_AGENT_HEALTH_INTERVAL"] = "100ms"
        agent.environment["RELEASE_AGENT_ANALYSIS_PROMETHEUS"] = "http://127.0.0.1:\(prometheusPort)"
        agent.environment["RELEASE_AGENT_ANALYSIS"] = Self.errorRate
        agent.environment["RELEASE_AGENT_ANALYSIS_INITIAL_DELAY"] = "3s"
        agent.environment["RELEASE_AGENT_ANALYSIS_INTERVAL"] = "1s"
        agent.environment["RELEASE_AGENT_ANALYSIS_COUNT"] = "3"
        agent.environment["RELEASE_AGENT_ANALYSIS_ERROR_LIMIT"] = "8"
        // Blue-green: to the live slot, as the activate hook records it in ROOT/upstream.
        let load = """
            import time, urllib.request
            end = time.time() + 900
            while time.time() < end:
                try:
                    port = "\(appPort)"
                    if \(blueGreen ? "True" : "False"):
                        port = open("\(agent.root)/upstream").read().strip()
                    urllib.request.urlopen("http://127.0.0.1:" + port + "/", timeout=2).read()
                except Exception:
                    pass
                time.sleep(0.02)
            """
        traffic = try ShellCommand.start(["/usr/bin/env", "python3", "-c", load])
        if withPrometheus { try startPrometheus() }
    }

    func startPrometheus() throws {
        prometheus = try Self.prometheus(scratch: scratch, port: prometheusPort, scraping: slots ?? [appPort])
    }

    /// A real Prometheus on `port`, scraping these 127.0.0.1 ports every second.
    static func prometheus(scratch: Scratch, port: Int, scraping: [Int]) throws -> TestServer {
        let binary = try TestTools.require("prometheus", package: "prometheus")
        var config = "global:\n  scrape_interval: 1s\n"
        if !scraping.isEmpty {
            config += """
                scrape_configs:
                  - job_name: demo
                    scrape_interval: 1s
                    static_configs:
                      - targets: [\(scraping.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]

                """
        }
        try config.write(toFile: scratch.sub("prometheus.yml"), atomically: true, encoding: .utf8)
        return try TestServer(
            [
                binary, "--config.file=" + scratch.sub("prometheus.yml"), "--storage.tsdb.path=" + scratch.sub("tsdb"),
                "--web.listen-address=127.0.0.1:\(port)",
            ], port: port, log: scratch.sub("prometheus.log"))
    }

    /// The example app at `version`; `errors`: half of its requests to / answer 500.
    @discardableResult
    func commit(_ version: String, errors: Bool = false) throws -> String {
        var files = [
            "app.py": try String(contentsOfFile: packageRoot + "/releases.example/app/app.py", encoding: .utf8),
            "build.sh": try String(contentsOfFile: packageRoot + "/releases.example/app/build.sh", encoding: .utf8),
            "VERSION": version + "\n",
        ]
        if errors { files["DEMO_ERRORS"] = "yes\n" }
        let stale = !errors && FileManager.default.fileExists(atPath: repo.path + "/DEMO_ERRORS")
        return try repo.commit(version, files: files, remove: stale ? ["DEMO_ERRORS"] : [])
    }

    var onFailureLog: String {
        (try? String(contentsOfFile: agent.root + "/on-failure.log", encoding: .utf8)) ?? ""
    }

    func lastEvent() throws -> [String: Any] { try agent.historyEvents(["-n", "1"]).last ?? [:] }

    deinit {
        kill(traffic.pid, SIGKILL)
        _ = try? traffic.wait(timeout: 10)
        prometheus?.stop()
        DemoService.stopAll(root: agent.root)
    }
}
