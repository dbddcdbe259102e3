import Foundation
import Prometheus
import ReleaseAgent

/// Deploy figures read from the deploy root at scrape time: the history covers every
/// deploy and rollback, whether the daemon, cron or an operator ran it.
struct MetricsSnapshot {
    var deploysOK = 0
    var deploysFailed = 0
    var rollbacksOK = 0
    var rollbacksFailed = 0
    var deploySeconds = 0.0
    var lastDeploySeconds: Double?
    var current: String?
    var deploying = false
    var paused = false
    var outOfSync: Bool?
    var behind: Int?
    var lastSuccessTime: Double?
    var fetch: FetchState?
    var stages: [String: StageHistogram] = [:]
    var fleet: FleetLocalState?
    var deploysInconclusive = 0
    var analysis: AnalysisState?

    init(layout: Layout, deploying: Bool) {
        self.deploying = deploying
        paused = PauseState.isPaused(layout)
        if let seen = HeadSeen.read(layout) {
            let live = layout.currentSHA()
            outOfSync = seen.sha != live
            behind = seen.live == live ? seen.behind : nil
        }
        current = layout.currentSHA()
        // Kept beside the history as events are appended: a scrape reads one small file.
        let totals = History(path: layout.history).totals()
        deploysOK = totals.deploysOK
        deploysFailed = totals.deploysFailed
        rollbacksOK = totals.rollbacksOK
        rollbacksFailed = totals.rollbacksFailed
        deploySeconds = totals.deploySeconds
        lastDeploySeconds = totals.lastDeploySeconds
        lastSuccessTime = totals.lastSuccessTime
        stages = totals.stages ?? [:]
        fetch = FetchState.read(layout)
        fleet = FleetLocalState.read(layout)
        deploysInconclusive = totals.deploysInconclusive ?? 0
        analysis = AnalysisState.read(layout)
    }
}

/// Prometheus text through swift-prometheus's registry (every metric with its HELP line),
/// and InfluxDB line protocol.
final class ServeMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private var published: [String: Double] = [:]
    private var publishedSHA: String?

    func webhook(status: Int) {
        registry.makeCounter(
            name: "release_agent_webhook_requests_total", labels: [("status", String(status))],
            help: "Requests to /webhook by HTTP status."
        )
        .increment()
    }

    private func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        registry.makeGauge(name: name, labels: labels, help: help).set(value)
    }

    /// Brings the counters up to the history's totals (they only grow: history is append-only),
    /// and sets the gauges.
    private func publish(_ snapshot: MetricsSnapshot) {
        lock.lock()
        defer { lock.unlock() }
        for (name, help, labels, total) in Self.totals(snapshot) {
            let key = name + labels.map { "\($0.0)=\($0.1)" }.joined()
            let delta = total - (published[key] ?? 0)
            let counter = registry.makeCounter(name: name, labels: labels, help: help)
            if delta > 0 { counter.increment(by: delta) }
            published[key] = max(total, published[key] ?? 0)
        }
        publishGauges(snapshot)
        let info = "The live release (1) and those live before it in this serve (0)."
        if publishedSHA != snapshot.current {
            if let old = publishedSHA { gauge("release_agent_current_release_info", info, 0, labels: [("sha", old)]) }
            publishedSHA = snapshot.current
        }
        if let sha = snapshot.current { gauge("release_agent_current_release_info", info, 1, labels: [("sha", sha)]) }
    }

    /// The counters' totals by name and labels, from the history.
    private static func totals(_ snapshot: MetricsSnapshot) -> [(String, String, [(String, String)], Double)] {
        let deploys = "Deploys by result, from the history (CLI, cron and webhook deploys alike)."
        let rollbacks = "Rollbacks by result, from the history."
        var totals: [(String, String, [(String, String)], Double)] = [
            ("release_agent_deploys_total", deploys, [("result", "ok")], Double(snapshot.deploysOK)),
            ("release_agent_deploys_total", deploys, [("result", "failed")], Double(snapshot.deploysFailed)),
            (
                "release_agent_deploys_total", deploys, [("result", "inconclusive")],
                Double(snapshot.deploysInconclusive)
            ),
            ("release_agent_rollbacks_total", rollbacks, [("result", "ok")], Double(snapshot.rollbacksOK)),
            ("release_agent_rollbacks_total", rollbacks, [("result", "failed")], Double(snapshot.rollbacksFailed)),
            (
                "release_agent_deploy_seconds_total", "Seconds spent in successful deploys, summed.", [],
                snapshot.deploySeconds
            ),
        ]
        let measured = "Canary analysis measurements by check and result (passed, failed, no data, error)."
        for (check, results) in (snapshot.analysis?.totals ?? [:]).sorted(by: { $0.key < $1.key }) {
            for result in Measurement.Result.allCases {
                totals.append(
                    (
                        "release_agent_analysis_measurements_total", measured,
                        [("check", check), ("result", result.rawValue)], Double(results[result.rawValue] ?? 0)
                    ))
            }
        }
        return totals
    }

    private func publishGauges(_ snapshot: MetricsSnapshot) {
        gauge(
            "release_agent_last_deploy_seconds", "Duration of the newest successful deploy.",
            snapshot.lastDeploySeconds ?? 0)
        gauge(
            "release_agent_last_success_timestamp_seconds",
            "When the newest successful deploy ended (Unix time; 0 before the first).", snapshot.lastSuccessTime ?? 0)
        if let fetch = snapshot.fetch {
            gauge(
                "release_agent_last_fetch_failed", "1 when the last look at the remote (fetch or ls-remote) failed.",
                fetch.ok ? 0 : 1)
            gauge(
                "release_agent_last_fetch_timestamp_seconds", "When the remote was last looked at (Unix time).",
                fetch.time)
        }
        gauge("release_agent_deploying", "1 while a deploy or rollback runs in this serve.", snapshot.deploying ? 1 : 0)
        gauge(
            "release_agent_build_info", "The running release-agent's version (always 1).", 1,
            labels: [("version", ReleaseAgentVersion.string)])
        gauge("release_agent_paused", "1 while `release-agent pause` holds poll and webhooks.", snapshot.paused ? 1 : 0)
        if let outOfSync = snapshot.outOfSync {
            gauge(
                "release_agent_out_of_sync", "1 when the live release is not the branch head last seen.",
                outOfSync ? 1 : 0)
        }
        if let behind = snapshot.behind {
            gauge(
                "release_agent_commits_behind", "Commits on the branch after the live release, at the last fetch.",
                Double(behind))
        }
        if let fleet = snapshot.fleet {
            gauge(
                "release_agent_fleet_waiting", "Fleet mode: 1 while this host waits for the canaries or a slot.",
                fleet.isWaiting ? 1 : 0)
            gauge(
                "release_agent_fleet_halted", "Fleet mode: 1 when the newest rollout this host saw is halted.",
                fleet.phase == .halted ? 1 : 0)
        }
    }

    func prometheus(_ snapshot: MetricsSnapshot) -> String {
        publish(snapshot)
        return registry.emitToString() + Self.stageHistogram(snapshot.stages)
    }

    /// Written here, not through the registry: a registry histogram counts what this process
    /// observes, and these counts come from the history that cron and CLI deploys write too.
    static func stageHistogram(_ stages: [String: StageHistogram]) -> String {
        guard !stages.isEmpty else { return "" }
        let name = "release_agent_stage_duration_seconds"
        var text = "# HELP \(name) Duration of each deploy and rollback stage, from the history.\n"
        text += "# TYPE \(name) histogram\n"
        for (stage, histogram) in stages.sorted(by: { $0.key < $1.key }) {
            let label = "stage=\"\(PrometheusText.escape(stage))\""
            var cumulative = 0
            for (index, bound) in StageHistogram.bounds.enumerated() {
                cumulative += histogram.counts.indices.contains(index) ? histogram.counts[index] : 0
                text += "\(name)_bucket{\(label),le=\"\(PrometheusText.number(bound))\"} \(cumulative)\n"
            }
            text += "\(name)_bucket{\(label),le=\"+Inf\"} \(histogram.count)\n"
            text += "\(name)_sum{\(label)} \(PrometheusText.number(histogram.sum))\n"
            text += "\(name)_count{\(label)} \(histogram.count)\n"
        }
        return text
    }

    func influx(_ snapshot: MetricsSnapshot) -> String {
        let now = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
        var lines = [
            "release_agent_deploys,result=ok count=\(snapshot.deploysOK)i \(now)",
            "release_agent_deploys,result=failed count=\(snapshot.deploysFailed)i \(now)",
            "release_agent_rollbacks,result=ok count=\(snapshot.rollbacksOK)i \(now)",
            "release_agent_rollbacks,result=failed count=\(snapshot.rollbacksFailed)i \(now)",
            "release_agent_deploy_seconds total=\(snapshot.deploySeconds),last=\(snapshot.lastDeploySeconds ?? 0) \(now)",
        ]
        let sha = snapshot.current ?? "none"
        lines.append(
            "release_agent_current,sha=\(sha) deploying=\(snapshot.deploying),paused=\(snapshot.paused) \(now)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Values in the Prometheus text format.
enum PrometheusText {
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
