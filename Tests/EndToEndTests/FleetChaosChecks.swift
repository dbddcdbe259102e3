import Foundation
import ReleaseAgentTestSupport
import Testing

/// The chaos hook: `fleetActivateHook`'s lines (`start`/`end HOST SHA TIME`, so `activations()`
/// reads them) plus `fail` when FAIL_ON names this host, and `op-` before each word when the
/// operator's own `rollback` runs it (CHAOS_OPERATOR set): that activation is not rationed by
/// the fleet, so the slot limit leaves it out. DELAY in the deploy root makes it last longer.
let chaosActivateHook = """
    #!/bin/sh
    set -eu
    op=${CHAOS_OPERATOR:+op-}
    echo "${op}start $HOST_ID $RELEASE_SHA $(date +%s.%N)" >> "$FLEET_LOG"
    if [ -f "$DEPLOY_ROOT/DELAY" ]; then sleep "$(cat "$DEPLOY_ROOT/DELAY")"; fi
    if [ -f FAIL_ON ] && grep -qw "$HOST_ID" FAIL_ON; then
      echo "${op}fail $HOST_ID $RELEASE_SHA $(date +%s.%N)" >> "$FLEET_LOG"; exit 1
    fi
    "$(dirname "$0")/control" start "$APP_PORT"
    sleep 0.3
    echo "${op}end $HOST_ID $RELEASE_SHA $(date +%s.%N)" >> "$FLEET_LOG"

    """

/// One line of the hook's log.
struct HookLine {
    let kind: String
    let host: String
    let sha: String
    let time: Double
}

func hookLines(_ log: String) -> [HookLine] {
    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ").map(String.init)
        guard parts.count == 4, let time = Double(parts[3]) else { return nil }
        return HookLine(kind: parts[0], host: parts[1], sha: parts[2], time: time)
    }
}

/// The fleet's activations (the operator's own left out), as `activations()` pairs them, plus
/// the ones that did not end with `end`: a `fail` ends one. kill -9 of an agent does not end
/// its hook (the hook runs in a process group of its own and writes its own `end`), so a
/// `start` with neither is one the agent killed at `hook-timeout`: it lasted at most that
/// long (or until now).
func fleetActivations(_ lines: [HookLine], hookTimeout: Double, now: Double) -> [(
    host: String, sha: String, start: Double, end: Double
)] {
    var open: [String: Double] = [:]
    var result: [(host: String, sha: String, start: Double, end: Double)] = []
    func close(_ key: String, _ start: Double, at end: Double) {
        let parts = key.split(separator: " ").map(String.init)
        result.append((host: parts[0], sha: parts[1], start: start, end: end))
    }
    for line in lines {
        let key = line.host + " " + line.sha
        switch line.kind {
        case "start":
            if let earlier = open[key] { close(key, earlier, at: min(earlier + hookTimeout, line.time)) }
            open[key] = line.time
        case "end", "fail":
            if let start = open.removeValue(forKey: key) { close(key, start, at: line.time) }
        default: break
        }
    }
    for (key, start) in open { close(key, start, at: min(start + hookTimeout, now)) }
    return result.sorted { $0.start < $1.start }
}

/// What a run did, and the invariant checks over it; violations are kept once each.
final class ChaosRecord {
    let t0 = Date().timeIntervalSince1970
    var pushes: [(sha: String, good: Bool, time: Double)] = []
    /// `fleet pause` returned (it had landed) .. `fleet resume` was invoked.
    var pauses: [(landed: Double, resumed: Double?)] = []
    /// Halted shas and when the halt was written (the rollout's `time` at the first revision
    /// that has `halted`).
    var halts: [String: Double] = [:]
    var events: [String] = []
    /// kill -9 of a host's agent, and when.
    var kills: [(host: String, time: Double)] = []
    private(set) var violations: [String] = []

    func at(_ time: Double) -> String { String(format: "t+%.2fs", time - t0) }

    func note(_ text: String) { events.append("\(at(Date().timeIntervalSince1970)) \(text)") }

    func violation(_ text: String) {
        guard !violations.contains(text) else { return }
        violations.append(text)
        note("VIOLATION: \(text)")
    }

    /// 1. Never more than `maxParallel` fleet activations at one instant (hooks' timestamps).
    func checkOverlap(_ lines: [HookLine], maxParallel: Int, hookTimeout: Double) {
        let intervals = fleetActivations(lines, hookTimeout: hookTimeout, now: Date().timeIntervalSince1970)
        guard peak(intervals) > maxParallel else { return }
        // The first instant over the limit, and the activations that cover it.
        for interval in intervals {
            let covering = intervals.filter { $0.start <= interval.start && interval.start < $0.end }
            guard covering.count > maxParallel else { continue }
            let list = covering.map { "\($0.host) \($0.sha.prefix(8)) \(at($0.start))..\(at($0.end))" }
            violation(
                "slot limit: \(covering.count) activations at once (fleet-max-parallel \(maxParallel)): \(list.joined(separator: "; "))"
            )
            return
        }
    }

    /// 2. A sha pushed during a pause is not activated before the resume; a host that had not
    /// activated a halted sha by the halt never does. `grace` covers a host that confirmed
    /// its slot (sha not halted) just before the halt landed and then swapped: the hook
    /// starts a moment after the confirmation (an ordering slack, not a speed asserted).
    func checkPauseAndHalt(_ lines: [HookLine], grace: Double) {
        for pause in pauses {
            let end = pause.resumed ?? .infinity
            for push in pushes where push.time > pause.landed && push.time < end {
                for line in lines where line.kind == "start" && line.sha == push.sha && line.time < end {
                    violation(
                        "pause: \(line.host) activated \(push.sha.prefix(8)) at \(at(line.time)), pushed at \(at(push.time)) during the pause of \(at(pause.landed))..\(pause.resumed.map { at($0) } ?? "end")"
                    )
                }
            }
        }
        for (sha, halted) in halts {
            let starts = lines.filter { $0.kind == "start" && $0.sha == sha }
            let before = Set(starts.filter { $0.time <= halted + grace }.map(\.host))
            for line in starts where line.time > halted + grace && !before.contains(line.host) {
                violation(
                    "halt: \(line.host) activated \(sha.prefix(8)) at \(at(line.time)), halted at \(at(halted)), not having activated it before"
                )
            }
        }
    }

    /// 3. Results are true: a host is recorded failed for a sha (`rollouts/<sha>` `failed`,
    /// which halts it at fleet-max-failures) only if it began that sha's activation (its hook
    /// started) or its agent was killed -9 after the push (killed before the swap, the agent
    /// counts the activation failed).
    func checkFailures(_ lines: [HookLine], failed: [String: [String: String]]) {
        for (sha, hosts) in failed {
            let pushed = pushes.first { $0.sha == sha }?.time ?? 0
            for (host, reason) in hosts.sorted(by: { $0.key < $1.key }) {
                let ran = lines.contains { $0.kind == "start" && $0.host == host && $0.sha == sha }
                let killed = kills.contains { $0.host == host && $0.time >= pushed }
                guard !ran && !killed else { continue }
                violation(
                    "false failure: rollouts/\(sha.prefix(8)) records \(host) failed (\(reason)), but \(host) never began activating it and was not killed"
                )
            }
        }
    }

    func report(_ plan: ChaosPlan, _ lines: [HookLine]) -> String {
        let hook = lines.map { "  \($0.kind) \($0.host) \($0.sha.prefix(8)) \(at($0.time))" }
        return """
            fleet chaos: \(violations.count) violation(s) with seed \(plan.seed); reproduce with FLEET_CHAOS_SEEDS=\(plan.seed) swift test --filter FleetChaos
            \(violations.map { "- " + $0 }.joined(separator: "\n"))
            plan:
            \(plan)
            what happened:
            \(events.map { "  " + $0 }.joined(separator: "\n"))
            hook log:
            \(hook.joined(separator: "\n"))
            """
    }
}

/// etcdctl against the cluster's members (not through any host's stalling relay).
struct ChaosEtcd {
    let endpoints: String
    let prefix = "/release-agent/shop/"

    struct KV {
        let key: String
        let value: [String: Any]
        let create: Int
        let mod: Int
    }

    func get(_ key: String, prefix: Bool = false, revision: Int? = nil) -> [KV] {
        guard let binary = TestTools.path("etcdctl") else { return [] }
        var arguments = [binary, "--endpoints", endpoints, "get", key, "-w", "json"]
        if prefix { arguments.append("--prefix") }
        if let revision { arguments += ["--rev", String(revision)] }
        let environment = ProcessInfo.processInfo.environment.merging(["ETCDCTL_API": "3"]) { $1 }
        guard let result = try? ShellCommand.run(arguments, environment: environment, timeout: 20),
            result.status == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            let kvs = object["kvs"] as? [[String: Any]]
        else { return [] }
        return kvs.compactMap { kv in
            guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }),
                let data = (kv["value"] as? String).flatMap({ Data(base64Encoded: $0) })
            else { return nil }
            let value = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return KV(
                key: String(decoding: key, as: UTF8.self), value: value, create: kv["create_revision"] as? Int ?? 0,
                mod: kv["mod_revision"] as? Int ?? 0)
        }
    }

    /// Each rollout's `failed` hosts with their reasons.
    func failures() -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        for kv in get(prefix + "rollouts/", prefix: true) {
            guard let failed = kv.value["failed"] as? [String: String], !failed.isEmpty else { continue }
            result[String(kv.key.dropFirst((prefix + "rollouts/").count))] = failed
        }
        return result
    }

    /// Halted rollouts not yet in `known`, each with the time its halt was written: a binary
    /// search over the key's revisions (etcd keeps them; nothing here compacts, and `halted`
    /// is only ever set, as the chaos never runs `fleet unhalt`).
    func newHalts(known: [String: Double]) -> [String: Double] {
        var found: [String: Double] = [:]
        for kv in get(prefix + "rollouts/", prefix: true) where kv.value["halted"] is String {
            let sha = String(kv.key.dropFirst((prefix + "rollouts/").count))
            guard known[sha] == nil else { continue }
            var low = kv.create
            var high = kv.mod
            for _ in 0..<64 where low < high {
                let middle = (low + high) / 2
                if get(kv.key, revision: middle).first?.value["halted"] is String {
                    high = middle
                } else {
                    low = middle + 1
                }
            }
            let first = get(kv.key, revision: low).first?.value ?? kv.value
            found[sha] = first["time"] as? Double ?? Date().timeIntervalSince1970
        }
        return found
    }
}

/// The checker must see what it is there for: a test of it on a made-up hook log.
@Suite("fleet chaos: the invariant checker")
struct FleetChaosCheckerTests {
    @Test("it finds two activations in one slot, a sha activated during its pause and a halted sha newly activated")
    func findsViolations() throws {
        let scratch = Scratch()
        let log = scratch.sub("activations.log")
        let t = Date().timeIntervalSince1970 - 100
        let lines = [
            "start h1 aaa \(t + 1)", "end h1 aaa \(t + 3)", "start h2 aaa \(t + 2)", "fail h2 aaa \(t + 2.5)",
            // The operator's own rollback is not rationed: left out of the slot count.
            "op-start h4 aaa \(t + 1.5)", "op-end h4 aaa \(t + 2.8)",
            // bbb is pushed during the pause t+5..t+20 and activated before the resume.
            "start h3 bbb \(t + 10)", "end h3 bbb \(t + 11)",
            // ccc is halted at t+20: h4 ran it before (a revert back to it is allowed), h5 did not.
            "start h4 ccc \(t + 19)", "end h4 ccc \(t + 19.5)", "start h4 ccc \(t + 31)", "end h4 ccc \(t + 32)",
            "start h5 ccc \(t + 30)",
        ]
        try lines.map { $0 + "\n" }.joined().write(toFile: log, atomically: true, encoding: .utf8)
        let parsed = hookLines(log)
        #expect(parsed.count == lines.count)

        let strict = ChaosRecord()
        strict.checkOverlap(parsed, maxParallel: 1, hookTimeout: 13)
        #expect(
            strict.violations.count == 1 && strict.violations[0].contains("h1") && strict.violations[0].contains("h2"))
        let two = ChaosRecord()
        two.checkOverlap(parsed, maxParallel: 2, hookTimeout: 13)
        #expect(two.violations.isEmpty, "\(two.violations)")

        let record = ChaosRecord()
        record.pushes = [("aaa", true, t), ("bbb", true, t + 6), ("ccc", false, t + 4)]
        record.pauses = [(t + 5, t + 20)]
        record.halts = ["ccc": t + 20]
        record.checkPauseAndHalt(parsed, grace: 3)
        #expect(record.violations.count == 2, "\(record.violations)")
        #expect(record.violations.contains { $0.hasPrefix("pause: h3 activated bbb") })
        #expect(record.violations.contains { $0.hasPrefix("halt: h5 activated ccc") })

        // Failures: h2's hook failed aaa (true); h3 never began ccc and was not killed (false);
        // h1 was killed after ccc's push (its agent counts that activation failed).
        let results = ChaosRecord()
        results.pushes = record.pushes
        results.kills = [("h1", t + 5)]
        results.checkFailures(parsed, failed: ["aaa": ["h2": "hook"], "ccc": ["h3": "stopped", "h1": "stopped"]])
        #expect(
            results.violations.count == 1 && results.violations[0].contains("records h3 failed"),
            "\(results.violations)")
    }
}
