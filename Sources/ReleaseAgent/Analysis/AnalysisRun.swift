import Foundation

/// What an analysis came to, kept in the history event of the deploy.
public struct AnalysisRecord: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case passed, failed, inconclusive
    }

    public var outcome: Outcome
    public var reason: String
    public var measurements: [Measurement]
}

/// `.release-agent/analysis.json`: the analysis running or last run (status, /healthz) and
/// the measurements counted by check and result since the root began (/metrics).
public struct AnalysisState: StatusFile, Sendable {
    public static let fileName = "analysis.json"
    public var sha: String
    public var started: Double
    public var running: Bool
    public var outcome: AnalysisRecord.Outcome?
    public var reason: String?
    public var measurements: [Measurement] = []
    /// The agent running it: a `running` state whose agent is gone was cut by a crash.
    public var pid: Int32?
    /// Measurements taken (`measurements` keeps the newest 1000).
    public var taken: Int?
    /// check -> result -> measurements, across analyses.
    public var totals: [String: [String: Int]] = [:]

    /// `running for abc123def456: 3 measurements, the last errors = 0.01: passed (bound <= 0.05)`.
    public var line: String {
        let taken = self.taken ?? measurements.count
        let count = "\(taken) measurement\(taken == 1 ? "" : "s")"
        guard running else {
            return "\(outcome?.rawValue ?? "ended") for \(sha.prefix(12)): \(count); \(reason ?? "")".terminalSafe
        }
        let last = measurements.last.map { ", the last \($0.text)" } ?? ""
        if let pid, kill(pid, 0) != 0 && errno == ESRCH {
            return
                "interrupted for \(sha.prefix(12)): \(count)\(last); the agent stopped, the next operation finishes it"
                .terminalSafe
        }
        return "running for \(sha.prefix(12)): \(count)\(last)".terminalSafe
    }
}

/// The analysis of a release just swapped in (SPEC "Canary analysis (Prometheus)"): after
/// `initial-delay`, a round every `interval` measures each check that still needs
/// measurements, until every check has `count` of them (passed), one check failed more than
/// `failure-limit` times (failed), or one answered no number `error-limit` times in a row
/// (inconclusive). A shutdown ends it inconclusive: the release stays live.
package struct AnalysisRun {
    let settings: AnalysisSettings
    let querier: MetricsQuerier
    let layout: Layout
    let output: Output
    let sha: String
    let host: String
    let port: Int?

    package init(operation: DeployContext, settings: AnalysisSettings, sha: String, port: Int?) throws {
        self.settings = settings
        self.querier = try operation.capabilities.querier(settings)
        self.layout = operation.layout
        self.output = operation.output
        self.sha = sha
        self.host = operation.settings.fleet?.hostID ?? ProcessInfo.processInfo.hostName
        self.port = port
    }

    package func run() -> AnalysisRecord {
        let start = ContinuousClock.now
        var state = AnalysisState(
            sha: sha, started: Date().timeIntervalSince1970, running: true, pid: getpid(),
            totals: AnalysisState.read(layout)?.totals ?? [:])
        state.write(layout)
        output.line(
            "analysis \(settings.checks.count) check\(settings.checks.count == 1 ? "" : "s") of \(sha.prefix(12)) against \(settings.prometheus): the first in \(settings.initialDelay.short), then every \(settings.interval.short), \(settings.count) each"
        )
        func end(_ outcome: AnalysisRecord.Outcome, _ reason: String) -> AnalysisRecord {
            state.running = false
            state.outcome = outcome
            state.reason = reason
            state.write(layout)
            output.stage("analysis", ContinuousClock.now - start, "\(outcome.rawValue.uppercased()): \(reason)")
            return AnalysisRecord(outcome: outcome, reason: reason, measurements: state.measurements)
        }
        let cut = "cut by shutdown; the release stays live unjudged"
        guard pause(settings.initialDelay) else { return end(.inconclusive, cut) }
        var tally = AnalysisTally(settings: settings)
        while true {
            let round = ContinuousClock.now
            for check in settings.checks where tally.needs(check) {
                let measurement = check.judge(querier.query(check.filled(sha: sha, host: host, port: port)))
                // A shutdown cut the query: not the release's measurement.
                if Cancellation.isStopping { return end(.inconclusive, cut) }
                // The newest 1000 are kept (the deciding ones are the last); all are counted.
                state.measurements.append(measurement)
                if state.measurements.count > 1000 { state.measurements.removeFirst() }
                state.taken = (state.taken ?? 0) + 1
                state.totals[check.name, default: [:]][measurement.result.rawValue, default: 0] += 1
                state.write(layout)
                output.line("analysis \(measurement.text)")
                if let verdict = tally.add(measurement) { return end(verdict.0, verdict.1) }
            }
            if let verdict = tally.passed { return end(verdict.0, verdict.1) }
            guard pause(settings.interval - (ContinuousClock.now - round)) else { return end(.inconclusive, cut) }
        }
    }

    /// Waits `duration`; false when a shutdown began meanwhile (looked at every 100 ms).
    private func pause(_ duration: Duration) -> Bool {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            if Cancellation.isStopping { return false }
            Thread.sleep(forTimeInterval: min(0.1, (deadline - ContinuousClock.now).seconds))
        }
        return !Cancellation.isStopping
    }
}

/// The SPEC's rules over one analysis's measurements, per check: passed and failed ones count
/// toward `count`; more than `failure-limit` failed ends it failed; `error-limit` answers in a
/// row without a number (no data, errors; not counted) end it inconclusive.
struct AnalysisTally {
    let settings: AnalysisSettings
    private var counted: [String: Int] = [:]
    private var failures: [String: Int] = [:]
    private var unanswered: [String: Int] = [:]

    init(settings: AnalysisSettings) { self.settings = settings }

    func needs(_ check: AnalysisCheck) -> Bool { counted[check.name, default: 0] < settings.count }

    /// Adds one measurement; the outcome and its reason when this one decides the analysis.
    mutating func add(_ measurement: Measurement) -> (AnalysisRecord.Outcome, String)? {
        let name = measurement.check
        switch measurement.result {
        case .passed, .failed:
            counted[name, default: 0] += 1
            unanswered[name] = 0
            guard measurement.result == .failed else { return nil }
            failures[name, default: 0] += 1
            guard failures[name, default: 0] > settings.failureLimit else { return nil }
            return (
                .failed,
                "\(measurement.text); \(failures[name, default: 0]) out of bounds, analysis-failure-limit is \(settings.failureLimit)"
            )
        case .noData, .error:
            unanswered[name, default: 0] += 1
            guard unanswered[name, default: 0] >= settings.errorLimit else { return nil }
            let limit = settings.errorLimit
            return (
                .inconclusive,
                "\(name): \(limit) answer\(limit == 1 ? "" : "s") in a row without a number (analysis-error-limit), the last: \(measurement.result.rawValue), \(measurement.detail)"
            )
        }
    }

    /// Passed, once every check has its `count` measurements.
    var passed: (AnalysisRecord.Outcome, String)? {
        guard !settings.checks.contains(where: needs) else { return nil }
        let total = settings.checks.count * settings.count
        let out = failures.values.reduce(0, +)
        let tolerated =
            out == 0 ? "" : ", \(out) out of bounds tolerated (analysis-failure-limit \(settings.failureLimit))"
        return (.passed, "\(total - out) of \(total) measurement\(total == 1 ? "" : "s") within bounds\(tolerated)")
    }
}
