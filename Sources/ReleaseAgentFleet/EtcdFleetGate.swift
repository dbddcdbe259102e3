import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// The fleet's rules over etcd: a host registers on its lease, claims a canary seat or waits
/// (a watch) for the canaries, waits (a watch on the key before its own) for one of the first
/// `fleet-max-parallel` slots by create revision, confirms its lease before the swap, and
/// writes its result into the rollout by compare-and-swap. No consensus of its own.
public final class EtcdFleetGate: FleetGate, @unchecked Sendable {
    let fleet: FleetSettings
    let etcd: EtcdClient
    let keys: FleetKeys
    let output: Output
    let layout: Layout
    private var lease: Int64?
    private var keepAlive: DispatchSourceTimer?
    private var canarySeat = false
    private var uncoordinated = false
    /// The lease is serve's session's: kept alive there, never revoked here.
    private var sharedLease = false
    private var newerHead: (() -> String?)?
    private let lock = NSLock()

    public init(settings: Settings, output: Output) throws {
        guard let fleet = settings.fleet else { throw AgentError.usage("fleet mode needs fleet-etcd") }
        self.fleet = fleet
        self.output = output
        self.layout = settings.layout
        keys = FleetKeys(prefix: fleet.prefix)
        let ttl = fleet.leaseTTL
        etcd = try EtcdClient(
            endpoints: fleet.endpoints, caFile: fleet.caFile, requestTimeout: min(ttl / 3, .seconds(3)))
    }

    deinit { release() }

    /// Makes `FleetGates.make` build this gate.
    public static func install() {
        FleetGates.make = { settings, output in try EtcdFleetGate(settings: settings, output: output) }
    }

    private var ttlSeconds: Int { max(2, Int(fleet.leaseTTL.components.seconds)) }
    private var waitStep: Duration { max(fleet.leaseTTL / 3, .milliseconds(500)) }

    // MARK: FleetGate

    public func admit(sha: String, previous: String?, newerHead: (() -> String?)?) throws {
        self.newerHead = newerHead
        let start = ContinuousClock.now
        do {
            if let kv = try etcd.get(keys.paused) {
                let pause = try? JSONDecoder().decode(FleetPause.self, from: kv.value)
                let why = pause.map { "\($0.reason) (by \($0.by))" } ?? "paused"
                FleetLocalState(.held, sha: sha, detail: "the fleet is paused: \(why)").write(layout)
                throw FleetHold("the fleet is paused: \(why); release-agent fleet resume lets it go on")
            }
            try register(state: "waiting", sha: sha, current: previous)
            startKeepAlive()
            try waitForCanaries(sha)
            try checkSuperseded(sha)
            let (position, of) = try acquireSlot(sha)
            try register(state: "activating", sha: sha, current: previous)
            FleetLocalState(.activating, sha: sha, detail: "slot \(position + 1) of \(of)").write(layout)
            output.stage(
                "fleet", ContinuousClock.now - start,
                "\(canarySeat ? "canary, " : "")slot \(position + 1) of \(of) for \(fleet.hostID)")
        } catch let halt as FleetHalt {
            release()
            FleetLocalState(.halted, sha: sha, detail: halt.reason).write(layout)
            throw halt
        } catch let error as EtcdError where error.kind == .unavailable {
            release()
            guard fleet.offline == .alone else {
                FleetLocalState(.held, sha: sha, detail: "etcd is unreachable; fleet-offline hold").write(layout)
                throw FleetHold("etcd is unreachable (\(error.detail)); fleet-offline hold activates nothing")
            }
            uncoordinated = true
            output.line("fleet    etcd is unreachable; fleet-offline alone: activating uncoordinated")
        }
    }

    public func confirm() throws {
        guard !uncoordinated else { return }
        guard let lease = lock.withLock({ self.lease }) else { throw FleetHold("no lease to confirm") }
        do {
            try etcd.keepAlive(lease)
        } catch {
            release()
            throw FleetHold("the lease could not be confirmed before the swap (\(error)); the slot is given up")
        }
    }

    public func finish(sha: String, ok: Bool, reason: String?) {
        defer { release() }
        guard !uncoordinated, lock.withLock({ lease }) != nil else { return }
        let host = fleet.hostID
        let maxFailures = fleet.maxFailures
        let seat = canarySeat
        let rollout = try? etcd.update(keys.rollout(sha), default: { RolloutRecord(sha: sha) }) { record in
            if ok {
                if !record.done.contains(host) { record.done.append(host) }
                if seat { record.canariesHealthy[host] = Date().timeIntervalSince1970 }
            } else {
                record.failed[host] = reason ?? "failed"
                if record.failed.count >= maxFailures && record.halted == nil {
                    let who = record.failed.keys.sorted().joined(separator: ", ")
                    record.halted =
                        "\(record.failed.count) host(s) failed (\(who); \(host): \(reason ?? "failed")), fleet-max-failures is \(maxFailures)"
                }
            }
            record.time = Date().timeIntervalSince1970
        }
        if let halted = rollout?.halted {
            output.line("fleet    the rollout of \(sha.prefix(12)) is halted: \(halted)")
            if fleet.autoRevert {
                // The hosts that run the halted sha go back, a slot at a time (set once).
                let target = FleetTarget(sha: nil, head: sha, onlyFrom: sha)
                if let data = try? JSONEncoder().encode(target),
                    (try? etcd.txn([.absent(keys.target)], success: [.put(key: keys.target, value: data, lease: nil)]))?
                        .succeeded == true
                {
                    output.line("fleet    fleet-auto-revert: the hosts that run \(sha.prefix(12)) roll back")
                }
            }
            FleetLocalState(.halted, sha: sha, detail: halted).write(layout)
        } else {
            let detail = ok ? "\(sha.prefix(12)) is live" : reason ?? "failed"
            FleetLocalState(ok ? .idle : .failed, sha: sha, detail: detail).write(layout)
        }
        try? register(state: ok ? "idle" : "failed", sha: nil, current: layout.currentSHA(), result: ok ? "ok" : reason)
    }

    public func release() {
        let (lease, timer) = lock.withLock { () -> (Int64?, DispatchSourceTimer?) in
            defer {
                self.lease = nil
                self.keepAlive = nil
            }
            return (self.lease, self.keepAlive)
        }
        timer?.cancel()
        let shared = lock.withLock { () -> Bool in
            defer { sharedLease = false }
            return sharedLease
        }
        if shared {
            _ = try? etcd.delete(keys.slot(fleet.hostID))
        } else if let lease {
            // Revoking the lease deletes the slot and the registration at once.
            try? etcd.revoke(lease)
        }
    }

    public func pendingTarget(head: String) -> FleetTarget? {
        guard let kv = try? etcd.get(keys.target),
            let target = try? JSONDecoder().decode(FleetTarget.self, from: kv.value)
        else { return nil }
        if FleetTarget.applied(layout) == target.id { return nil }
        if let from = target.onlyFrom, layout.currentSHA() != from {
            target.markApplied(layout)
            return nil
        }
        if let at = target.head, at != head {
            // A newer commit on the branch ends the rollback (compared: only this version goes).
            _ = try? etcd.txn(
                [EtcdCompare(key: keys.target, .modRevision(kv.modRevision))], success: [.delete(key: keys.target)])
            return nil
        }
        return target
    }

    public func apply(_ target: FleetTarget, rollback: () throws -> String) throws -> String {
        let label = target.sha.map { String($0.prefix(12)) } ?? "the previous release"
        do {
            try register(state: "waiting", sha: target.sha, current: layout.currentSHA())
            startKeepAlive()
            let (position, of) = try acquireSlot(target.sha ?? "previous")
            try register(state: "activating", sha: target.sha, current: layout.currentSHA())
            FleetLocalState(
                .activating, sha: target.sha, detail: "fleet rollback to \(label), slot \(position + 1) of \(of)"
            )
            .write(layout)
        } catch let error as EtcdError {
            release()
            throw AgentError.environment("fleet rollback to \(label) waits: \(error.detail)")
        } catch let hold as FleetHold {
            release()
            throw AgentError.environment("fleet rollback to \(label) waits: \(hold.reason)")
        }
        defer { release() }
        do {
            let sha = try rollback()
            target.markApplied(layout)
            FleetLocalState(.idle, sha: sha, detail: "fleet rollback: \(sha.prefix(12)) is live").write(layout)
            try? register(state: "idle", sha: nil, current: sha, result: "fleet rollback ok")
            return sha
        } catch {
            // Carried out, if not well: a rollback that cannot be done is not tried every poll.
            target.markApplied(layout)
            FleetLocalState(.failed, sha: target.sha, detail: "fleet rollback failed").write(layout)
            try? register(state: "failed", sha: nil, current: layout.currentSHA(), result: "fleet rollback failed")
            throw error
        }
    }

    // MARK: steps

    /// A wait ends when the branch has moved on: the newer head is deployed instead.
    private func checkSuperseded(_ sha: String) throws {
        guard let newer = newerHead?(), newer != sha else { return }
        FleetLocalState(.idle, sha: sha, detail: "superseded by \(newer.prefix(12))").write(layout)
        throw FleetHold(
            "\(newer.prefix(12)) is newer on the branch and supersedes \(sha.prefix(12)), which is not activated; the next trigger deploys it"
        )
    }

    /// hosts/<id> on this host's lease; another live agent with the id is a usage error.
    private func register(state: String, sha: String?, current: String?, result: String? = nil) throws {
        let lease = try lock.withLock { () throws -> Int64 in
            if let lease = self.lease { return lease }
            // Under serve the session's lease carries the registration (and is renewed there).
            if let shared = FleetSession.current?.lease {
                self.lease = shared
                sharedLease = true
                return shared
            }
            let granted = try etcd.grantLease(ttl: ttlSeconds)
            self.lease = granted
            return granted
        }
        var record = HostRecord(host: fleet.hostID, current: current, state: state, sha: sha)
        record.lastResult = result
        let data = try JSONEncoder().encode(record)
        let key = keys.host(fleet.hostID)
        let answer = try etcd.txn(
            [.absent(key)], success: [.put(key: key, value: data, lease: lease)],
            failure: [.range(key: key, prefix: false)])
        guard !answer.succeeded else { return }
        let holder = answer.ranges.first?.kvs.first
        guard holder?.lease == lease else {
            let shared = lock.withLock { () -> Bool in
                self.lease = nil
                defer { sharedLease = false }
                return sharedLease
            }
            if !shared { try? etcd.revoke(lease) }
            throw AgentError.usage(
                "host-id '\(fleet.hostID)' is registered by another live agent in fleet '\(fleet.name)' (\(key)); give each host its own host-id"
            )
        }
        try etcd.put(key, data, lease: lease)
    }

    private func startKeepAlive() {
        lock.withLock {
            guard keepAlive == nil, !sharedLease, let lease else { return }
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
            let every = fleet.leaseTTL / 3
            timer.schedule(deadline: .now() + every.seconds, repeating: every.seconds)
            let etcd = self.etcd
            timer.setEventHandler { _ = try? etcd.keepAlive(lease) }
            timer.resume()
            keepAlive = timer
        }
    }

    /// A canary claims its seat and goes; the others wait until every canary reported the
    /// sha healthy and the soak has passed. A halt ends every wait.
    private func waitForCanaries(_ sha: String) throws {
        let key = keys.rollout(sha)
        let host = fleet.hostID
        let count = fleet.canaryCount
        var seat = fleet.isCanary(host)
        let record = try etcd.update(key, default: { RolloutRecord(sha: sha) }) { record in
            if case .count = self.fleet.canary, count > 0, !record.canaries.contains(host),
                record.canaries.count < count, record.halted == nil
            {
                record.canaries.append(host)
            }
            if case .hosts(let ids) = self.fleet.canary { record.canaries = ids }
        }
        seat = seat || record.canaries.contains(host)
        canarySeat = seat
        if let halted = record.halted { throw FleetHalt("halted fleet-wide: \(halted)") }
        if seat || count == 0 { return }
        FleetLocalState(.waitingCanaries, sha: sha, detail: "\(count) canary host(s)").write(layout)
        while true {
            try checkSuperseded(sha)
            let (current, revision) = try etcd.read(RolloutRecord.self, key)
            guard let current else { return }
            if let halted = current.halted { throw FleetHalt("halted fleet-wide: \(halted)") }
            let healthy =
                current.canaries.count >= count
                && current.canaries.allSatisfy { current.canariesHealthy[$0] != nil }
            if healthy {
                let last = current.canariesHealthy.values.max() ?? 0
                let soaked = Date().timeIntervalSince1970 - last
                let soak = fleet.canarySoak.seconds
                if soaked >= soak { return }
                // During the soak a halt still counts: watch for it until the soak ends.
                _ = try etcd.watch(key, prefix: false, fromRevision: revision + 1, timeout: .seconds(soak - soaked)) {
                    _ in true
                }
                continue
            }
            _ = try etcd.watch(key, prefix: false, fromRevision: revision + 1, timeout: waitStep) { _ in true }
        }
    }

    /// The first `fleet-max-parallel` keys under slots/ by create revision hold a slot; a
    /// waiter watches the key just before its own (etcd's lock recipe). Returns the position.
    private func acquireSlot(_ sha: String) throws -> (Int, Int) {
        guard let lease = lock.withLock({ self.lease }) else { throw FleetHold("no lease") }
        let mine = keys.slot(fleet.hostID)
        let data = Data(fleet.hostID.utf8)
        _ = try etcd.txn([.absent(mine)], success: [.put(key: mine, value: data, lease: lease)])
        while true {
            let slots = try etcd.range(keys.slots, prefix: true)
            let ordered = slots.kvs.sorted { $0.createRevision < $1.createRevision }
            guard let index = ordered.firstIndex(where: { $0.key == mine }) else {
                throw FleetHold("this host's slot key vanished (the lease expired while waiting)")
            }
            let hosts = try etcd.range(keys.hosts, prefix: true).kvs.count
            let limit = fleet.maxParallel.of(max(hosts, 1))
            if index < limit { return (index, limit) }
            if sha != "previous" { try checkSuperseded(sha) }
            FleetLocalState(.waitingSlot, sha: sha, detail: "\(index - limit + 1) ahead, \(limit) slot(s)").write(
                layout)
            let before = ordered[index - 1].key
            _ = try etcd.watch(before, prefix: false, fromRevision: slots.revision + 1, timeout: waitStep) { events in
                events.contains { $0.kind == .delete }
            }
        }
    }
}
