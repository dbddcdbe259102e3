import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// The gate's waits. Each is a loop of steps; a step is one watch that also covers `paused`,
/// `target` and the rollout, so a halt, a pause or a `fleet rollback` wakes a wait whatever it
/// waits on, and a shutdown ends it at once. Each wake re-reads the three in one request. A
/// run's own lease (a `poll` or `deploy`) bounds a step to a third of its TTL to renew it;
/// in serve (the presence lease, renewed by serve) a quiet step lasts 60 s.
extension EtcdFleetGate {
    /// One step's checks: shutdown, halted, paused, a fleet rollback under way, superseded.
    /// Returns the rollout as read (nil: absent) and its revision.
    @discardableResult
    func check(_ sha: String, superseded: Bool = true) throws -> (RolloutRecord?, Int64) {
        if Cancellation.isStopping {
            throw FleetHold("shutting down: gave up waiting to activate \(sha.prefix(12)) and the slot", quiet: true)
        }
        keepRegistration()
        // In serve (and a cron poll sharing its interval) the branch head is the fleet's
        // published `head`, read in the same request; asking the remote at each step cost
        // every waiting host a ref advertisement.
        let published = superseded && (session != nil || followsPublishedHead) && newerHead != nil
        let answer = try etcd.txn(
            [],
            success: [
                .range(key: keys.rollout(sha), prefix: false), .range(key: keys.paused, prefix: false),
                .range(key: keys.target, prefix: false),
            ] + (published ? [.range(key: keys.head, prefix: false)] : []))
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
        if published {
            try checkSuperseded(sha, publishedHead: answer.ranges.dropFirst(3).first?.kvs.first)
        } else if superseded {
            try checkSuperseded(sha)
        }
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

    /// A wait ends when the branch has moved on: the newer head is deployed instead. The head
    /// asked the cheap way (`newerHead`: a local remote's ref, else ls-remote).
    func checkSuperseded(_ sha: String) throws { try supersede(sha, by: newerHead?()) }

    /// The same in serve, with the head the fleet published (read with the step's checks).
    func checkSuperseded(_ sha: String, publishedHead kv: EtcdKeyValue?) throws {
        // A value that is not a head supersedes nothing (FleetSignals names it in the log).
        try supersede(sha, by: kv.flatMap(etcd.publishedHead)?.hex)
    }

    private func supersede(_ sha: String, by newer: String?) throws {
        guard let newer, newer != sha else { return }
        throw FleetHold(
            "\(newer.prefix(12)) is newer on the branch and supersedes \(sha.prefix(12)), which is not activated; the next trigger deploys it",
            quiet: true)
    }

    /// hosts/<id> on this run's lease (serve's session lease when serve runs).
    func register(state: String, sha: String?, current: String?, result: String? = nil, again: Bool = false) throws {
        let lease = try lock.withLock { () throws -> Int64 in
            if let lease = self.lease { return lease }
            if let shared = session?.lease {
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
            if shared { try session?.renew() }
            try register(state: state, sha: sha, current: current, result: result, again: true)
        }
    }

    /// While waiting, this run's own registration lease is renewed from the wait's steps (no
    /// timer thread); serve's session renews its own. Errors wait for the next step.
    func keepRegistration() {
        let (due, line) = lock.withLock { () -> (Int64?, Int64?) in
            let every = fleet.leaseTTL / 3
            var due: Int64?
            var line: Int64?
            if let lease, !sharedLease, ContinuousClock.now - lastKeepAlive >= every {
                lastKeepAlive = .now
                due = lease
            }
            if let lineLease, ContinuousClock.now - lastLineKeepAlive >= every {
                lastLineKeepAlive = .now
                line = lineLease
            }
            return (due, line)
        }
        for renew in [due, line].compactMap({ $0 }) {
            do {
                try etcd.keepAlive(renew)
            } catch let error as EtcdError where error.kind == .leaseNotFound {
                // Gone: the registration is put again, the place in line taken again.
                lock.withLock {
                    if lease == renew { lease = nil }
                    if lineLease == renew { lineLease = nil }
                }
            } catch {}
        }
    }

    /// A canary claims its seat and goes; the others wait until every canary reported the
    /// sha healthy and the soak has passed, at most fleet-canary-timeout.
    func waitForCanaries(_ sha: String) throws {
        let key = keys.rollout(sha)
        let host = fleet.hostID
        let count = fleet.canaryCount
        // Written by the first host to ask and when a seat is claimed: the other hosts asking
        // at once read the rollout and write nothing.
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
            var step = quietStep
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
            _ = try etcd.watch(
                [EtcdWatchKey(key), EtcdWatchKey(keys.paused), EtcdWatchKey(keys.target)], fromRevision: revision + 1,
                timeout: step, stop: { Cancellation.isStopping }
            ) { _ in true }
        }
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
            // Every host that records a result into a halted rollout puts the halt's key (at
            // most the slots' holders): the hosts in line see it even if the halter died.
            _ = try etcd.put(keys.halt(sha), Data(halted.utf8))
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
