import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// The gate's waits. Each is a loop of bounded steps (a watch of at most a third of the lease
/// TTL); every step re-reads the rollout, `paused` and `target` in one request, so a halt, a
/// pause or a `fleet rollback` ends a wait whatever it waits on, and a shutdown ends it too.
extension EtcdFleetGate {
    /// One step's checks: shutdown, halted, paused, a fleet rollback under way, superseded.
    /// Returns the rollout as read (nil: absent) and its revision.
    @discardableResult
    func check(_ sha: String, superseded: Bool = true) throws -> (RolloutRecord?, Int64) {
        if Cancellation.isStopping {
            throw FleetHold("shutting down: gave up waiting to activate \(sha.prefix(12)) and the slot", quiet: true)
        }
        keepRegistration()
        let answer = try etcd.txn(
            [],
            success: [
                .range(key: keys.rollout(sha), prefix: false), .range(key: keys.paused, prefix: false),
                .range(key: keys.target, prefix: false),
            ])
        let rolloutKV = answer.ranges.first?.kvs.first
        let rollout = try rolloutKV.map { try etcd.decode(RolloutRecord.self, $0) }
        if let halted = rollout?.halted { throw FleetHalt("halted fleet-wide: \(halted)") }
        if let kv = answer.ranges.dropFirst().first?.kvs.first { throw pausedHold(kv) }
        if let kv = answer.ranges.dropFirst(2).first?.kvs.first {
            let target = try etcd.decode(FleetTarget.self, kv)
            if target.onlyFrom == nil || target.onlyFrom == sha {
                throw FleetHold(
                    "a fleet rollback is under way; \(sha.prefix(12)) is not activated (a newer commit ends the rollback)",
                    quiet: true)
            }
        }
        if superseded { try checkSuperseded(sha) }
        return (rollout, rolloutKV?.modRevision ?? answer.revision)
    }

    /// A fleet rollback's steps: shutdown and pause only (the target is what the fleet goes to).
    func checkPaused() throws {
        if Cancellation.isStopping { throw FleetHold("shutting down: gave up waiting for a slot", quiet: true) }
        keepRegistration()
        if let kv = try etcd.get(keys.paused) { throw pausedHold(kv) }
    }

    func pausedHold(_ kv: EtcdKeyValue) -> FleetHold {
        let why: String
        if let pause = try? etcd.decode(FleetPause.self, kv) {
            why = "\(pause.reason.terminalSafe) (by \(pause.by.terminalSafe))"
        } else {
            why = "\(kv.key) holds a value this agent cannot read, taken as paused"
        }
        return FleetHold("the fleet is paused: \(why); release-agent fleet resume lets it go on", quiet: true)
    }

    /// A wait ends when the branch has moved on: the newer head is deployed instead.
    func checkSuperseded(_ sha: String) throws {
        guard let newer = newerHead?(), newer != sha else { return }
        throw FleetHold(
            "\(newer.prefix(12)) is newer on the branch and supersedes \(sha.prefix(12)), which is not activated; the next trigger deploys it",
            quiet: true)
    }

    /// hosts/<id> on this run's lease (serve's session lease when serve runs).
    func register(state: String, sha: String?, current: String?, result: String? = nil, again: Bool = false) throws {
        let lease = try lock.withLock { () throws -> Int64 in
            if let lease = self.lease { return lease }
            if let shared = FleetSession.current?.lease {
                self.lease = shared
                sharedLease = true
                return shared
            }
            let granted = try etcd.grantLease(ttl: ttlSeconds)
            self.lease = granted
            lastKeepAlive = .now
            return granted
        }
        do {
            try registration.put(
                registration.record(state: state, sha: sha, current: current, result: result), lease: lease)
        } catch let error as EtcdError where error.kind == .leaseNotFound && !again {
            // The lease expired (etcd was out of reach longer than its TTL): a new one, once.
            // serve's shared lease is granted again by its session, not here.
            let shared = lock.withLock { () -> Bool in
                defer { if self.lease == lease { self.lease = nil } }
                return sharedLease
            }
            if shared { try FleetSession.current?.renew() }
            try register(state: state, sha: sha, current: current, result: result, again: true)
        }
    }

    /// While waiting, this run's own registration lease is renewed from the wait's steps (no
    /// timer thread); serve's session renews its own. Errors wait for the next step.
    func keepRegistration() {
        let (due, line) = lock.withLock { () -> (Int64?, Int64?) in
            let step = fleet.leaseTTL / 3
            var due: Int64?
            var line: Int64?
            if let lease, !sharedLease, ContinuousClock.now - lastKeepAlive >= step {
                lastKeepAlive = .now
                due = lease
            }
            if let lineLease, ContinuousClock.now - lastLineKeepAlive >= step {
                lastLineKeepAlive = .now
                line = lineLease
            }
            return (due, line)
        }
        if let due {
            do {
                try etcd.keepAlive(due)
            } catch let error as EtcdError where error.kind == .leaseNotFound {
                lock.withLock { if lease == due { lease = nil } }
            } catch {}
        }
        if let line {
            do {
                try etcd.keepAlive(line)
            } catch let error as EtcdError where error.kind == .leaseNotFound {
                lock.withLock { if lineLease == line { lineLease = nil } }
            } catch {}
        }
    }

    /// The lease a place in line for a slot lives on, so a killed waiter leaves the line
    /// within fleet-lease-ttl: this run's own registration lease, or in serve (whose
    /// registration lives on the long presence lease) one granted for the wait, renewed by
    /// its steps and revoked when it ends. An idle serve holds no short lease.
    func waitLease() throws -> Int64? {
        try lock.withLock { () throws -> Int64? in
            guard sharedLease else { return lease }
            if let lineLease { return lineLease }
            let granted = try etcd.grantLease(ttl: ttlSeconds)
            lineLease = granted
            lastLineKeepAlive = .now
            return granted
        }
    }

    /// A canary claims its seat and goes; the others wait until every canary reported the
    /// sha healthy and the soak has passed, at most fleet-canary-timeout.
    func waitForCanaries(_ sha: String) throws {
        let key = keys.rollout(sha)
        let host = fleet.hostID
        let count = fleet.canaryCount
        let record = try etcd.update(key, default: { RolloutRecord(sha: sha) }) { record in
            if case .count = self.fleet.canary, count > 0, !record.canaries.contains(host),
                record.canaries.count < count, record.halted == nil
            {
                record.canaries.append(host)
            }
            if case .hosts(let ids) = self.fleet.canary { record.canaries = ids }
        }
        canarySeat = fleet.isCanary(host) || record.canaries.contains(host)
        if let halted = record.halted { throw FleetHalt("halted fleet-wide: \(halted)") }
        if canarySeat || count == 0 { return }
        FleetLocalState(.waitingCanaries, sha: sha, detail: "\(count) canary host(s)").write(layout)
        let deadline = ContinuousClock.now + fleet.canaryTimeout
        while true {
            let (read, revision) = try check(sha)
            guard let current = read else {
                throw FleetFailure("\(key) was deleted while this host waited for the canaries; nothing is activated")
            }
            let healthy =
                current.canaries.count >= count && current.canaries.allSatisfy { current.canariesHealthy[$0] != nil }
            var step = waitStep
            if healthy {
                let soaked = Date().timeIntervalSince1970 - (current.canariesHealthy.values.max() ?? 0)
                if soaked >= fleet.canarySoak.seconds { return }
                step = min(step, .milliseconds(Int64((fleet.canarySoak.seconds - soaked) * 1000) + 1))
            }
            guard ContinuousClock.now < deadline else {
                throw FleetFailure(
                    "the canaries did not report \(sha.prefix(12)) healthy within fleet-canary-timeout (\(fleet.canaryTimeout.short)); it stays built, not live, and the next trigger waits again"
                )
            }
            _ = try etcd.watch(key, prefix: false, fromRevision: revision + 1, timeout: step) { _ in true }
        }
    }

    /// The first `fleet-max-parallel` keys under slots/ by create revision hold a slot; a
    /// waiter's key lives on the registration lease (a dead waiter's key goes with it) and
    /// watches the key just before its own (etcd's lock recipe). At the front the key is put
    /// again on a lease of its own of TTL `bound` (a put keeps the create revision, so the
    /// order holds). Returns the position and the number of slots.
    func acquireSlot(_ sha: String, checking: Bool = true) throws -> (Int, Int) {
        let step: () throws -> Void = {
            if checking { try self.check(sha) } else { try self.checkPaused() }
        }
        let mine = keys.slot(fleet.hostID)
        let data = Data(fleet.hostID.utf8)
        var create: Int64?
        while true {
            try step()
            guard let lease = try waitLease() else { throw FleetHold("the registration lease is gone") }
            if create == nil {
                // A key this host-id left (a killed run of this host) keeps its place.
                try etcd.put(mine, data, lease: lease)
                create = try etcd.get(mine)?.createRevision
                lock.withLock { slot = HeldSlot(createRevision: create ?? 0, lease: nil, granted: nil) }
            }
            let slots = try etcd.range(keys.slots, prefix: true)
            let ordered = slots.kvs.sorted { $0.createRevision < $1.createRevision }
            // Every slot the agent writes lives on a lease and names its host: any other key
            // would never free itself, so it fails closed, naming the key, instead of a wait
            // without end.
            if let stray = ordered.first(where: { !Self.isAgentSlot($0, prefix: keys.slots) }) {
                throw unreadable(stray.key, "a slot this agent did not write (no lease, or not its host's name)")
            }
            guard let index = ordered.firstIndex(where: { $0.key == mine && $0.createRevision == create }) else {
                create = nil  // expired while etcd was out of reach: in line again
                continue
            }
            let hosts = try etcd.range(keys.hosts, prefix: true).kvs.count
            let limit = fleet.maxParallel.of(max(hosts, 1))
            if index < limit, let create {
                let slotLease = try etcd.grantLease(ttl: Int(bound.components.seconds) + 1)
                let taken = try etcd.txn(
                    [EtcdCompare(key: mine, .createRevision(create))],
                    success: [.put(key: mine, value: data, lease: slotLease)])
                guard taken.succeeded else {
                    try? etcd.revoke(slotLease)
                    continue
                }
                lock.withLock { slot = HeldSlot(createRevision: create, lease: slotLease, granted: .now) }
                // A halt or pause that came with the slot still counts.
                try step()
                return (index, limit)
            }
            FleetLocalState(.waitingSlot, sha: sha, detail: "\(index - limit + 1) ahead, \(limit) slot(s)").write(
                layout)
            let before = ordered[index - 1].key
            _ = try etcd.watch(before, prefix: false, fromRevision: slots.revision + 1, timeout: waitStep) { events in
                events.contains { $0.kind == .delete }
            }
        }
    }

    /// A slot key as the agent writes it: `slots/<host-id>`, the host id as its value, on a lease.
    static func isAgentSlot(_ kv: EtcdKeyValue, prefix: String) -> Bool {
        kv.lease != 0 && kv.key.hasPrefix(prefix) && kv.text == String(kv.key.dropFirst(prefix.count))
    }

    /// The result into the rollout (and a halt at fleet-max-failures), retried until it lands
    /// or `deadline` passes; the pending file goes once it landed.
    func write(_ pending: FleetPendingResult, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            do {
                try record(pending)
                FleetPendingResult.clear(layout)
                return true
            } catch {
                guard ContinuousClock.now + .seconds(1) < deadline else { return false }
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }

    private func record(_ pending: FleetPendingResult) throws {
        let host = fleet.hostID
        let maxFailures = fleet.maxFailures
        let sha = pending.sha
        let ok = pending.ok ?? false
        let reason = pending.reason ?? "failed"
        let rollout = try etcd.update(keys.rollout(sha), default: { RolloutRecord(sha: sha) }) { record in
            if ok {
                if !record.done.contains(host) { record.done.append(host) }
                if pending.canary { record.canariesHealthy[host] = Date().timeIntervalSince1970 }
            } else {
                record.failed[host] = reason
                if record.failed.count >= maxFailures && record.halted == nil {
                    let who = record.failed.keys.sorted().joined(separator: ", ")
                    record.halted =
                        "\(record.failed.count) host(s) failed (\(who); \(host): \(reason)), fleet-max-failures is \(maxFailures)"
                }
            }
            record.time = Date().timeIntervalSince1970
        }
        if let halted = rollout.halted {
            output.line("fleet    the rollout of \(sha.prefix(12)) is halted: \(halted.terminalSafe)")
            if fleet.autoRevert {
                // The hosts that run the halted sha go back, a slot at a time (set once).
                let target = FleetTarget(sha: nil, head: sha, onlyFrom: sha)
                let data = try JSONEncoder().encode(target)
                if try etcd.txn([.absent(keys.target)], success: [.put(key: keys.target, value: data, lease: nil)])
                    .succeeded
                {
                    output.line("fleet    fleet-auto-revert: the hosts that run \(sha.prefix(12)) roll back")
                }
            }
            FleetLocalState(.halted, sha: sha, detail: halted).write(layout)
        } else {
            let detail = ok ? "\(sha.prefix(12)) is live" : reason
            FleetLocalState(ok ? .idle : .failed, sha: sha, detail: detail).write(layout)
        }
    }
}
