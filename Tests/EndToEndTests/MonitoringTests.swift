import Foundation
import ReleaseAgentTestSupport
import Testing

/// The seeds' monitoring, proven against the real servers: Prometheus scraping `serve` with
/// the metrics token as a bearer, promtool on the text, and a real InfluxDB 1.x taking the
/// line protocol. `.ci/run` installs prometheus and influxdb.
@Suite("monitoring: Prometheus, promtool and InfluxDB against a live serve", .serialized)
struct MonitoringTests {
    private func serve(_ scratch: Scratch, commits: Int) throws -> (Agent, ServeProcess, [String]) {
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        var shas: [String] = []
        for index in 1...commits {
            shas.append(try repo.commit("c\(index)"))
            let deployed = try agent.run("deploy")
            #expect(deployed.status == 0, "\(deployed.stderr)")
        }
        let serve = try ServeProcess(
            agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0", "--metrics-token", "mt0k"])
        return (agent, serve, shas)
    }

    private func metrics(_ serve: ServeProcess, _ query: String = "") throws -> String {
        let reply = try TestHTTP.send(
            "GET", serve.base + "/metrics" + query, headers: ["Authorization": "Bearer mt0k"])
        #expect(reply.status == 200)
        return reply.body
    }

    @Test(
        "promtool check metrics reports nothing; HELP on every metric; the operator's alerts are there",
        .enabled(if: TestTools.runnable("promtool")))
    func promtool() throws {
        let promtool = try TestTools.require("promtool", package: "prometheus")
        let scratch = Scratch()
        let (_, serve, _) = try serve(scratch, commits: 2)
        let text = try metrics(serve)
        try text.write(toFile: scratch.sub("metrics.txt"), atomically: true, encoding: .utf8)
        let check = try ShellCommand.run([
            "/bin/sh", "-c", "\"$0\" check metrics < \"$1\"", promtool, scratch.sub("metrics.txt"),
        ])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect((check.stdout + check.stderr).isEmpty, "promtool: \(check.stdout)\(check.stderr)")
        let names = Set(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
                $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
            })
        let helped = Set(
            text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { String($0.split(separator: " ")[2]) })
        for name in names {
            let family = ["_bucket", "_sum", "_count"].reduce(name) { name, suffix in
                name.hasSuffix(suffix) && helped.contains(String(name.dropLast(suffix.count)))
                    ? String(name.dropLast(suffix.count)) : name
            }
            #expect(helped.contains(family), "no HELP for \(name)")
        }
        for expected in [
            #"release_agent_build_info{version=""#, "release_agent_last_success_timestamp_seconds ",
            "release_agent_last_fetch_failed 0",
            #"release_agent_stage_duration_seconds_bucket{stage="build",le="+Inf"} 2"#,
            #"release_agent_stage_duration_seconds_count{stage="fetch"} 2"#,
        ] {
            #expect(text.contains(expected), "missing \(expected) in\n\(text)")
        }
        let version = try ShellCommand.run([try Agent.locateBinary(), "--version"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.contains(#"release_agent_build_info{version="\#(version.split(separator: " ").last ?? "")"} 1"#))
        let successTime =
            text.split(separator: "\n").first { $0.hasPrefix("release_agent_last_success_timestamp_seconds ") }
            .flatMap { Double($0.split(separator: " ")[1]) } ?? 0
        #expect(abs(successTime - Date().timeIntervalSince1970) < 600, "last success at \(successTime)")
        _ = try serve.stop()
    }

    @Test("a failed fetch shows as release_agent_last_fetch_failed 1, and 0 again after a good one")
    func fetchFailed() throws {
        let scratch = Scratch()
        let (agent, serve, _) = try serve(scratch, commits: 1)
        try FileManager.default.moveItem(atPath: agent.repo, toPath: agent.repo + ".away")
        let failed = try agent.run("deploy")
        #expect(failed.status != 0)
        #expect(try metrics(serve).contains("release_agent_last_fetch_failed 1"))
        try FileManager.default.moveItem(atPath: agent.repo + ".away", toPath: agent.repo)
        #expect(try agent.run("deploy").status == 0)
        #expect(try metrics(serve).contains("release_agent_last_fetch_failed 0"))
        _ = try serve.stop()
    }

    @Test(
        "a real Prometheus scrapes /metrics with the token as bearer; its API answers the deploy count",
        .enabled(if: TestTools.runnable("prometheus")))
    func prometheus() throws {
        let binary = try TestTools.require("prometheus", package: "prometheus")
        let scratch = Scratch()
        let (_, serve, _) = try serve(scratch, commits: 2)
        let port = freePort()
        let config = """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: release-agent
                scrape_interval: 1s
                metrics_path: /metrics
                authorization:
                  type: Bearer
                  credentials: mt0k
                static_configs:
                  - targets: ["127.0.0.1:\(serve.port)"]

            """
        try config.write(toFile: scratch.sub("prometheus.yml"), atomically: true, encoding: .utf8)
        let server = try TestServer(
            [
                binary, "--config.file=" + scratch.sub("prometheus.yml"), "--storage.tsdb.path=" + scratch.sub("tsdb"),
                "--web.listen-address=127.0.0.1:\(port)",
            ], port: port, log: scratch.sub("prometheus.log"))
        let query = "http://127.0.0.1:\(port)/api/v1/query?query="
        func value(_ promql: String) -> String? {
            let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
            guard let reply = try? TestHTTP.send("GET", query + encoded, timeout: 5), reply.status == 200,
                let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
                let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                let first = result.first, let pair = first["value"] as? [Any]
            else { return nil }
            return pair.last as? String
        }
        #expect(
            eventually(timeout: 60) { value(#"release_agent_deploys_total{result="ok"}"#) == "2" },
            "Prometheus never saw 2 deploys: \(value(#"release_agent_deploys_total{result="ok"}"#) ?? "nothing")")
        #expect(value(#"up{job="release-agent"}"#) == "1")
        #expect(value(#"release_agent_stage_duration_seconds_count{stage="build"}"#) == "2")
        server.stop()
        _ = try serve.stop()
    }

    @Test(
        "a real InfluxDB 1.x takes /metrics?format=influx at /write and gives the counts back",
        .enabled(if: TestTools.runnable("influxd")))
    func influx() throws {
        let binary = try TestTools.require("influxd", package: "influxdb")
        let scratch = Scratch()
        let (_, serve, shas) = try serve(scratch, commits: 2)
        let port = freePort()
        let config = """
            reporting-disabled = true
            bind-address = "127.0.0.1:\(freePort())"
            [meta]
              dir = "\(scratch.sub("influx/meta"))"
            [data]
              dir = "\(scratch.sub("influx/data"))"
              wal-dir = "\(scratch.sub("influx/wal"))"
            [http]
              bind-address = "127.0.0.1:\(port)"
              log-enabled = false

            """
        try config.write(toFile: scratch.sub("influxdb.conf"), atomically: true, encoding: .utf8)
        let server = try TestServer(
            [binary, "-config", scratch.sub("influxdb.conf")], port: port, log: scratch.sub("influxd.log"))
        let base = "http://127.0.0.1:\(port)"
        func form(_ text: String) -> Data {
            Data(("q=" + (text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text)).utf8)
        }
        let formHeaders = ["Content-Type": "application/x-www-form-urlencoded"]
        #expect(
            try TestHTTP.send("POST", base + "/query", headers: formHeaders, body: form("CREATE DATABASE ra")).status
                == 200)
        let lines = try metrics(serve, "?format=influx")
        let write = try TestHTTP.send("POST", base + "/write?db=ra", body: Data(lines.utf8))
        #expect(write.status == 204, "InfluxDB refused the lines (\(write.status)): \(write.body)\n\(lines)")
        let select = #"SELECT last("count") FROM "release_agent_deploys" WHERE "result" = 'ok'"#
        let reply = try TestHTTP.send("POST", base + "/query?db=ra", headers: formHeaders, body: form(select))
        #expect(reply.status == 200)
        #expect(reply.body.contains(",2]"), "\(reply.body)")
        let current = try TestHTTP.send(
            "POST", base + "/query?db=ra", headers: formHeaders,
            body: form(#"SHOW TAG VALUES FROM "release_agent_current" WITH KEY = "sha""#))
        #expect(current.body.contains(shas[1]), "\(current.body)")
        server.stop()
        _ = try serve.stop()
    }
}
