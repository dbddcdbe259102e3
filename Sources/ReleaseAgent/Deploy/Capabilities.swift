import Foundation

/// What the running binary can do beyond the light core: open the git cache and ask the
/// remote (libgit2), make a fleet gate (etcd), ask Prometheus. The light `release-agent` links
/// none of them and hands a command that needs one to `release-agent-full`, which sets them
/// once at start, before it parses the command line. A deploy reads them from its
/// `DeployContext`, and `serve` gives its deploys a fleet gate bound to its own etcd session.
public struct Capabilities: Sendable {
    public typealias MakeGate = @Sendable (Settings, Output) throws -> FleetGate
    public typealias MakeQuerier = @Sendable (AnalysisSettings) throws -> MetricsQuerier
    public typealias FetchHead = @Sendable (Settings) throws -> Void
    /// The cache at `path` of the remote at `url`.
    public typealias OpenSource = @Sendable (_ path: String, _ url: String, GitCredentials) throws -> ReleaseSource
    /// The branch head on the remote without a fetch (ls-remote); nil: no such branch.
    public typealias RemoteHead = @Sendable (_ url: String, _ branch: String, GitCredentials) throws -> CommitID?

    public var openSource: OpenSource?
    public var remoteHead: RemoteHead?
    public var fleetGate: MakeGate?
    public var metrics: MakeQuerier?
    /// `status --fetch`: asks the remote for the head and records it.
    public var fetchHead: FetchHead?

    public init(
        openSource: OpenSource? = nil, remoteHead: RemoteHead? = nil, fleetGate: MakeGate? = nil,
        metrics: MakeQuerier? = nil, fetchHead: FetchHead? = nil
    ) {
        self.openSource = openSource
        self.remoteHead = remoteHead
        self.fleetGate = fleetGate
        self.metrics = metrics
        self.fetchHead = fetchHead
    }

    /// The process's: none in the light binary; the full binary's main sets them before any
    /// command runs, and nothing changes them after.
    nonisolated(unsafe) public static var process = Capabilities()

    /// The deploy root's git cache of the remote at `url`.
    package func source(_ settings: Settings, url: String) throws -> ReleaseSource {
        guard let openSource else { throw Self.missing("deploying") }
        return try openSource(settings.layout.cache, url, settings.credentials)
    }

    /// The branch head on the remote, asked without a fetch.
    package func askRemoteHead(url: String, branch: String, credentials: GitCredentials) throws -> CommitID? {
        guard let remoteHead else { throw Self.missing("asking the remote") }
        return try remoteHead(url, branch, credentials)
    }

    private static func missing(_ what: String) -> AgentError {
        AgentError.environment("\(what) needs release-agent-full next to release-agent; reinstall both")
    }

    /// The fleet gate of a deploy, or nil on one host.
    package func gate(_ settings: Settings, _ output: Output) throws -> FleetGate? {
        guard settings.fleet != nil else { return nil }
        guard let fleetGate else { throw Self.missing("fleet mode") }
        return try fleetGate(settings, output)
    }

    /// The Prometheus client of the canary analysis.
    package func querier(_ settings: AnalysisSettings) throws -> MetricsQuerier {
        guard let metrics else { throw Self.missing("canary analysis") }
        return try metrics(settings)
    }
}
