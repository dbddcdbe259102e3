import Foundation

/// Fleet mode's say over activation; `ReleaseAgentFleet` implements it over etcd. A deploy
/// builds as on one host, then asks the gate before it activates.
public protocol FleetGate: AnyObject {
    /// Blocks until this host may activate `sha` (the canaries are done, a slot is held).
    /// Throws `FleetHalt` when the sha is halted fleet-wide, `FleetHold` when not now, or when
    /// `newerHead` (asked while waiting) names a newer head on the branch: that one goes next.
    func admit(sha: String, previous: String?, newerHead: (() -> String?)?) throws
    /// Just before the swap: the lease is confirmed, else `FleetHold` (then no swap).
    func confirm() throws
    /// After the activation: the result goes into the rollout, the slot is freed.
    func finish(sha: String, ok: Bool, reason: String?)
    /// Not activating after all: the slot (if any) is freed, nothing recorded.
    func release()
    /// A `fleet rollback` this host has not carried out yet; nil when there is none, when the
    /// branch moved on since (a new commit clears it), or when etcd cannot be asked.
    func pendingTarget(head: String) -> FleetTarget?
    /// Carries `target` out: `rollback` runs while this host holds a slot; then it is recorded
    /// as done here. Returns the sha now live.
    func apply(_ target: FleetTarget, rollback: () throws -> String) throws -> String
}

/// `target`: set by `fleet rollback [SHA]`; every host activates SHA (or its own previous
/// release), `fleet-max-parallel` at a time.
public struct FleetTarget: Codable, Sendable, Equatable {
    public var id: String
    /// nil: each host's previous release.
    public var sha: String?
    /// The branch head when it was set: a newer head clears it.
    public var head: String?
    public var time: Double
    public var by: String
    /// fleet-auto-revert: only the hosts that run this sha roll back.
    public var onlyFrom: String?

    public init(sha: String?, head: String?, onlyFrom: String? = nil) {
        id = UUID().uuidString
        self.sha = sha
        self.head = head
        self.onlyFrom = onlyFrom
        time = Date().timeIntervalSince1970
        by = NSUserName()
    }

    /// `.release-agent/fleet-target.json`: the id of the last target this host carried out.
    static func appliedPath(_ layout: Layout) -> String { layout.state + "/fleet-target.json" }

    public static func applied(_ layout: Layout) -> String? {
        (try? String(contentsOfFile: appliedPath(layout), encoding: .utf8))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    public func markApplied(_ layout: Layout) {
        try? FileSystem.writeAtomically(Data((id + "\n").utf8), to: FleetTarget.appliedPath(layout))
    }
}

/// Not now, and not the commit's fault (etcd unreachable under `fleet-offline hold`, the lease
/// lost before the swap): nothing is recorded against the sha; the next trigger tries again.
public struct FleetHold: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// The sha's rollout is halted fleet-wide: this host never activates it (quarantined here).
public struct FleetHalt: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// Set by `release-agent-full` (which links the etcd client): makes the gate for a deploy.
public enum FleetGates {
    nonisolated(unsafe) public static var make: ((Settings, Output) throws -> FleetGate)?

    static func gate(for operation: DeployContext) throws -> FleetGate? {
        guard operation.settings.fleet != nil else { return nil }
        guard let make else {
            throw AgentError.environment("fleet mode needs release-agent-full next to release-agent; reinstall both")
        }
        return try make(operation.settings, operation.output)
    }
}

extension DeployContext {
    /// The fleet gate of this deploy, or nil on one host.
    package func fleetGate() throws -> FleetGate? { try FleetGates.gate(for: self) }
}
