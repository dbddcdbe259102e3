import Foundation
import ReleaseAgentTestSupport
import Testing

/// The activate hook of a fleet host: logs start and end with the time (the hooks' own
/// timestamps are what the slot limit is measured from), then restarts the host's app.
/// A file named SLOW in the deploy root makes it hang (for kill -9 mid-activation); HOLD holds it
/// until the test removes the file.
let fleetActivateHook = """
    #!/bin/sh
    set -eu
    echo "start $HOST_ID $RELEASE_SHA $(date +%s.%N)" >> "$FLEET_LOG"
    if [ -f "$DEPLOY_ROOT/SLOW" ]; then exec sleep 20; fi
    # HOLD in the deploy root keeps this activation going until the test removes it.
    n=0; while [ -f "$DEPLOY_ROOT/HOLD" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
    if [ -f "$DEPLOY_ROOT/DELAY" ]; then sleep "$(cat "$DEPLOY_ROOT/DELAY")"; fi
    if [ -f FAIL_ON ] && grep -qw "$HOST_ID" FAIL_ON; then exit 1; fi
    "$(dirname "$0")/control" start "$APP_PORT"
    sleep 0.3
    echo "end $HOST_ID $RELEASE_SHA $(date +%s.%N)" >> "$FLEET_LOG"

    """

/// One host of the fleet: its own root, app port and hooks; `deploy` with the fleet settings.
struct Host {
    var agent: Agent
    let id: String
    let port: Int
    let arguments: [String]

    init(
        _ id: String, scratch: Scratch, repo: GitFixture, etcd: String, log: String, extra: [String],
        root: String? = nil, remote: String? = nil
    ) throws {
        self.id = id
        port = freePort()
        let name = root ?? id
        agent = try Agent(root: scratch.sub(name), repo: remote ?? repo.path)
        let hooks = scratch.sub(name + "-hooks")
        try DemoService.writeHooks(into: hooks, restartPort: port)
        try fleetActivateHook.write(toFile: hooks + "/activate", atomically: true, encoding: .utf8)
        chmod(hooks + "/activate", 0o755)
        agent.environment["HOST_ID"] = id
        agent.environment["FLEET_LOG"] = log
        agent.environment["APP_PORT"] = String(port)
        arguments =
            [
                "--fleet-etcd", etcd, "--fleet", "shop", "--host-id", id, "--strategy", "restart", "--hooks-dir", hooks,
                "--health-url", "http://127.0.0.1:\(port)/health", "--health-timeout", "5s", "--fleet-lease-ttl", "3s",
                // A slot held by a killed host frees when its bound passes: the hook and health
                // timeouts make it (about a minute here, several by default).
                "--hook-timeout", "10s",
            ] + extra
    }

    func deploy() throws -> RunningCommand { try agent.start("deploy", arguments) }

    /// `serve` for this host, unsigned commits allowed, polling every `pollInterval` ("0": off).
    func serve(pollInterval: String) throws -> ServeProcess {
        try ServeProcess(agent: agent, arguments: arguments + ["--allow-unsigned", "--poll-interval", pollInterval])
    }

    /// The fleet.json phase of this host (waiting-slot, waiting-canaries, activating, ...).
    var phase: String? { fleetState("phase") }
    /// The fleet.json detail (waiting-slot: "in line behind <host>, K slot(s)").
    var detail: String? { fleetState("detail") }

    private func fleetState(_ field: String) -> String? {
        guard let data = FileManager.default.contents(atPath: agent.root + "/.release-agent/fleet.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object[field] as? String
    }
    func fleet(_ subcommand: String) throws -> CommandResult { try agent.run("fleet " + subcommand, arguments) }
}

/// Activations per host and sha from the hooks' log: (host, sha, start, end).
func activations(_ log: String) -> [(host: String, sha: String, start: Double, end: Double)] {
    let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
    var open: [String: Double] = [:]
    var result: [(String, String, Double, Double)] = []
    for line in lines {
        let parts = line.split(separator: " ").map(String.init)
        guard parts.count == 4, let time = Double(parts[3]) else { continue }
        let key = parts[1] + " " + parts[2]
        if parts[0] == "start" { open[key] = time }
        if parts[0] == "end", let start = open.removeValue(forKey: key) {
            result.append((parts[1], parts[2], start, time))
        }
    }
    return result.map { (host: $0.0, sha: $0.1, start: $0.2, end: $0.3) }
}

/// Most activations that overlapped at one instant.
func peak(_ intervals: [(host: String, sha: String, start: Double, end: Double)]) -> Int {
    var edges: [(time: Double, step: Int)] = []
    for interval in intervals {
        edges.append((interval.start, 1))
        edges.append((interval.end, -1))
    }
    edges.sort { left, right in left.time == right.time ? left.step < right.step : left.time < right.time }
    var now = 0
    var most = 0
    for edge in edges {
        now += edge.step
        most = max(most, now)
    }
    return most
}

/// Hosts whose activation of `sha` began, in order.
func activationsStarted(_ log: String, _ sha: String) -> [String] {
    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ")
        return parts.count == 4 && parts[0] == "start" && parts[2] == sha ? String(parts[1]) : nil
    }
}

/// `count` serve agents (fleet-max-parallel 1, `fleet-lease-ttl` 3s) on `a`, then `b` pushed with
/// every activate hook held (HOLD): one host holds the slot, the others wait in line. `order`
/// is the line from each waiter's fleet.json ("in line behind <host>, ..."), the holder first.
struct WaitingLine {
    let scratch = Scratch()
    let cluster: EtcdCluster
    let log: String
    let hosts: [Host]
    let serves: [ServeProcess]
    let b: String
    let order: [Int]

    init(_ count: Int, prefix: String) throws {
        cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        self.log = log
        let (scratch, endpoints) = (self.scratch, cluster.endpoints)
        let hosts = try (1...count).map {
            try Host(
                "\(prefix)\($0)", scratch: scratch, repo: repo, etcd: endpoints, log: log,
                extra: ["--hook-timeout", "40s"])
        }
        self.hosts = hosts
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        serves = try hosts.map { try $0.serve(pollInterval: "1s") }
        #expect(eventually(timeout: 120) { hosts.allSatisfy { $0.agent.currentSHA == a } })
        for host in hosts { FileManager.default.createFile(atPath: host.agent.root + "/HOLD", contents: nil) }
        let b = try repo.commit("b")
        self.b = b
        #expect(eventually(timeout: 90) { activationsStarted(log, b).count == 1 })
        #expect(eventually(timeout: 60) { hosts.filter { $0.phase == "waiting-slot" }.count == count - 1 })
        func behind(_ id: String) -> Int? {
            hosts.firstIndex { $0.detail?.contains("in line behind \(id),") == true }
        }
        func line() -> [Int] {
            var order = hosts.firstIndex { $0.id == activationsStarted(log, b).first }.map { [$0] } ?? []
            while let last = order.last, let next = behind(hosts[last].id), !order.contains(next) { order.append(next) }
            return order
        }
        #expect(
            eventually(timeout: 30) { line().count == count }, "\(hosts.map { "\($0.id): \($0.detail ?? "-")" })")
        order = line()
    }

    /// Each host's phase and detail, for a failed expectation.
    var states: String { "\(hosts.map { "\($0.id): \($0.phase ?? "-") \($0.detail ?? "-")" })" }

    func stopApps() { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
}
