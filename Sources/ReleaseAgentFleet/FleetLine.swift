import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// The line for a slot: etcd's lock recipe widened to a semaphore. The first
/// `fleet-max-parallel` keys under slots/ by create revision hold a slot; the first waiter
/// (exactly K keys ahead) watches the holders, every other waiter only the three keys before its
/// own. A handover wakes the first waiter, which takes the slot (a put), and so the three behind
/// it: a constant number of requests whatever the length of the line. Each
/// wake reads at most K + 3 keys and counts the hosts without reading them.
///
/// A waiter's key lives on the registration lease. In serve that is the long presence lease,
/// so the first waiter moves its key to a lease of `fleet-lease-ttl` of its own, renewed while
/// it waits; a serve killed before it got there (its key unmoved on its presence lease where it
/// should have moved) is found by the two waiters behind it, which delete its key after
/// `fleet-lease-ttl`. Up to two dead waiters in a row cost the line `fleet-lease-ttl` each;
/// three or more in a row just ahead of a live one cost up to the quiet step each.
extension EtcdFleetGate {
    /// Waits for a slot and takes it: put again on a lease of its own of TTL `bound` (a put keeps
    /// the create revision, so the order holds). Returns the position and the number of slots.
    func acquireSlot(_ sha: String, checking: Bool = true) throws -> (Int, Int) {
        let step: () throws -> Void = {
            if checking { try self.check(sha) } else { try self.checkPaused() }
        }
        let mine = keys.slot(fleet.hostID)
        let data = Data(fleet.hostID.utf8)
        var create: Int64?
        var silent: [String: SilentAhead] = [:]
        while true {
            try step()
            guard let lease = lock.withLock({ self.lease }) else { throw FleetHold("the registration lease is gone") }
            // Read back at each wake: a key that expired while etcd was out of reach is gone.
            var current: Int64?
            if create == nil {
                create = try joinLine(mine, data: data, lease: lease)
                current = create
            } else {
                current = try etcd.get(mine)?.createRevision
            }
            guard let create, current == create else {
                create = nil  // expired while etcd was out of reach: in line again
                continue
            }
            let hosts = try etcd.range(keys.hosts, prefix: true, EtcdRangeQuery(countOnly: true)).count
            let limit = fleet.maxParallel.of(max(Int(hosts), 1))
            // The nearest K + 3 keys ahead: fewer than K is a slot, K the first waiter, K + 1
            // the second, K + 2 the third. The answer does not grow with the line.
            let ahead = try etcd.range(
                keys.slots, prefix: true,
                EtcdRangeQuery(maxCreateRevision: create - 1, newestCreatedFirst: true, limit: Int64(limit + 3)))
            // Every slot the agent writes lives on a lease and names its host: any other key
            // would never free itself, so it fails closed, naming the key, instead of a wait
            // without end.
            if let stray = ahead.kvs.first(where: { !Self.isAgentSlot($0, prefix: keys.slots) }) {
                throw unreadable(stray.key, "a slot this agent did not write (no lease, or not its host's name)")
            }
            let index = ahead.kvs.count
            if index < limit {
                guard try takeSlot(mine, create: create, data: data) else { continue }
                // A halt or pause that came with the slot still counts.
                try step()
                return (index, limit)
            }
            silent = try waitBehind(
                ahead, index: index, limit: limit, mine: mine, create: create, data: data, sha: sha, seen: silent)
        }
    }

    /// Not a slot yet: says where this host is, checks that the keys ahead that must move are
    /// alive, and waits for the keys ahead to move. Returns the keys seen silent so far.
    private func waitBehind(
        _ ahead: EtcdRange, index: Int, limit: Int, mine: String, create: Int64, data: Data, sha: String,
        seen: [String: SilentAhead]
    ) throws -> [String: SilentAhead] {
        let host = ahead.kvs[0].key.dropFirst(keys.slots.count)
        FleetLocalState(.waitingSlot, sha: sha, detail: "in line behind \(host), \(limit) slot(s)").write(layout)
        // The keys ahead that must move for the line to go: the holders for the first
        // waiter, the first waiter for the second and the third (the third so that the
        // first and second killed together do not stop the line). Each must show within
        // fleet-lease-ttl that it is alive (take its slot, move to a short lease, or be on one).
        let first = index == limit
        let firstWaiter = index - 1 - limit  // its place in `ahead`, newest first
        let silent = try checkAhead(
            first ? ahead.kvs : index <= limit + 2 ? [ahead.kvs[firstWaiter]] : [], seen: seen)
        let quiet = silent.isEmpty ? nil : fleet.leaseTTL
        if first {
            try holdFirstPlace(mine, create: create, data: data)
            try waitInLine(
                watching: ahead.kvs.map(\.key), wakeOnPut: false, sha: sha, after: ahead.revision, quiet: quiet)
            return silent
        }
        // The three keys ahead: when one of them goes or takes its slot, this waiter may be
        // second or third now, and must see whether the first waiter is alive. Three, not two:
        // with the two just ahead dead (killed while on the presence lease, which no event
        // ends), the put of the one beyond them taking its slot is what wakes this waiter
        // (the adversarial helper's F1: two keys let it sleep the whole quiet step).
        try waitInLine(
            watching: ahead.kvs.prefix(3).map(\.key), wakeOnPut: true, sha: sha, after: ahead.revision,
            quiet: quiet)
        return silent
    }

    /// In line: the key on the registration lease. A key this host-id left (a killed run of
    /// this host) keeps its place. Returns the key's create revision, its place in line.
    private func joinLine(_ mine: String, data: Data, lease: Int64) throws -> Int64? {
        try etcd.put(mine, data, lease: lease)
        let create = try etcd.get(mine)?.createRevision
        lock.withLock {
            slot = HeldSlot(createRevision: create ?? 0, lease: nil, granted: nil)
            lineLease = nil
        }
        return create
    }

    /// A free slot: the key moves to a lease of its own of TTL `bound`, if it is still the
    /// key that was in line (false: it expired meanwhile, the line is joined again).
    private func takeSlot(_ mine: String, create: Int64, data: Data) throws -> Bool {
        let slotLease = try etcd.grantLease(ttl: Int(bound.components.seconds) + 1)
        let taken = try etcd.txn(
            [EtcdCompare(key: mine, .createRevision(create))],
            success: [.put(key: mine, value: data, lease: slotLease)])
        guard taken.succeeded else {
            try? etcd.revoke(slotLease)
            return false
        }
        lock.withLock {
            slot = HeldSlot(createRevision: create, lease: slotLease, granted: .now)
            lineLease = nil  // no key left on it: it expires
        }
        return true
    }

    /// The first waiter of a serve puts its key on a lease of `fleet-lease-ttl` (kept alive by
    /// the wait's steps), so that a serve killed at the front frees the line soon. A run's
    /// registration lease is that short already.
    private func holdFirstPlace(_ mine: String, create: Int64, data: Data) throws {
        guard lock.withLock({ sharedLease && lineLease == nil }) else { return }
        let granted = try etcd.grantLease(ttl: ttlSeconds)
        let moved = try etcd.txn(
            [EtcdCompare(key: mine, .createRevision(create))], success: [.put(key: mine, value: data, lease: granted)])
        guard moved.succeeded else {
            try? etcd.revoke(granted)
            return
        }
        lock.withLock {
            lineLease = granted
            lastLineKeepAlive = .now
        }
    }

    /// Of `ahead`, the keys still where a serve first put them (version 1) on a long lease: a
    /// serve that should have moved (taken its slot, or moved to a short lease as first
    /// waiter). One unchanged for `fleet-lease-ttl` since `seen` is a dead serve's: its key is
    /// deleted, compared on its revision, so a waiter that just moved keeps its place.
    private func checkAhead(_ ahead: [EtcdKeyValue], seen: [String: SilentAhead]) throws -> [String: SilentAhead] {
        var silent: [String: SilentAhead] = [:]
        for kv in ahead where kv.version == 1 {
            guard let granted = try etcd.grantedTTL(kv.lease), granted > Int64(ttlSeconds) else { continue }
            guard let since = seen[kv.key], since.modRevision == kv.modRevision else {
                silent[kv.key] = SilentAhead(modRevision: kv.modRevision, since: .now)
                continue
            }
            guard ContinuousClock.now - since.since >= fleet.leaseTTL else {
                silent[kv.key] = since
                continue
            }
            let gone = try etcd.txn(
                [EtcdCompare(key: kv.key, .modRevision(kv.modRevision))], success: [.delete(key: kv.key)])
            if gone.succeeded {
                let host = String(kv.key.dropFirst(keys.slots.count)).terminalSafe
                output.line(
                    "fleet    \(host), ahead in line, did not move within fleet-lease-ttl (\(fleet.leaseTTL.short)): its place is given up"
                )
            }
        }
        return silent
    }

    /// One wait in line, on one watch stream: until a watched key ahead is deleted (or, behind
    /// the first waiter, put again: the one ahead took a slot or moved), the sha is halted, the
    /// fleet paused or a fleet rollback set, or a shutdown. In serve the place in line lives on
    /// the presence lease, which serve renews, so a quiet wait lasts 60 s; a run's own lease,
    /// or the first waiter's, is renewed every third of its TTL.
    func waitInLine(
        watching ahead: [String], wakeOnPut: Bool, sha: String, after revision: Int64, quiet: Duration? = nil
    ) throws {
        let step = quietStep
        let watched = Set(ahead)
        // The halt's own key, not the rollout: that changes with every result, and each change
        // would be sent to every host in line.
        _ = try etcd.watch(
            ahead.map { EtcdWatchKey($0) } + [
                EtcdWatchKey(keys.halt(sha)), EtcdWatchKey(keys.paused), EtcdWatchKey(keys.target),
            ],
            fromRevision: revision + 1, timeout: min(step, quiet ?? step), stop: { Cancellation.isStopping }
        ) { events in
            events.contains { event in
                if watched.contains(event.kv.key) { return event.kind == .delete || wakeOnPut }
                return event.kind == .put
            }
        }
    }
}

/// A key ahead in line, seen unmoved on a long lease since `since`.
struct SilentAhead {
    let modRevision: Int64
    let since: ContinuousClock.Instant
}
