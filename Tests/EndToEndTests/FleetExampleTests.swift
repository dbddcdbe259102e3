import Foundation
import ReleaseAgentTestSupport
import Testing

/// releases.example/fleet/fleet.sh, the README's "fleet for real on this machine", run for
/// real: a scratch FLEET_ROOT, a free FLEET_BASE (every port comes from it), and the binary
/// this build made (RELEASE_AGENT_BIN: no `swift build` inside the test).
@Suite(
    "example: releases.example/fleet/fleet.sh up, push, status, down", .serialized,
    .enabled(if: TestTools.runnable("etcd", "curl", "python3", "git")))
struct FleetExampleTests {
    private let script = packageRoot + "/releases.example/fleet/fleet.sh"

    @Test("fleet.sh parses (bash -n) and is shellcheck-clean where shellcheck is installed")
    func syntax() throws {
        let parsed = try ShellCommand.run(["/bin/bash", "-n", script])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        if let shellcheck = TestTools.path("shellcheck") {
            let checked = try ShellCommand.run([shellcheck, script])
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        }
    }

    @Test("up, push, status, down on free ports: every host serves the pushed version; down leaves no process")
    func upPushStatusDown() throws {
        _ = try TestTools.require("etcd", package: "etcd-server")
        _ = try TestTools.require("curl", package: "curl")
        _ = try TestTools.require("python3", package: "python3")
        _ = try TestTools.require("git", package: "git")
        let scratch = Scratch("fleet-example")
        let root = scratch.sub("root")
        guard let base = LocalProcesses.freePortBlock(33) else {
            Issue.record("no block of 33 free ports found")
            return
        }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RELEASE_AGENT_") }
        environment["FLEET_ROOT"] = root
        environment["RELEASE_AGENT_BIN"] = try Agent.locateBinary()
        environment.removeValue(forKey: "FLEET_BASE")
        func fleet(_ action: String, base: Int? = nil, timeout: TimeInterval = 240) throws -> CommandResult {
            var environment = environment
            if let base { environment["FLEET_BASE"] = String(base) }
            return try ShellCommand.run(["/bin/bash", script, action], environment: environment, timeout: timeout)
        }
        defer {
            _ = try? fleet("down", timeout: 60)
            for process in LocalProcesses.mentioning(root) { kill(process.pid, SIGKILL) }
        }

        let up = try fleet("up", base: base)
        #expect(up.status == 0, "\(up.stdout)\(up.stderr)")
        #expect(up.stdout.contains("all 3 hosts serve"), "\(up.stdout)")
        let ports = (try? String(contentsOfFile: root + "/ports", encoding: .utf8)) ?? ""
        #expect(ports.contains("FLEET_BASE=\(base)\n"), "\(ports)")
        let head = { try ShellCommand.run(["/usr/bin/env", "git", "-C", root + "/repo", "rev-parse", "HEAD"]).stdout }
        let first = try head().trimmingCharacters(in: .whitespacesAndNewlines)
        for host in 1...3 { #expect(serves(port: base + 20 + host, version: 1, sha: first), "web-\(host)") }

        // Without FLEET_BASE: the commands read it from FLEET_ROOT/ports.
        let push = try fleet("push")
        #expect(push.status == 0, "\(push.stdout)\(push.stderr)")
        let second = try head().trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(second != first)
        for host in 1...3 {
            #expect(serves(port: base + 20 + host, version: 2, sha: second), "web-\(host) does not serve version 2")
        }
        let status = try fleet("status")
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("3 live host(s)"), "\(status.stdout)")
        #expect(status.stdout.contains("rollout \(second.prefix(12)): 3 host(s) done"), "\(status.stdout)")

        #expect(!LocalProcesses.mentioning(root).isEmpty, "no process of the fleet found to stop")
        let down = try fleet("down", timeout: 120)
        #expect(down.status == 0, "\(down.stdout)\(down.stderr)")
        #expect(
            eventually(timeout: 30) { LocalProcesses.mentioning(root).isEmpty }, "\(LocalProcesses.mentioning(root))")
        let open = (1...33).map { base + $0 }.filter { portAcceptsConnections($0) }
        #expect(open.isEmpty, "ports still answering after down: \(open)")
    }

    /// The demo app on `port` answers `release-agent demo VERSION (SHA12)`.
    private func serves(port: Int, version: Int, sha: String) -> Bool {
        guard let reply = try? TestHTTP.send("GET", "http://127.0.0.1:\(port)/", timeout: 5) else { return false }
        return reply.body.contains("release-agent demo \(version) (\(sha.prefix(12)))")
    }
}
