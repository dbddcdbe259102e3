import Foundation
import Testing

@testable import ReleaseAgent

@Suite("settings")
struct ConfigTests {
    private func withConfig(_ toml: String, _ body: (String) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "/ra-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/release-agent.toml"
        try toml.write(toFile: file, atomically: true, encoding: .utf8)
        try body(file)
    }

    @Test("flags win over the environment, which wins over the config file")
    func precedence() throws {
        try withConfig("root = \"deploy\"\nbranch = \"from-file\"\nkeep_releases = 7\nbuild_timeout = \"5m\"\n") {
            file in
            let raw = try ConfigSources.merge(
                flags: ["branch": .scalar("from-flag")], configFlag: file,
                environment: ["RELEASE_AGENT_BRANCH": "from-env", "RELEASE_AGENT_KEEP_RELEASES": "4"], cwd: "/srv")
            let settings = try Settings(raw: raw)
            #expect(settings.branch == "from-flag")
            #expect(settings.keepReleases == 4)
            #expect(settings.buildTimeout == .seconds(300))
            // A relative path in the file is taken from the file's folder.
            #expect(settings.root == (file as NSString).deletingLastPathComponent + "/deploy")
        }
    }

    @Test("tables group keys: [health] url, [build] command; lists are TOML arrays")
    func tables() throws {
        let toml = """
            root = "/srv/app"
            strategy = "blue-green"
            slots = [5000, 6000]
            shared = ["config/app.env", "storage"]
            [build]
            command = "make"
            timeout = "90s"
            [health]
            url = "http://127.0.0.1:{port}/health"
            interval = "250ms"
            """
        try withConfig(toml) { file in
            let settings = try Settings(
                raw: try ConfigSources.merge(flags: [:], configFlag: file, environment: [:], cwd: "/"))
            #expect(settings.build == "make")
            #expect(settings.buildTimeout == .seconds(90))
            #expect(settings.healthURL?.text == "http://127.0.0.1:{port}/health")
            #expect(settings.healthURL?.usesSlot == true)
            #expect(settings.healthInterval == .milliseconds(250))
            #expect(settings.slots == SlotPair(5000, 6000))
            #expect(settings.shared == ["config/app.env", "storage"])
            #expect(settings.strategy == .blueGreen)
        }
    }

    @Test("bad values name their source")
    func badValues() throws {
        let cases: [(String, String, String)] = [
            ("keep-releases", "0", "--keep-releases"), ("health-timeout", "10 parsecs", "--health-timeout"),
            ("slots", "80", "blue-green"), ("strategy", "canary", "restart or blue-green"),
        ]
        for (name, value, expected) in cases {
            var flags: [String: RawValue] = ["root": .scalar("/srv"), name: .scalar(value)]
            if name == "slots" { flags["strategy"] = .scalar("blue-green") }
            let raw = try ConfigSources.merge(flags: flags, configFlag: nil, environment: [:], cwd: "/")
            #expect {
                try Settings(raw: raw)
            } throws: { error in
                (error as? AgentError)?.kind == .usage && "\(error)".contains(expected)
            }
        }
        let raw = try ConfigSources.merge(flags: [:], configFlag: nil, environment: [:], cwd: "/nonexistent-dir")
        #expect(throws: AgentError.self) { try Settings(raw: raw) }
    }

    @Test("the scp form (user@host:path) is told apart as the pattern ^[^/]+@[^/]+: does")
    func scpForm() throws {
        let pattern = try NSRegularExpression(pattern: "^[^/]+@[^/]+:")
        let samples = [
            "git@github.com:you/app.git", "git@github.com:", "a@b:", "a@:", "@b:c", "a@@:", "a@b", "/srv/a@b:c",
            "srv/a@b:c", "a/b@c:d", "a@b/c:d", "user@host:/abs/path", "ünï@høst:x", "a@b:c@d:e", "", "@", "a@", ":",
            "x@y::", "relative/path", "file:///srv/repo", "https://user@host:443/r",
        ]
        for text in samples {
            let range = NSRange(text.startIndex..., in: text)
            let expected = pattern.firstMatch(in: text, range: range) != nil
            #expect(RemoteURL.isSCPLike(text) == expected, "\(text.debugDescription)")
        }
    }

    @Test("stage durations print as %.2f seconds, then minutes; columns are cut or padded")
    func durationText() {
        for value in [0, 0.004, 0.005, 0.126, 1.234, 9.999, 59.5, 59.994] {
            #expect(Duration.twoDecimals(value) == String(format: "%.2f", value), "\(value)")
        }
        #expect(Duration.milliseconds(420).short == "0.42s")
        #expect(Duration.seconds(125).short == "2m05s")
        #expect(Duration.seconds(3600).short == "60m00s")
        #expect("fetch".fitted(to: 9) == "fetch    ")
        #expect("building".fitted(to: 6) == "buildi")
    }

    @Test("durations accept ms, s, m, h and bare seconds")
    func durations() {
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("30s") == .seconds(30))
        #expect(DurationParser.parse("10m") == .seconds(600))
        #expect(DurationParser.parse("1h") == .seconds(3600))
        #expect(DurationParser.parse("2") == .seconds(2))
        #expect(DurationParser.parse("0") == .zero)
        #expect(DurationParser.parse("-1s") == nil)
        #expect(DurationParser.parse("soon") == nil)
    }
}

@Suite("the HTTP health probe")
struct HTTPProbeTests {
    @Test("http:// URLs parse with host, port and path; other schemes and bad ports do not")
    func parse() {
        #expect(
            HTTPProbe.parse("http://127.0.0.1:8080/health") == .init(host: "127.0.0.1", port: 8080, path: "/health"))
        #expect(HTTPProbe.parse("http://localhost") == .init(host: "localhost", port: 80, path: "/"))
        #expect(HTTPProbe.parse("http://[::1]:9000?x=1") == .init(host: "::1", port: 9000, path: "/?x=1"))
        #expect(HTTPProbe.parse("HTTP://host:1/a/b?c=d") == .init(host: "host", port: 1, path: "/a/b?c=d"))
        for bad in [
            "https://127.0.0.1/", "ftp://x", "http://", "http://h:0/", "http://h:99999/", "http://h:x/", "127.0.0.1:80",
        ] {
            #expect(HTTPProbe.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("a 2xx answer is healthy; others, garbage and a missing expect string say why; chunked bodies are decoded")
    func judge() {
        func raw(_ text: String) -> [UInt8] { Array(text.utf8) }
        #expect(HTTPProbe.judge(raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), expect: nil) == nil)
        #expect(HTTPProbe.judge(raw("HTTP/1.1 204 No Content\r\n\r\n"), expect: nil) == nil)
        #expect(HTTPProbe.judge(raw("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"), expect: nil) == "HTTP 302")
        #expect(HTTPProbe.judge(raw("HTTP/1.0 503 Busy\r\n\r\n"), expect: nil) == "HTTP 503")
        #expect(HTTPProbe.judge(raw("SSH-2.0-OpenSSH\r\n\r\n"), expect: nil) == "not an HTTP answer")
        #expect(HTTPProbe.judge([], expect: nil) == "the connection was closed before an answer")
        #expect(HTTPProbe.judge(raw("HTTP/1.1 200 OK\r\n\r\nstarting"), expect: "ready") != nil)
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nrea\r\n2;x=y\r\ndy\r\n0\r\n\r\n"
        #expect(HTTPProbe.judge(raw(chunked), expect: "ready") == nil)
    }

    @Test("an answer is complete at its head, or with its body when the body is needed (keep-alive servers)")
    func complete() {
        func raw(_ text: String) -> [UInt8] { Array(text.utf8) }
        #expect(HTTPProbe.isComplete(raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), needBody: false))
        #expect(!HTTPProbe.isComplete(raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), needBody: true))
        #expect(HTTPProbe.isComplete(raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde"), needBody: true))
        #expect(!HTTPProbe.isComplete(raw("HTTP/1.1 200 OK\r\nContent-Le"), needBody: false))
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        #expect(!HTTPProbe.isComplete(raw(chunked), needBody: true))
        #expect(HTTPProbe.isComplete(raw(chunked + "0\r\n\r\n"), needBody: true))
    }
}
