import Foundation
import ReleaseAgentTestSupport
import Testing

extension AnalysisTests {
    @Test(
        "blue-green: the old slot serves until the analysis passed; a failed analysis switches back to it, never stopped",
        .enabled(if: TestTools.inCI || TestTools.runnable("prometheus")))
    func blueGreen() throws {
        let bench = try AnalysisBench(blueGreen: true)
        let slots = bench.slots ?? []
        // The release's own slot: Prometheus labels each scrape with its instance.
        bench.agent.environment["RELEASE_AGENT_ANALYSIS"] =
            #"errors: (sum(rate(demo_http_requests_total{instance="127.0.0.1:{port}",code="500"}[4s])) or vector(0)) / sum(rate(demo_http_requests_total{instance="127.0.0.1:{port}"}[4s])) <= 0.1"#
        let pid = { (port: Int) in
            (try? String(contentsOfFile: bench.agent.root + "/run/app-\(port).pid", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let good = try bench.commit("v1")
        let first = try bench.agent.run("deploy")
        #expect(first.status == 0, "\(first.stderr)")
        let livePID = pid(slots[0])
        #expect(livePID.map { kill($0, 0) == 0 } == true)

        let bad = try bench.commit("v2", errors: true)
        let second = try bench.agent.run("deploy")
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("failed at analysis"), "\(second.stderr)")
        #expect(bench.agent.currentSHA == good)
        #expect(bench.agent.recordState(bad) == "failed")
        // The old slot's app is the same process, never stopped; the candidate's is gone.
        #expect(pid(slots[0]) == livePID && livePID.map { kill($0, 0) == 0 } == true)
        #expect(!portAcceptsConnections(slots[1]))
        // on-failure learns which slot failed and which one serves again.
        #expect(bench.onFailureLog.contains("port=\(slots[1]) previous=\(slots[0])"), "\(bench.onFailureLog)")
        let upstream = try String(contentsOfFile: bench.agent.root + "/upstream", encoding: .utf8)
        #expect(upstream.trimmingCharacters(in: .whitespacesAndNewlines) == String(slots[0]))

        let fixed = try bench.commit("v3")
        let third = try bench.agent.run("deploy")
        #expect(third.status == 0, "\(third.stderr)")
        #expect(bench.agent.currentSHA == fixed)
        let text = third.stderr
        // The old slot stopped only after the analysis passed.
        if let passed = text.range(of: "PASSED"), let stop = text.range(of: "\nstop ") {
            #expect(passed.lowerBound < stop.lowerBound, "\(text)")
        } else {
            Issue.record("no PASSED or stop line: \(text)")
        }
        #expect(!portAcceptsConnections(slots[0]))
    }

    @Test(
        "analysis-token-file: the bearer reaches Prometheus (a proxy that wants it answers); without it, 401 is an error"
    )
    func bearerToken() throws {
        let scratch = Scratch()
        let port = freePort()
        // Prometheus behind a proxy that checks the bearer, as operators run it.
        let proxy = """
            import http.server, json
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    ok = self.headers.get("Authorization") == "Bearer s3cret-t0ken"
                    body = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "0.25"]}})
                    self.send_response(200 if ok else 401)
                    self.end_headers()
                    self.wfile.write((body if ok else "unauthorized").encode())
                def log_message(self, *args):
                    pass
            http.server.HTTPServer(("127.0.0.1", \(port)), H).serve_forever()
            """
        let server = try TestServer(
            ["/usr/bin/env", "python3", "-c", proxy], port: port, log: scratch.sub("proxy.log"))
        defer { server.stop() }
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("one")
        #expect(try agent.run("deploy").status == 0)
        try repo.commit("two")
        try "s3cret-t0ken\n".write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        agent.environment["RELEASE_AGENT_ANALYSIS_PROMETHEUS"] = "http://127.0.0.1:\(port)"
        agent.environment["RELEASE_AGENT_ANALYSIS"] = "ratio: vector(0.25) <= 0.5"
        let without = try agent.run("deploy", ["--dry-run"])
        #expect(without.stdout.contains("ratio: error (Prometheus answered HTTP 401)"), "\(without.stdout)")
        let with = try agent.run("deploy", ["--dry-run", "--analysis-token-file", scratch.sub("token")])
        #expect(with.stdout.contains("ratio = 0.25: passed (bound <= 0.5)"), "\(with.stdout)")
    }
}
