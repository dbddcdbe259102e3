import CoreMetrics
import Foundation
import Metrics
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
    }
}

/// Prometheus text through swift-metrics and swift-prometheus, and InfluxDB line protocol.
final class ServeMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var published: [String: Double] = [:]
    private var publishedSHA: String?

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    func webhook(status: Int) {
        Counter(
            label: "release_agent_webhook_requests_total", dimensions: [("status", String(status))], factory: factory
        )
        .increment()
    }

    /// Brings the counters up to the history's totals (they only grow: history is append-only).
    private func publish(_ snapshot: MetricsSnapshot) {
        lock.lock()
        defer { lock.unlock() }
        let totals: [(String, [(String, String)], Double)] = [
            ("release_agent_deploys_total", [("result", "ok")], Double(snapshot.deploysOK)),
            ("release_agent_deploys_total", [("result", "failed")], Double(snapshot.deploysFailed)),
            ("release_agent_rollbacks_total", [("result", "ok")], Double(snapshot.rollbacksOK)),
            ("release_agent_rollbacks_total", [("result", "failed")], Double(snapshot.rollbacksFailed)),
            ("release_agent_deploy_seconds_total", [], snapshot.deploySeconds),
        ]
        for (label, dimensions, total) in totals {
            let key = label + dimensions.map { "\($0.0)=\($0.1)" }.joined()
            let delta = total - (published[key] ?? 0)
            let counter = FloatingPointCounter(label: label, dimensions: dimensions, factory: factory)
            if delta > 0 || published[key] == nil { counter.increment(by: max(delta, 0)) }
            published[key] = total
        }
        Gauge(label: "release_agent_last_deploy_seconds", factory: factory).record(snapshot.lastDeploySeconds ?? 0)
        Gauge(label: "release_agent_deploying", factory: factory).record(snapshot.deploying ? 1 : 0)
        Gauge(
            label: "release_agent_build_info", dimensions: [("version", ReleaseAgentVersion.string)], factory: factory
        )
        .record(1)
        Gauge(label: "release_agent_paused", factory: factory).record(snapshot.paused ? 1 : 0)
        if let outOfSync = snapshot.outOfSync {
            Gauge(label: "release_agent_out_of_sync", factory: factory).record(outOfSync ? 1 : 0)
        }
        if let behind = snapshot.behind {
            Gauge(label: "release_agent_commits_behind", factory: factory).record(behind)
        }
        if publishedSHA != snapshot.current {
            if let old = publishedSHA {
                Gauge(label: "release_agent_current_release_info", dimensions: [("sha", old)], factory: factory).record(
                    0)
            }
            publishedSHA = snapshot.current
        }
        if let sha = snapshot.current {
            Gauge(label: "release_agent_current_release_info", dimensions: [("sha", sha)], factory: factory).record(1)
        }
    }

    func prometheus(_ snapshot: MetricsSnapshot) -> String {
        publish(snapshot)
        return registry.emitToString()
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
