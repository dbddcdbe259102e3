import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// The fleet's rules over etcd: a host registers on its lease, claims a canary seat or waits
/// (a watch) for the canaries, waits (a watch on the key before its own) for one of the first
/// `fleet-max-parallel` slots by create revision, confirms the slot before the swap, and
/// writes its result into the rollout by compare-and-swap. No consensus of its own.
///
/// Leases are not fences: a held slot lives on a lease of its own, granted with the slot for
/// the longest an activation can take (`bound`) and never renewed, so neither a SIGTERM that
/// stops serve's keepalive nor a stalled path to etcd frees it while this host activates;
/// this host refuses to swap once the part of the bound before the swap has passed.
public final class EtcdFleetGate: FleetGate, @unchecked Sendable {
    let fleet: FleetSettings
    let etcd: EtcdClient
    let keys: FleetKeys
    let output: Output
    let layout: Layout
    let registration: FleetRegistration
    /// serve's session: the registration lease the gate uses instead of one of its own.
    let session: FleetSession?
    /// From the slot's grant to the swap: the lock, the re-check, a blue-green candidate's
    /// start and health check.
    let beforeSwap: Duration
    /// The slot lease's TTL: `beforeSwap`, the longest activation after the swap (activate,
    /// health, a swap back with activate and health, stop) and a margin for clock drift.
    let bound: Duration
    let lock = NSLock()
    var lease: Int64?
    /// The lease is serve's session's: kept alive there, never revoked here.
    var sharedLease = false
    var lastKeepAlive = ContinuousClock.now
    /// serve's first waiter for a slot: its place in line on a short lease (`FleetLine`).
    var lineLease: Int64?
    var lastLineKeepAlive = ContinuousClock.now
    var slot: HeldSlot?
    var canarySeat = false
    var uncoordinated = false
    var newerHead: (() -> String?)?
    /// `finish` registered the outcome; a release after it leaves the registration alone.
    var finished = false
    /// The branch head is the fleet's published `head` (serve, or a cron poll that shares its
    /// interval with the fleet): a wait reads it with its other checks, not from the remote.
    var followsPublishedHead = false
    /// The poll interval this host claimed (a cron poll), until it gives its answer.
    var claimedPoll: ClaimedPoll?

    struct HeldSlot {
        var createRevision: Int64
        var lease: Int64?
        var granted: ContinuousClock.Instant?
    }

    /// A gate on `session`: serve's, a simulated host's (fleet-sim), or none (a run's own lease).
    public init(settings: Settings, output: Output, session: FleetSession?) throws {
        guard let fleet = settings.fleet else { throw AgentError.usage("fleet mode needs fleet-etcd") }
        self.fleet = fleet
        self.output = output
        self.session = session
        self.layout = settings.layout
        keys = FleetKeys(prefix: fleet.prefix)
        etcd = try fleet.etcdClient(requestTimeout: min(fleet.leaseTTL / 3, .seconds(3)))
        registration = FleetRegistration(etcd: etcd, keys: keys, fleet: fleet, layout: settings.layout)
        let hook = settings.hookTimeout
        let health = settings.healthTimeout + settings.healthInterval
        beforeSwap = .seconds(10) + (settings.strategy == .blueGreen ? hook + health : .zero)
        bound = beforeSwap + hook * 3 + health * 2 + (settings.analysis?.longest ?? .zero) + .seconds(10)
    }

    deinit { release() }

    /// What `Capabilities` makes a deploy's gate with: on `session` (serve's), or nil.
    public static func maker(session: FleetSession?) -> Capabilities.MakeGate {
        { settings, output in try EtcdFleetGate(settings: settings, output: output, session: session) }
    }

    var ttlSeconds: Int { max(2, Int(fleet.leaseTTL.components.seconds)) }
    var waitStep: Duration { max(fleet.leaseTTL / 3, .milliseconds(500)) }
    /// How long a wait lasts with nothing to wake it: in serve, whose presence lease the
    /// session renews, 60 s; with a lease this wait must renew (a run's, the first waiter's
    /// place in line), `waitStep`.
    var quietStep: Duration { lock.withLock { sharedLease && lineLease == nil } ? .seconds(60) : waitStep }

    // MARK: FleetGate

    public func admit(sha: String, previous: String?, newerHead: (() -> String?)?) throws {
        self.newerHead = newerHead
        let start = ContinuousClock.now
        do {
            try register(state: "waiting", sha: sha, current: previous)
            try check(sha)
            try waitForCanaries(sha)
            let (position, of) = try acquireSlot(sha)
            try register(state: "activating", sha: sha, current: previous)
            FleetPendingResult(sha: sha, ok: nil, reason: nil, canary: canarySeat).write(layout)
            FleetLocalState(.activating, sha: sha, detail: "slot \(position + 1) of \(of)").write(layout)
            output.stage(
                "fleet", ContinuousClock.now - start,
                "\(canarySeat ? "canary, " : "")slot \(position + 1) of \(of) for \(fleet.hostID)")
        } catch let halt as FleetHalt {
            release()
            FleetLocalState(.halted, sha: sha, detail: halt.reason).write(layout)
            throw halt
        } catch let hold as FleetHold {
            release()
            FleetLocalState(.held, sha: sha, detail: hold.reason).write(layout)
            throw hold
        } catch let error as EtcdError where error.kind == .unavailable {
            release()
            guard fleet.offline == .alone else {
                FleetLocalState(.held, sha: sha, detail: "etcd is unreachable; fleet-offline hold").write(layout)
                throw FleetHold("etcd is unreachable (\(error.detail)); fleet-offline hold activates nothing")
            }
            uncoordinated = true
            // Over whatever fleet.json said (a hold of an earlier run), or status shows that.
            FleetLocalState(.activating, sha: sha, detail: "uncoordinated: etcd is unreachable; fleet-offline alone")
                .write(layout)
            output.line("fleet    etcd is unreachable; fleet-offline alone: activating uncoordinated")
        } catch let error as EtcdError where error.kind == .accessRefused {
            release()
            throw FleetFailure(error.detail)
        } catch let error as EtcdError {
            release()
            throw FleetFailure("etcd refused a call while waiting: \(error.detail)")
        } catch {
            release()
            throw error
        }
    }

    public func precheck(sha: String) throws {
        do {
            try check(sha, superseded: false)
        } catch let error as EtcdError {
            // admit decides what an unreachable or refusing etcd means.
            _ = error
        }
    }

    public func confirm(sha: String) throws {
        guard !uncoordinated else { return }
        guard let held = lock.withLock({ slot }), let granted = held.granted, let slotLease = held.lease else {
            throw FleetHold("no activation slot is held")
        }
        let elapsed = ContinuousClock.now - granted
        guard elapsed <= beforeSwap else {
            release()
            throw FleetHold(
                "the slot was taken \(elapsed.short) ago, past the \(beforeSwap.short) its lease allows before the swap; it is given up"
            )
        }
        do {
            let answer = try etcd.txn(
                [],
                success: [
                    .range(key: keys.slot(fleet.hostID), prefix: false), .range(key: keys.rollout(sha), prefix: false),
                    .range(key: keys.paused, prefix: false),
                ])
            let mine = answer.ranges.first?.kvs.first
            guard mine?.lease == slotLease, mine?.createRevision == held.createRevision else {
                throw FleetHold("this host's slot is gone from etcd (\(keys.slot(fleet.hostID)))")
            }
            if let kv = answer.ranges.dropFirst().first?.kvs.first,
                let halted = try etcd.decode(RolloutRecord.self, kv).halted
            {
                throw FleetHalt("halted fleet-wide: \(halted)")
            }
            if let kv = answer.ranges.dropFirst(2).first?.kvs.first { throw pausedHold(kv) }
        } catch let error as EtcdError {
            release()
            throw FleetHold("the slot could not be confirmed before the swap (\(error.detail)); it is given up")
        } catch {
            release()
            throw error
        }
    }

    public func finish(sha: String, ok: Bool, reason: String?) {
        lock.withLock { finished = true }
        defer { release() }
        guard !uncoordinated else {
            FleetPendingResult.clear(layout)
            let detail = ok ? "\(sha.prefix(12)) is live, activated uncoordinated (etcd was unreachable)" : reason
            FleetLocalState(ok ? .idle : .failed, sha: sha, detail: detail ?? "activated uncoordinated").write(layout)
            return
        }
        let pending = FleetPendingResult(sha: sha, ok: ok, reason: reason, canary: canarySeat)
        pending.write(layout)
        let deadline = lock.withLock { slot?.granted }.map { $0 + bound } ?? ContinuousClock.now + .seconds(30)
        guard write(pending, until: deadline) else {
            output.line(
                "fleet    the result of \(sha.prefix(12)) could not be written to etcd; the next trigger writes it")
            FleetLocalState(.held, sha: sha, detail: "result not written to etcd yet; the next trigger writes it")
                .write(layout)
            return
        }
        _ = try? register(
            state: ok ? "idle" : "failed", sha: nil, current: layout.currentSHA(), result: ok ? "ok" : reason)
    }

    public var analyzes: Bool { uncoordinated || fleet.canaryCount == 0 || canarySeat }

    public func pause(reason: String) {
        guard !uncoordinated else { return }
        let pause = FleetPause(
            reason: reason, by: "release-agent on \(fleet.hostID)", time: Date().timeIntervalSince1970)
        do {
            try etcd.put(keys.paused, try JSONEncoder().encode(pause))
            output.line("fleet    paused fleet-wide: \(reason.terminalSafe); release-agent fleet resume lets it go on")
        } catch {
            output.line(
                "fleet    could not pause the fleet (\(error)); pause it yourself: release-agent fleet pause --reason ..."
            )
        }
    }

    /// Not activating after all (a hold, a halt or the operator's act in the re-check, a
    /// refused confirm, a shutdown before the swap): the slot goes, and the result file this
    /// run wrote when it took the slot goes too, so no later run reports an activation that
    /// never began as failed. A result already decided (`finish`) stays until etcd has it.
    public func release() {
        let (held, lease, shared, line) = lock.withLock { () -> (HeldSlot?, Int64?, Bool, Int64?) in
            defer {
                slot = nil
                self.lease = nil
                sharedLease = false
                lineLease = nil
            }
            return (slot, self.lease, sharedLease, lineLease)
        }
        if let held {
            // A result this run announced when it took the slot (`ok` still unknown) whose
            // activation never reached the swap (no activation marker for it) is no result:
            // the slot is given back before the swap (the re-check after an operator's
            // rollback or a local pause, a fleet pause, a halt or a lost slot at confirm, a
            // shutdown). Left behind, the next operation's reconcile would take it for an
            // activation a crash cut short and record this host failed, which halts a good
            // sha fleet-wide at fleet-max-failures. After the swap it stays: a recovery
            // finishes that activation and the reconcile writes its true result.
            if let pending = FleetPendingResult.read(layout), pending.pid == getpid(), pending.ok == nil,
                ActivationMarker.read(layout)?.sha != pending.sha
            {
                FleetPendingResult.clear(layout)
                // fleet.json said `activating` since the slot came: status, /healthz and
                // /metrics must not go on saying so (a caller with a more precise reason
                // writes its own state after this).
                let short = pending.sha.prefix(12)
                let detail = "the activation slot was given back before the swap; \(short) is not activated"
                FleetLocalState(.held, sha: pending.sha, detail: detail).write(layout)
            }
            // A slot that cannot be deleted now frees itself when its lease's bound passes.
            for _ in 0..<3 {
                if (try? etcd.txn(
                    [EtcdCompare(key: keys.slot(fleet.hostID), .createRevision(held.createRevision))],
                    success: [.delete(key: keys.slot(fleet.hostID))])) != nil
                {
                    break
                }
            }
            if let slotLease = held.lease { try? etcd.revoke(slotLease) }
        }
        if let line { try? etcd.revoke(line) }
        // Revoking this run's own lease deletes its registration at once; serve's stays, and
        // no longer says waiting or activating once the wait ended without an activation.
        if let lease, !shared { try? etcd.revoke(lease) }
        if let lease, shared, !lock.withLock({ finished }) {
            try? registration.put(
                registration.record(state: "idle", sha: nil, current: layout.currentSHA()), lease: lease)
        }
    }
}
