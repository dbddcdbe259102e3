import Foundation
import ReleaseAgentTestSupport

/// A chaos run's reading of the hosts, its checks after each step, and its end: everything
/// resumed, the hosts settle, and a new good commit reaches every host.
extension ChaosRun {
    // MARK: state

    func phase(_ index: Int) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: hosts[index].agent.root + "/.release-agent/fleet.json")
        else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    func isWaiting(_ index: Int) -> Bool { (phase(index)?["phase"] as? String)?.hasPrefix("waiting") == true }

    func phaseText(_ index: Int) -> String {
        guard let phase = phase(index) else { return "no fleet.json" }
        let sha = (phase["sha"] as? String).map { " " + $0.prefix(8) } ?? ""
        return "\(phase["phase"] ?? "?")\(sha): \(phase["detail"] ?? "")"
    }

    /// The last line of the host's history, parsed.
    func lastEvent(_ index: Int) -> [String: Any]? {
        let text =
            (try? String(contentsOfFile: hosts[index].agent.root + "/.release-agent/history.jsonl", encoding: .utf8))
            ?? ""
        guard let line = text.split(separator: "\n").last else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// Each host's serve stderr, the ended runs' and the running one's, the last part.
    func stderrTails() -> String {
        hosts.indices.map { index in
            let runs = ended[index] + [serves[index]?.running.stderrSoFar ?? ""]
            return "h\(index + 1):\n" + runs.joined(separator: "\n--- (restarted) ---\n").suffix(3000)
        }.joined(separator: "\n")
    }

    func keep(_ index: Int, _ result: CommandResult?) {
        if let result { ended[index].append(String(result.stderr.suffix(4000))) }
    }

    func check() {
        record.halts.merge(etcd.newHalts(known: record.halts)) { old, _ in old }
        let lines = hookLines(log)
        record.checkOverlap(lines, maxParallel: plan.maxParallel, hookTimeout: hookBound)
        record.checkPauseAndHalt(lines, grace: 3)
        record.checkFailures(lines, failed: etcd.failures())
    }

    // MARK: the end

    /// Why host `index` is where it should be with `head` the branch head, or nil: on the head,
    /// or the head held here with a reason (quarantined, failed here, a fleet rollback carried
    /// out here holds it off, the gate holds it, the last attempt failed). A hold or a failure
    /// counts when written after `since` (when everything was resumed): one from before, such
    /// as a pause's, is stale.
    func settled(_ index: Int, head: String, since: Double) -> String? {
        let agent = hosts[index].agent
        if agent.currentSHA == head { return "on the head \(head.prefix(8))" }
        let fleet = phase(index)
        let state = fleet?["phase"] as? String ?? ""
        guard !state.hasPrefix("waiting") && state != "activating" else { return nil }
        if let reason = agent.record(head)?["quarantine"] as? String { return "holds the head: quarantined: \(reason)" }
        // A `fleet rollback` under way holds the head off where it was carried out.
        if let target = etcd.get(etcd.prefix + "target").first?.value["id"] as? String,
            let applied = try? String(
                contentsOfFile: agent.root + "/.release-agent/fleet-target.json", encoding: .utf8),
            applied.trimmingCharacters(in: .whitespacesAndNewlines) == target
        {
            return "on its fleet rollback target \(agent.currentSHA?.prefix(8) ?? "nothing")"
        }
        if agent.recordState(head) == "failed" { return "the head failed here" }
        if ["held", "halted", "failed"].contains(state), fleet?["time"] as? Double ?? 0 >= since {
            return "held: \(phaseText(index))"
        }
        if let last = lastEvent(index), last["sha"] as? String == head, last["result"] as? String != "ok",
            last["time"] as? Double ?? 0 >= since
        {
            return "last attempt failed at \(last["stage"] ?? "?"): \(last["reason"] ?? "")"
        }
        return nil
    }

    /// Everything resumed; every host settles (bounded); then a new good commit reaches every
    /// host (bounded): no host waits forever.
    func finish() throws {
        record.note("final: resume everything")
        if let index = stalled {
            proxies[index].forEach { $0.resume() }
            stalled = nil
        }
        if paused { try resume() }
        for index in hosts.indices where serves[index] == nil { restart(index) }
        let head = record.pushes.last!.sha
        let since = now
        let calm = waitUntil(timeout: 90) { hosts.indices.allSatisfy { settled($0, head: head, since: since) != nil } }
        for index in hosts.indices {
            record.note(
                "  h\(index + 1): \(settled(index, head: head, since: since) ?? "NOT settled: \(phaseText(index))")")
        }
        if !calm {
            let unsettled = hosts.indices.filter { settled($0, head: head, since: since) == nil }.map {
                "h\($0 + 1) (\(phaseText($0)))"
            }
            record.violation(
                "liveness: \(unsettled.joined(separator: ", ")) neither on \(head.prefix(8)) nor holding it with a reason 90s after everything resumed"
            )
        }
        try push(failing: [])
        let last = record.pushes.last!.sha
        if !waitUntil(timeout: 150, { hosts.allSatisfy { $0.agent.currentSHA == last } }) {
            let lagging = hosts.indices.filter { hosts[$0].agent.currentSHA != last }.map {
                "h\($0 + 1) on \(hosts[$0].agent.currentSHA?.prefix(8) ?? "nothing") (\(phaseText($0)); stderr: \(serves[$0]?.running.stderrSoFar.suffix(800) ?? ""))"
            }
            record.violation(
                "liveness: a new good commit \(last.prefix(8)) did not reach \(lagging.joined(separator: "; ")) within 150s"
            )
        } else {
            record.note("a new good commit \(last.prefix(8)) reached every host")
        }
    }

    func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return condition()
    }

    func tearDown() {
        proxies.joined().forEach { $0.resume() }
        for index in serves.indices {
            if let serve = serves[index] { keep(index, try? serve.stop(timeout: 60)) }
            serves[index] = nil
        }
        hosts.forEach { DemoService.stopAll(root: $0.agent.root) }
        proxies.joined().forEach { $0.close() }
    }
}
