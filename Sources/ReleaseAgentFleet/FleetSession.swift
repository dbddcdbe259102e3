import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `serve`'s etcd session: `hosts/<host-id>` lives on one lease of `fleet-presence-ttl` for as
/// long as serve runs, so
/// `fleet status` lists every running agent and a second agent with the same id is refused at
/// start (exit 2). The deploys' gates use this lease instead of one of their own.
public final class FleetSession: @unchecked Sendable {
    let fleet: FleetSettings
    let etcd: EtcdClient
    let keys: FleetKeys
    let layout: Layout
    private let lock = NSLock()
    private var leaseID: Int64?

    public var lease: Int64? { lock.withLock { leaseID } }
    /// A third of fleet-presence-ttl: at the default 3m, one request a minute, the whole cost
    /// of an idle host.
    public var renewEvery: Duration { fleet.presenceTTL / 3 }

    /// Registers this host; a usage error (exit 2) when another live agent has its id. With
    /// etcd unreachable it starts unregistered and registers at the first renewal that works.
    /// Serve's deploys get gates on it through their `Capabilities` (`EtcdFleetGate.maker`); a
    /// simulation of many hosts in one process keeps one session per host.
    public static func start(_ settings: Settings, output: Output) throws -> FleetSession? {
        guard let fleet = settings.fleet else { return nil }
        let session = FleetSession(
            fleet: fleet, etcd: try fleet.etcdClient(),
            layout: settings.layout)
        do {
            try session.register()
        } catch let error as EtcdError where error.kind == .unavailable {
            output.line("fleet    etcd is unreachable at start; registering when it answers (\(error.detail))")
        }
        return session
    }

    init(fleet: FleetSettings, etcd: EtcdClient, layout: Layout) {
        self.fleet = fleet
        self.etcd = etcd
        self.layout = layout
        keys = FleetKeys(prefix: fleet.prefix)
    }

    private func register() throws {
        let lease = try etcd.grantLease(ttl: max(3, Int(fleet.presenceTTL.components.seconds)))
        let registration = FleetRegistration(etcd: etcd, keys: keys, fleet: fleet, layout: layout)
        do {
            try registration.put(
                registration.record(state: "idle", sha: nil, current: layout.currentSHA()), lease: lease)
        } catch {
            try? etcd.revoke(lease)
            throw error
        }
        lock.withLock { leaseID = lease }
    }

    /// One keepalive; a lease that expired (etcd was away longer than the TTL) is granted
    /// and the host registered again. Errors are for the log: the next renewal tries again.
    public func renew() throws {
        guard let lease else { return try register() }
        do {
            try etcd.keepAlive(lease)
        } catch let error as EtcdError where error.kind == .leaseNotFound {
            lock.withLock { leaseID = nil }
            try register()
        }
    }

    /// At shutdown: the registration goes at once (not after the TTL).
    public func stop() {
        if let lease { try? etcd.revoke(lease) }
        lock.withLock { leaseID = nil }
    }
}
