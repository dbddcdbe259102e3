import Foundation

/// Fleet mode's say over activation; `ReleaseAgentFleet` implements it over etcd. A deploy
/// builds as on one host under the lock, then waits for the gate without the lock (so the
/// operator's `rollback`, `pause` and `status` work during a wait), then takes the lock again,
/// re-checks, and activates.
public protocol FleetGate: AnyObject {
    /// Blocks, without the local lock, until this host may activate `sha` (the canaries are
    /// done, a slot is held). Throws `FleetHalt` when the sha is halted fleet-wide, `FleetHold`
    /// when not now (a pause, a shutdown, etcd unreachable, `newerHead` names a newer head),
    /// `FleetFailure` when etcd refused or answered what cannot be read. Every wait re-reads
    /// the rollout and `paused` at each step and ends on a shutdown.
    func admit(sha: String, previous: String?, newerHead: (() -> String?)?) throws
    /// One look (no wait, no registration) at what `admit` would hold on now: a poll of a
    /// release already built stays silent under a pause instead of printing every cycle.
    func precheck(sha: String) throws
    /// Just before the swap, under the lock: the slot is still this host's, the activation
    /// bound has not passed, the sha is not halted and the fleet not paused; else it throws
    /// (then no swap) and the slot is given up.
    func confirm(sha: String) throws
    /// After the activation: the result goes into the rollout (retried until it lands or the
    /// slot's bound passes; a result that could not be written is written by `reconcile`),
    /// the slot is freed.
    func finish(sha: String, ok: Bool, reason: String?)
    /// Not activating after all: the slot (if any) is freed, nothing recorded.
    func release()
    /// Pauses the fleet with `reason` (a canary analysis that was inconclusive), as
    /// `fleet pause` does; best effort, said on a line either way.
    func pause(reason: String)
    /// After `admit`: this host runs the canary analysis of the sha (it holds a canary seat,
    /// or the fleet has no canaries); the others rely on the canaries' analysis.
    var analyzes: Bool { get }
    /// Before the fetch: etcd takes who this host is (one read; a refused certificate, user
    /// or role is a usage error, exit 2, and nothing changes on disk), and a result this host
    /// owes the fleet (an activation cut by a crash, or a write that did not land) is written.
    func reconcile() throws
    /// A `fleet rollback` this host has to carry out, holds the branch head off, or nothing.
    func pendingTarget(head: String) -> FleetTargetDecision
    /// Carries `target` out: `rollback` runs while this host holds a slot; then it is recorded
    /// as done here (not when the lock was busy: then it is tried again). Returns the sha live.
    func apply(_ target: FleetTarget, rollback: () throws -> String) throws -> String
    /// A cron `poll`: claims this poll interval (then this host asks the remote and publishes
    /// what it read), or takes the head the host that claimed it published.
    func sharedPoll(every interval: Duration) -> SharedPollTurn
    /// The claimer's answer for its interval, the branch head it read from the remote: a put
    /// of `head` when it moved, else the claim marked checked. One write either way; the other
    /// hosts' cron polls go on when they see it.
    func answer(head: CommitID)
    /// This host's fetch found `head` where the fleet's published head was `given` (stale, or
    /// a push since): puts it, over `given` only, so the waits do not hold `head` for `given`.
    func fetched(head: CommitID, over given: CommitID)
}

/// Who asks the remote for a cron `poll` in fleet mode.
public enum SharedPollTurn: Sendable, Equatable {
    /// This host claimed the interval: it asks the remote and gives the fleet its `answer`.
    case claimed
    /// Another host claimed it and published this head for it.
    case published(CommitID)
    /// No sharing now (etcd out of reach, the claimer slow or gone, no poll-interval): ask,
    /// and give the gate the `answer` (it puts a moved head while etcd answers).
    case ask
}

/// What `fleet rollback` means for this host's next step.
public enum FleetTargetDecision: Sendable {
    /// No target: deploy the head as usual.
    case none
    /// Carry this target out first.
    case apply(FleetTarget)
    /// A target holds the branch head off (carried out here already, or unreadable): deploy
    /// nothing now; the reason goes to `status`.
    case hold(String)
}

/// An error that is its own one line (the fleet's holds, halts and failures): the CLI prints
/// `Error: <message>` and exits with `exitCode`.
public protocol OneLineFailure: Error {
    var message: String { get }
    var exitCode: Int32 { get }
}

extension FleetHold: OneLineFailure {
    public var message: String { "fleet: \(reason)" }
    public var exitCode: Int32 { 1 }
}

extension FleetHalt: OneLineFailure {
    public var message: String { "fleet: \(reason)" }
    public var exitCode: Int32 { 1 }
}

extension FleetFailure: OneLineFailure {
    public var message: String { "fleet: \(reason)" }
    public var exitCode: Int32 { 1 }
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

/// Not now, and not the commit's fault (etcd unreachable under `fleet-offline hold`, the slot
/// lost before the swap, a pause, a shutdown): nothing is recorded against the sha; the next
/// trigger tries again. `quiet`: a poll or webhook says nothing (a paused fleet must not make
/// cron mail the operator every minute).
public struct FleetHold: Error, Sendable {
    public var reason: String
    public var quiet: Bool
    public init(_ reason: String, quiet: Bool = false) {
        self.reason = reason
        self.quiet = quiet
    }
}

/// A fleet failure that is not a hold (etcd refused a call, a value or answer that cannot be
/// read, the canaries did not finish within fleet-canary-timeout): recorded through the one
/// failure path at stage `fleet` (history, `on-failure`, exit 1), nothing quarantined.
public struct FleetFailure: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// The sha's rollout is halted fleet-wide: this host never activates it (quarantined here).
public struct FleetHalt: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

extension DeployContext {
    /// The fleet gate of this deploy, or nil on one host.
    package func fleetGate() throws -> FleetGate? { try capabilities.gate(settings, output) }
}
