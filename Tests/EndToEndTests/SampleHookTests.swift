import Foundation
import ReleaseAgentTestSupport
import Testing

/// The shipped `hooks/notify` pair, as an operator would install it, against a real HTTP
/// endpoint on 127.0.0.1 that records what it is sent.
@Suite("sample hooks: notify")
struct SampleHookTests {
    @Test("post-deploy and on-failure POST valid JSON, quotes in the failure reason included")
    func notifyPostsJSON() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        for name in ["post-deploy", "on-failure"] {
            try FileManager.default.copyItem(atPath: "\(packageRoot)/hooks/notify/\(name)", toPath: "\(hooks)/\(name)")
        }
        let received = scratch.sub("received")
        let port = freePort()
        let server = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    with open(sys.argv[1], "ab") as f:
                        f.write(body + b"\\n")
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(("127.0.0.1", \(port)), H).serve_forever()
            """
        let running = try ShellCommand.start(["/usr/bin/env", "python3", "-c", server, received])
        defer {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 10)
        }
        #expect(eventually(timeout: 20) { portAcceptsConnections(port) })
        agent.environment["NOTIFY_URL"] = "http://127.0.0.1:\(port)/hook"
        let good = try repo.commit("good")
        #expect(try agent.run("deploy", ["--hooks-dir", hooks]).status == 0)
        // A failure whose reason holds a quote and a backslash: a shared path that is missing.
        try repo.commit("next")
        let odd = #"conf"ig\x.txt"#
        #expect(try agent.run("deploy", ["--hooks-dir", hooks, "--shared", odd]).status == 1)
        let lines = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n")
        let messages = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(lines.count == 2 && messages.count == 2, "\(lines)")
        guard messages.count == 2 else { return }
        #expect(messages[0]["event"] == "post-deploy")
        #expect(messages[0]["sha"] == good)
        #expect(messages[0]["branch"] == "main")
        // The checkout failed and its partial dir is gone: on-failure still ran (in the root).
        #expect(messages[1]["stage"] == "checkout")
        #expect(messages[1]["reason"]?.contains(odd) == true, "\(messages[1])")
        #expect(messages[1]["text"]?.contains("FAILED") == true)
    }
}
