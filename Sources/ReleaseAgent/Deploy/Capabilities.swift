import Foundation

/// What the running binary can do beyond the light core: make a fleet gate (etcd), ask
/// Prometheus, ask the remote for the branch head (libgit2). The light `release-agent` links
/// none of them and hands a command that needs one to `release-agent-full`, which sets them
/// once at start, before it parses the command line. A deploy reads them from its
/// `DeployContext`, and `serve` gives its deploys a fleet gate bound to its own etcd session.
public struct Capabilities: Sendable {
    public typealias MakeGate = @Sendable (Settings, Output) throws -> FleetGate
    public typealias MakeQuerier = @Sendable (AnalysisSettings) throws -> MetricsQuerier
    public typealias FetchHead = @Sendable (Settings) throws -> Void

    public var fleetGate: MakeGate?
    public var metrics: MakeQuerier?
    public var fetchHead: FetchHead?

    public init(fleetGate: MakeGate? = nil, metrics: MakeQuerier? = nil, fetchHead: FetchHead? = nil) {
        self.fleetGate = fleetGate
        self.metrics = metrics
        self.fetchHead = fetchHead
    }

    /// The process's: none in the light binary; the full binary's main sets them before any
    /// command runs, and nothing changes them after.
    nonisolated(unsafe) public static var process = Capabilities()

    /// The fleet gate of a deploy, or nil on one host.
    package func gate(_ settings: Settings, _ output: Output) throws -> FleetGate? {
        guard settings.fleet != nil else { return nil }
        guard let fleetGate else {
            throw AgentError.environment("fleet mode needs release-agent-full next to release-agent; reinstall both")
        }
        return try fleetGate(settings, output)
    }

    /// The Prometheus client of the canary analysis.
    package func querier(_ settings: AnalysisSettings) throws -> MetricsQuerier {
        guard let metrics else {
            throw AgentError.environment(
                "canary analysis needs release-agent-full next to release-agent; reinstall both")
        }
        return try metrics(settings)
    }
}
