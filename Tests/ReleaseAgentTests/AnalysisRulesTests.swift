import Foundation
import Testing

@testable import ReleaseAgent

/// The canary analysis's rules that need no server: how a check is written, and how each
/// shape of Prometheus's answer is classified (SPEC "Canary analysis (Prometheus)").
@Suite("canary analysis rules")
struct AnalysisRulesTests {
    @Test("a check: the name to the first colon, the bound after the last <= or >=, commas and comparisons kept")
    func parse() {
        let check = AnalysisCheck.parse(
            #"p99: histogram_quantile(0.99, sum by (le) (rate(x{sha="{sha}"}[1m]))) > 0 <= 0.25"#)
        #expect(check?.name == "p99")
        #expect(check?.query == #"histogram_quantile(0.99, sum by (le) (rate(x{sha="{sha}"}[1m]))) > 0"#)
        #expect(check?.bound == .max(0.25))
        #expect(AnalysisCheck.parse("rps: sum(rate(x[1m])) >= 5")?.bound == .min(5))
        #expect(AnalysisCheck.parse("x: q >= 1 <= 2")?.bound == .max(2))
        for bad in [
            "no colon <= 1", ": q <= 1", "bad name: q <= 1", "n: <= 1", "n: q", "n: q <= ", "n: q <= ten",
            "n: q <= nan", "n: q <= inf", "n/x: q <= 1",
        ] {
            #expect(AnalysisCheck.parse(bad) == nil, "\(bad)")
        }
        #expect(AnalysisCheck(name: "e", query: "q", bound: .max(0.05)).holds(0.05))
        #expect(!AnalysisCheck(name: "e", query: "q", bound: .max(0.05)).holds(0.051))
        #expect(!AnalysisCheck(name: "r", query: "q", bound: .min(1)).holds(0.5))
    }

    @Test("answers: a scalar or one sample is a value; empty, NaN and infinities no data; the rest errors")
    func classify() {
        func answer(_ json: String, status: Int = 200) -> QueryAnswer {
            QueryAnswer.classify(status: status, body: Data(json.utf8))
        }
        let vector = { (samples: String) in
            #"{"status":"success","data":{"resultType":"vector","result":[\#(samples)]}}"#
        }
        #expect(answer(vector(#"{"metric":{},"value":[1.5,"0.25"]}"#)) == .value(0.25))
        #expect(answer(#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#) == .value(3))
        #expect(answer(vector("")) == .noData("empty vector: the query selected no series"))
        #expect(answer(vector(#"{"metric":{},"value":[1,"NaN"]}"#)) == .noData("NaN"))
        #expect(answer(vector(#"{"metric":{},"value":[1,"+Inf"]}"#)) == .noData("+Inf"))
        #expect(answer(vector(#"{"metric":{},"value":[1,"-Inf"]}"#)) == .noData("-Inf"))
        guard case .error(let several) = answer(vector(#"{"value":[1,"1"]},{"value":[1,"2"]}"#)) else {
            Issue.record("two series are an error")
            return
        }
        #expect(several.hasPrefix("2 series"))
        let refused = answer(
            #"{"status":"error","errorType":"bad_data","error":"parse error: unexpected \u001b[31m"}"#, status: 400)
        #expect(refused == .error(#"Prometheus answered bad_data: parse error: unexpected \x1b[31m"#))
        #expect(answer("<html>gateway</html>", status: 502) == .error("Prometheus answered HTTP 502"))
        #expect(answer("not json") == .error("the answer is not Prometheus's query JSON"))
        guard case .error = answer(#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#) else {
            Issue.record("a range vector is an error")
            return
        }
        guard case .error = answer(vector(#"{"metric":{},"value":[1,"1e999x"]}"#)) else {
            Issue.record("a value that is no number is an error")
            return
        }
    }

    @Test(
        "a measurement: out of bounds fails, no number is not counted; the query gets {sha}, {short_sha}, {host}, {port}"
    )
    func judge() {
        let check = AnalysisCheck(
            name: "e", query: #"x{sha="{sha}",s="{short_sha}",h="{host}",p="{port}"} "#, bound: .max(1))
        let sha = String(repeating: "ab", count: 20)
        #expect(
            check.filled(sha: sha, host: "web-1", port: 5000)
                == #"x{sha="\#(sha)",s="\#(sha.prefix(12))",h="web-1",p="5000"} "#)
        #expect(check.judge(.value(2)).result == .failed)
        #expect(check.judge(.value(1)).result == .passed)
        #expect(!check.judge(.noData("NaN")).counts)
        #expect(!check.judge(.error("x")).counts)
    }

    @Test("settings: each malformed value exits 2 naming the setting and where it came from")
    func settings() throws {
        func read(_ environment: [String: String]) throws -> Settings {
            var all = ["RELEASE_AGENT_ROOT": "/srv/x"]
            all.merge(environment) { $1 }
            return try Settings(
                raw: try ConfigSources.merge(flags: [:], configFlag: nil, environment: all, cwd: "/", readFile: false))
        }
        let twoLines = NSTemporaryDirectory() + "/ra-token-\(UUID().uuidString)"
        try "line1\nline2\n".write(toFile: twoLines, atomically: true, encoding: .utf8)
        defer { unlink(twoLines) }
        let base = [
            "RELEASE_AGENT_ANALYSIS_PROMETHEUS": "http://127.0.0.1:9090/",
            "RELEASE_AGENT_ANALYSIS":
                "errors: sum(rate(x{code=~\"5..\"}[1m])) / sum(rate(x[1m])) <= 0.05\nrps: sum(rate(x[1m])) >= 1",
        ]
        let good = try read(base).analysis
        #expect(good?.prometheus == "http://127.0.0.1:9090")
        #expect(good?.checks.map(\.name) == ["errors", "rps"])
        #expect(good?.count == 4 && good?.interval == .seconds(30) && good?.initialDelay == .seconds(60))
        let bad: [(String, String, String)] = [
            ("RELEASE_AGENT_ANALYSIS", "errors: q <= 1\nerrors: q <= 2", "twice"),
            ("RELEASE_AGENT_ANALYSIS", "p: x{port=\"{port}\"} <= 1", "{port}"),
            ("RELEASE_AGENT_ANALYSIS", "just a query", "NAME: QUERY"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "127.0.0.1:9090", "analysis-prometheus"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "http://127.0.0.1:9090/?x=1", "analysis-prometheus"),
            ("RELEASE_AGENT_ANALYSIS_INTERVAL", "0s", "analysis-interval"),
            ("RELEASE_AGENT_ANALYSIS_COUNT", "0", "analysis-count"),
            ("RELEASE_AGENT_ANALYSIS_FAILURE_LIMIT", "4", "analysis-failure-limit"),
            ("RELEASE_AGENT_ANALYSIS_ERROR_LIMIT", "0", "analysis-error-limit"),
            ("RELEASE_AGENT_ANALYSIS_TOKEN_FILE", "/nonexistent/token", "analysis-token-file"),
            ("RELEASE_AGENT_ANALYSIS_TOKEN_FILE", twoLines, "analysis-token-file"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "http://127.0.0.1:99999", "analysis-prometheus"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "http://127.0.0.1:18446744073709551616", "analysis-prometheus"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "http://[::1]:0/", "analysis-prometheus"),
            ("RELEASE_AGENT_ANALYSIS_PROMETHEUS", "http://127.0.0.1:9090/\u{1b}[31m", "analysis-prometheus"),
        ]
        for (variable, value, named) in bad {
            var environment = base
            environment[variable] = value
            do {
                _ = try read(environment)
                Issue.record("\(variable)=\(value) was taken")
            } catch let error as AgentError {
                #expect(error.exitCode == 2, "\(variable)=\(value)")
                #expect(error.message.contains(named), "\(error.message)")
                #expect(error.message.contains("$" + variable), "\(error.message)")
            }
        }
        #expect(throws: AgentError.self) { try read(["RELEASE_AGENT_ANALYSIS": "e: q <= 1"]) }
        #expect(throws: AgentError.self) { try read(["RELEASE_AGENT_ANALYSIS_PROMETHEUS": "http://127.0.0.1:9090"]) }
    }

    @Test("TOML: [[analysis]] tables with max or min, a query with commas kept whole; a bad table names the file")
    func toml() throws {
        let dir = NSTemporaryDirectory() + "/ra-analysis-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/release-agent.toml"
        func read(_ tables: String) throws -> Settings {
            let text = "root = \"/srv/x\"\nanalysis_prometheus = \"https://prom.example:9090\"\n" + tables
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            return try Settings(raw: try ConfigSources.merge(flags: [:], configFlag: file, environment: [:], cwd: "/"))
        }
        let settings = try read(
            """
            [[analysis]]
            name = "errors"
            query = 'max(sum(rate(x{sha="{sha}",code=~"5.."}[1m])) or vector(0), vector(1))'
            max = 0.05
            [[analysis]]
            name = "rps"
            query = "sum(rate(x[1m]))"
            min = 2

            """)
        #expect(
            settings.analysis?.checks == [
                AnalysisCheck(
                    name: "errors", query: #"max(sum(rate(x{sha="{sha}",code=~"5.."}[1m])) or vector(0), vector(1))"#,
                    bound: .max(0.05)),
                AnalysisCheck(name: "rps", query: "sum(rate(x[1m]))", bound: .min(2)),
            ])
        for bad in [
            "[[analysis]]\nname = \"a:b\"\nquery = \"q\"\nmax = 1\n",
            "[[analysis]]\nname = \"a\"\nquery = \"q\"\nmax = 1\nmin = 0\n",
            "[[analysis]]\nname = \"a\"\nquery = \"q\"\nbound = 1\n",
            "[[analysis]]\nname = \"a\"\nquery = \"q\"\nmax = \"one\"\n",
        ] {
            do {
                _ = try read(bad)
                Issue.record("taken: \(bad)")
            } catch let error as AgentError {
                #expect(error.exitCode == 2)
                #expect(error.message.contains(file), "\(error.message)")
            }
        }
    }

    @Test("the tally: no data and errors are not counted, a counted answer resets the run of them, the limits decide")
    func tally() {
        var settings = AnalysisSettings(
            prometheus: "http://127.0.0.1:9090", checks: [AnalysisCheck(name: "e", query: "q", bound: .max(1))])
        settings.count = 3
        settings.failureLimit = 1
        settings.errorLimit = 2
        let check = settings.checks[0]
        var tally = AnalysisTally(settings: settings)
        #expect(tally.add(check.judge(.noData("NaN"))) == nil)
        #expect(tally.add(check.judge(.value(0.5))) == nil)
        #expect(tally.add(check.judge(.error("down"))) == nil)
        #expect(tally.add(check.judge(.value(5))) == nil)  // one failure tolerated
        #expect(tally.passed == nil && tally.needs(check))
        #expect(tally.add(check.judge(.value(0))) == nil)
        #expect(tally.passed?.0 == .passed)
        #expect(
            tally.passed?.1 == "2 of 3 measurements within bounds, 1 out of bounds tolerated (analysis-failure-limit 1)"
        )

        var failing = AnalysisTally(settings: settings)
        _ = failing.add(check.judge(.value(2)))
        #expect(failing.add(check.judge(.value(3)))?.0 == .failed)

        var silent = AnalysisTally(settings: settings)
        #expect(silent.add(check.judge(.error("down"))) == nil)
        #expect(silent.add(check.judge(.noData("empty vector")))?.0 == .inconclusive)
    }
}
