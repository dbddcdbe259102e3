import Foundation
import ReleaseAgentTestSupport
import Testing

/// Seeded random fault sequences against the fleet's invariants (ATTACKS.md: "run random
/// sequences of these against an invariant checker"). Five `serve` agents (serve, not cron
/// `poll`: SIGTERM and a supervisor's restart are serve's faults, and serve's own poll loop
/// drives the rollouts without the test scheduling runs) on a real 3-member etcd, each host
/// reaching etcd through relays of its own that a step can stall. After every step, and at
/// the end, the checker in FleetChaosChecks.swift reads the hooks' log and etcd. Two seeds
/// by default; FLEET_CHAOS_SEEDS=1,2,3 or FLEET_CHAOS_SEED_COUNT=20 (FLEET_CHAOS_STEPS=n)
/// run more. A violation prints the seed, the plan and what happened.
@Suite(
    "fleet chaos: seeded faults against the fleet's invariants", .serialized,
    .enabled(if: TestTools.runnable("etcd", "etcdctl", "python3")))
struct FleetChaosTests {
    @Test(
        "pushes, failing commits, kill -9, SIGTERM, stalled paths, pauses and rollbacks keep the slot limit, halts, pauses, the operator and liveness",
        arguments: ChaosPlan.seeds)
    func chaos(seed: UInt64) throws {
        let plan = ChaosPlan(seed: seed, stepCount: ChaosPlan.stepCount)
        let run = try ChaosRun(plan: plan)
        defer { run.tearDown() }
        try run.start()
        for (index, entry) in plan.steps.enumerated() {
            run.record.note("step \(index + 1): \(entry.step)")
            try run.perform(entry.step)
            Thread.sleep(forTimeInterval: entry.settle)
            run.check()
        }
        try run.finish()
        run.check()
        let lines = hookLines(run.log)
        if run.record.violations.isEmpty {
            let fleet = lines.filter { $0.kind == "start" }.count
            let events = run.record.events
            let operators = events.filter { $0.contains("operator rollback on h") }.count
            let paused = events.filter { $0.contains("during the pause") }.count
            print(
                "fleet chaos seed \(seed): no violation (\(plan.steps.count) steps, \(fleet) fleet activations, \(run.record.halts.count) halt(s), \(paused) push(es) during a pause, \(run.record.kills.count) kill -9, \(operators) operator rollback(s) during a wait)"
            )
            if ProcessInfo.processInfo.environment["FLEET_CHAOS_VERBOSE"] != nil {
                print(run.record.report(plan, lines))
            }
        } else {
            let report = run.record.report(plan, lines) + "\nagents' stderr (tails):\n" + run.stderrTails()
            print(report)
            Issue.record("\(report)")
        }
    }
}

/// One seed's fleet: the cluster, a relay per host and member, the hosts and their serves.
final class ChaosRun {
    let plan: ChaosPlan
    let scratch = Scratch("chaos")
    let cluster: EtcdCluster
    let etcd: ChaosEtcd
    let proxies: [[StallingProxy]]
    let repo: GitFixture
    let log: String
    var hosts: [Host] = []
    var serves: [ServeProcess?] = []
    /// stderr of the serve processes that ended (kill -9, SIGTERM), per host.
    var ended: [[String]]
    var stalled: Int?
    var paused = false
    var version = 0
    let record = ChaosRecord()
    /// The hooks' timeout (Host's `--hook-timeout 10s`) and ProcessRunner's kill grace.
    let hookBound = 13.0
    let operatorArguments: [String]

    init(plan: ChaosPlan) throws {
        self.plan = plan
        // Under CI=true a missing tool fails here (the suite is not skipped there).
        _ = try TestTools.require("etcdctl", package: "etcd-client")
        _ = try TestTools.require("python3", package: "python3")
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        self.cluster = cluster
        etcd = ChaosEtcd(endpoints: cluster.endpoints)
        operatorArguments = ["--fleet-etcd", cluster.endpoints, "--fleet", "shop"]
        proxies = try (0..<ChaosPlan.hostCount).map { _ in
            try cluster.members.map { try StallingProxy(upstream: $0.clientPort) }
        }
        repo = try GitFixture(at: scratch.sub("repo"))
        log = scratch.sub("activations.log")
        ended = Array(repeating: [], count: ChaosPlan.hostCount)
        let extra = [
            "--fleet-max-parallel", String(plan.maxParallel), "--fleet-canary", String(plan.canaries),
            "--fleet-max-failures", String(plan.maxFailures), "--fleet-canary-timeout", "8s", "--shutdown-grace", "20s",
        ]
        for index in 0..<ChaosPlan.hostCount {
            let id = "h\(index + 1)"
            let host = try Host(
                id, scratch: scratch, repo: repo, etcd: proxies[index].map(\.url).joined(separator: ","), log: log,
                extra: extra)
            let hook = scratch.sub(id + "-hooks") + "/activate"
            try chaosActivateHook.write(toFile: hook, atomically: true, encoding: .utf8)
            chmod(hook, 0o755)
            try FileManager.default.createDirectory(atPath: host.agent.root, withIntermediateDirectories: true)
            try String(plan.hookDelays[index]).write(
                toFile: host.agent.root + "/DELAY", atomically: true, encoding: .utf8)
            hosts.append(host)
        }
    }

    /// The agents, and two commits rolled out.
    func start() throws {
        // Two commits, so that every host has a previous release to roll back to.
        let first = try repo.commit("a", files: ["app.py": DemoService.app, "FAIL_ON": "", "VERSION": "0"])
        record.pushes.append((first, true, Date().timeIntervalSince1970))
        serves = try hosts.map { try serve($0) }
        for round in 0..<2 {
            if round == 1 { try push(failing: []) }
            let sha = record.pushes.last!.sha
            guard eventually(timeout: 180, { hosts.allSatisfy { $0.agent.currentSHA == sha } }) else {
                throw FixtureError("setup: not every host activated \(sha): \(hosts.indices.map(phaseText))")
            }
        }
        record.note("setup done: every host runs \(record.pushes.last!.sha.prefix(8))")
    }

    func serve(_ host: Host) throws -> ServeProcess {
        try host.serve(pollInterval: "1s")
    }

    var now: Double { Date().timeIntervalSince1970 }

    // MARK: steps

    func perform(_ step: ChaosPlan.Step) throws {
        switch step {
        case .pushGood:
            try push(failing: [])
        case .pushFailing(let failing):
            try push(failing: failing)
            // Its rollout goes on until a named host fails it (bounded), so that halts happen
            // rather than the next push superseding it.
            let sha = record.pushes.last!.sha
            if !eventually(timeout: 12, { hookLines(log).contains { $0.kind == "fail" && $0.sha == sha } }) {
                record.note("no host failed \(sha.prefix(8)) within 12s")
            }
        case .kill9(let index, let moment, let after):
            try reach(moment, index)
            guard let serve = serves[index] else { return }
            kill(serve.running.pid, SIGKILL)
            record.kills.append((hosts[index].id, now))
            keep(index, try? serve.running.wait(timeout: 10))
            serves[index] = nil
            record.note("killed h\(index + 1) (phase \(phaseText(index)))")
            Thread.sleep(forTimeInterval: after)
            restart(index)
        case .sigterm(let index, let moment):
            try reach(moment, index)
            guard let serve = serves[index] else { return }
            record.note("SIGTERM to h\(index + 1) (phase \(phaseText(index)))")
            kill(serve.running.pid, SIGTERM)
            // shutdown-grace is 20s; an activation under way finishes first (hook-timeout 10s).
            if let result = try? serve.running.wait(timeout: 90) {
                keep(index, result)
                if result.status != 0 {
                    record.violation(
                        "SIGTERM: h\(index + 1)'s serve exited \(result.status): \(result.stderr.suffix(600))")
                }
            } else {
                record.violation("SIGTERM: h\(index + 1)'s serve did not exit within 90s (shutdown-grace 20s)")
            }
            serves[index] = nil
            restart(index)
        case .stall(let index, let moment):
            try reach(moment, index)
            proxies[index].forEach { $0.stall() }
            stalled = index
            record.note("stalled h\(index + 1)'s path to etcd (phase \(phaseText(index)))")
        case .unstall:
            if let index = stalled {
                proxies[index].forEach { $0.resume() }
                record.note("resumed h\(index + 1)'s path to etcd")
            }
            stalled = nil
        case .pause:
            let result = try operatorRun("fleet pause", ["--reason", "chaos"])
            record.pauses.append((now, nil))
            paused = true
            record.note("fleet pause: exit \(result.status)")
        case .resume:
            try resume()
        case .fleetRollback(let pick):
            let good = Array(record.pushes.filter(\.good).map(\.sha).reversed())
            let sha = pick.map { good[min($0, good.count - 1)] }
            let result = try operatorRun("fleet rollback", sha.map { [$0] } ?? [])
            record.note("fleet rollback to \(sha.map { String($0.prefix(8)) } ?? "previous"): exit \(result.status)")
        case .operatorRollback(let from):
            try operatorRollback(from: from)
        }
    }

    /// Waits (bounded) until host `index` activates or waits, as `moment` asks; a good commit
    /// is pushed when that does not come within 2s. The fault comes anyway after 10s more.
    func reach(_ moment: ChaosPlan.Moment, _ index: Int) throws {
        let state = { (self.phase(index)?["phase"] as? String) ?? "" }
        let reached = {
            switch moment {
            case .anytime: return true
            case .activating: return state() == "activating"
            case .waiting: return state().hasPrefix("waiting")
            }
        }
        guard serves[index] != nil, !eventually(timeout: 2, reached) else { return }
        try push(failing: [])
        if !eventually(timeout: 10, reached) {
            record.note("h\(index + 1) did not reach \(moment.rawValue); the fault comes anyway")
        }
    }

    func push(failing: [Int]) throws {
        version += 1
        let names = failing.map { hosts[$0].id }
        let sha = try repo.commit(
            failing.isEmpty ? "good \(version)" : "failing \(version)",
            files: ["FAIL_ON": names.map { $0 + "\n" }.joined(), "VERSION": String(version)])
        record.pushes.append((sha, failing.isEmpty, now))
        let what = failing.isEmpty ? "good" : "failing on \(names.joined(separator: ","))"
        record.note("pushed \(what) \(sha.prefix(8))\(paused ? " during the pause" : "")")
    }

    func resume() throws {
        if let last = record.pauses.indices.last, record.pauses[last].resumed == nil {
            record.pauses[last].resumed = now
        }
        let result = try operatorRun("fleet resume", [])
        paused = false
        record.note("fleet resume: exit \(result.status)")
    }

    /// The operator's `rollback` on a waiting host must never be refused (exit 75, the lock
    /// busy): waiting holds no lock. A 75 after the host left its wait (the slot came: its
    /// hook started, or its phase moved on) is the lock of the activation, which is allowed.
    func operatorRollback(from: Int) throws {
        let order = (0..<ChaosPlan.hostCount).map { (from + $0) % ChaosPlan.hostCount }
        var found: Int?
        let look = { (timeout: TimeInterval) in
            _ = eventually(timeout: timeout) {
                found = order.first { self.serves[$0] != nil && self.isWaiting($0) }
                return found != nil
            }
        }
        look(2)
        if found == nil {
            // A new head makes hosts wait for a slot (or the canaries).
            try push(failing: [])
            look(10)
        }
        guard let index = found else {
            record.note("operator rollback: no host waits; skipped")
            return
        }
        var agent = hosts[index].agent
        agent.environment["CHAOS_OPERATOR"] = "1"
        let before = phaseText(index)
        let started = now
        let result = try agent.run("rollback", hosts[index].arguments, timeout: 120)
        let after = phaseText(index)
        let last = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        record.note("operator rollback on h\(index + 1) (\(before)): exit \(result.status) \(last)")
        guard result.status == 75 else { return }
        let moved = hookLines(log).contains { $0.kind == "start" && $0.host == hosts[index].id && $0.time >= started }
        if isWaiting(index) && !moved {
            record.violation(
                "operator: rollback on h\(index + 1) refused with exit 75 (lock busy) while it waited: before \(before); after \(after); \(result.stderr.suffix(400))"
            )
        } else {
            record.note("  the lock was the activation's: the slot came meanwhile (\(after))")
        }
    }

    func operatorRun(_ subcommand: String, _ arguments: [String]) throws -> CommandResult {
        try hosts[0].agent.run(subcommand, operatorArguments + arguments, timeout: 60)
    }

    func restart(_ index: Int) {
        do {
            serves[index] = try serve(hosts[index])
            record.note("restarted h\(index + 1)")
        } catch {
            record.violation("restart: h\(index + 1)'s serve did not come up: \(error)")
        }
    }
}
