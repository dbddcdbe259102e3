import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 11: every setting, malformed or out of range, from each source, for deploy, poll,
/// rollback and serve: exit 2, one line naming the setting and its source, and the deploy
/// root byte for byte as it was.
@Suite("settings: checked once, before anything, from every source")
struct SettingsTableTests {
    /// Bad values per setting (a free-text setting like build has none).
    static let bad: [(String, [String])] = [
        ("repo", ["ftp://example.invalid/x"]), ("branch", ["main:x", "feat~1"]), ("keep-releases", ["0", "many"]),
        ("build-timeout", ["1e17s", "-1s"]), ("shared", ["../etc", "a,a/b"]),
        ("paths", ["/services/api", "services/../etc", "api/*"]), ("subdir", ["..", "/srv", "a//b"]),
        ("build-cache", ["../node_modules", "vendor,vendor/x"]), ("submodules", ["maybe"]),
        ("submodules-allow-local", ["sometimes"]),
        ("health-url", ["ftp://127.0.0.1/", "http://127.0.0.1:{port}/"]),
        ("health-tcp", ["localhost", "127.0.0.1:70000"]), ("health-timeout", ["soon"]), ("health-interval", ["inf"]),
        ("health-successes", ["0"]), ("strategy", ["canary"]), ("slots", ["80,x"]), ("hooks-dir", [""]),
        ("hook-timeout", ["99999999h"]), ("listen", ["localhost", "127.0.0.1:99999"]),
        ("webhook-secret-file", [""]), ("poll-interval", ["often"]), ("ssh-key", [""]), ("token-file", [""]),
        ("pin", ["xyz"]), ("wait", ["forever"]), ("allow-unsigned", ["maybe"]), ("shutdown-grace", ["1e30s"]),
        ("health-token", [" "]), ("metrics-token", [""]), ("refuse-force-push", ["perhaps"]),
        ("min-free-space", ["99999999999T", "lots"]), ("log-format", ["xml"]), ("pid-file", [""]),
        ("unit", ["a/b.service", "app@.service", "x.mount", "-foo.service"]),
        ("known-hosts", [""]),
        (
            "fleet-etcd",
            ["ftp://127.0.0.1:2379", "http://127.0.0.1:2379/v3", "http://127.0.0.1:99999", "http://127.0.0.1"]
        ),
        ("fleet-max-parallel", ["0"]), ("fleet-canary", ["-1"]), ("fleet-lease-ttl", ["1s"]),
        ("fleet-presence-ttl", ["2s", "25h"]),
        ("fleet-offline", ["panic"]), ("host-id", ["a/b"]), ("fleet-auto-revert", ["maybe"]),
        // Alone each is refused for lacking its partner; AnalysisRulesTests checks the values.
        ("analysis-prometheus", ["ftp://127.0.0.1:9090", "http://u:p@127.0.0.1:9090"]), ("analysis", ["e: q < 1"]),
        ("analysis-interval", ["0s"]), ("analysis-count", ["0"]), ("analysis-token-file", [""]),
    ]
    /// Settings that are flags on the command line: their bad values come by variable or file.
    static let flagOnly: Set<String> = [
        "allow-unsigned", "refuse-force-push", "fleet-auto-revert", "submodules", "submodules-allow-local",
    ]

    /// Every file under `root` with its kind and its content or link target.
    static func snapshot(_ root: String) -> [String: String] {
        var result: [String: String] = [:]
        guard let walk = FileManager.default.enumerator(atPath: root) else { return result }
        for case let name as String in walk {
            let path = root + "/" + name
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                result[name] = "link " + target
            } else if let data = FileManager.default.contents(atPath: path) {
                result[name] = "file " + data.base64EncodedString()
            } else {
                result[name] = "dir"
            }
        }
        return result
    }

    @Test("exit 2 naming the setting and its source; the root unchanged")
    func everySetting() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        try repo.commit("b")
        #expect(try agent.run("deploy").status == 0)
        try repo.commit("c")
        let before = Self.snapshot(agent.root)
        let config = scratch.sub("bad.toml")
        var checked = 0
        for (setting, values) in Self.bad {
            for value in values {
                let variable = "RELEASE_AGENT_" + setting.uppercased().replacingOccurrences(of: "-", with: "_")
                let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                    of: "\"", with: "\\\"")
                try "\(setting.replacingOccurrences(of: "-", with: "_")) = \"\(escaped)\"\n".write(
                    toFile: config, atomically: true, encoding: .utf8)
                var sources: [(String, [String], [String: String])] = [
                    ("$\(variable)", [], [variable: value]), ("\(config):1", ["--config", config], [:]),
                ]
                // The harness passes --repo itself, and a flag wins over the other two sources.
                if setting == "repo" { sources = [] }
                if !Self.flagOnly.contains(setting) {
                    sources.insert(("--\(setting)", ["--\(setting)=\(value)"], [:]), at: 0)
                }
                for (origin, arguments, environment) in sources {
                    for command in ["deploy", "poll", "rollback", "serve"]
                    where !(setting == "repo" && command == "rollback") {
                        var run = agent
                        run.environment.merge(environment) { $1 }
                        let extra = command == "serve" ? ["--allow-unsigned", "--listen", "127.0.0.1:0"] : []
                        // A flag given twice would be ArgumentParser's to judge; the bad one goes last.
                        let words = setting == "listen" || setting == "allow-unsigned" ? arguments : extra + arguments
                        let result = try run.run(command, words, timeout: 30)
                        let label = "\(command) \(setting)=\(value.debugDescription) via \(origin)"
                        #expect(result.status == 2, "\(label): exit \(result.status) \(result.stderr)")
                        let lines = result.stderr.split(separator: "\n")
                        #expect(lines.count == 1, "\(label): \(result.stderr)")
                        #expect(result.stderr.contains(setting), "\(label) does not name the setting: \(result.stderr)")
                        #expect(result.stderr.contains(origin), "\(label) does not name \(origin): \(result.stderr)")
                        checked += 1
                    }
                }
            }
        }
        let after = Self.snapshot(agent.root)
        #expect(after == before, "the deploy root changed: \(Set(after.keys).symmetricDifference(before.keys))")
        print("settings table: \(checked) refused command lines")
    }
}
