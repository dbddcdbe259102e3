import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `fleet rollback`: `target` names what every host goes back to. It holds the branch head it
/// was set against off (so the next poll does not undo it), and a newer head ends it.
extension EtcdFleetGate {
    public func pendingTarget(head: String) -> FleetTargetDecision {
        let kv: EtcdKeyValue
        do {
            guard let found = try etcd.get(keys.target) else { return .none }
            kv = found
        } catch {
            // etcd out of reach: the deploy's own gate decides (hold or alone).
            return .none
        }
        guard var target = try? etcd.decode(FleetTarget.self, kv) else {
            let reason = "\(keys.target) holds a value this agent cannot read; fix or delete it with etcdctl"
            // Named in the log when this host begins to hold for it (each poll would repeat it).
            if FleetLocalState.read(layout)?.detail != reason { output.line("fleet    held: \(reason)") }
            FleetLocalState(.held, sha: nil, detail: reason).write(layout)
            return .hold(reason)
        }
        if target.head == nil {
            // `fleet rollback` does not read the remote: the first host to see the target
            // fills in the branch head it holds off (compared: only that version changes).
            target.head = head
            guard let data = try? JSONEncoder().encode(target),
                (try? etcd.txn(
                    [EtcdCompare(key: keys.target, .modRevision(kv.modRevision))],
                    success: [.put(key: keys.target, value: data, lease: nil)]))?.succeeded == true
            else { return pendingTarget(head: head, again: true) }
        }
        if target.head != head {
            // A newer commit on the branch ends the rollback (compared: only this version goes).
            _ = try? etcd.txn(
                [EtcdCompare(key: keys.target, .modRevision(kv.modRevision))], success: [.delete(key: keys.target)])
            return .none
        }
        let label = target.sha.map { String($0.prefix(12)) } ?? "each host's previous release"
        if FleetTarget.applied(layout) == target.id {
            return .hold("fleet rollback to \(label) holds \(head.prefix(12)) off until a newer commit")
        }
        if let from = target.onlyFrom, layout.currentSHA() != from {
            target.markApplied(layout)
            return .hold("fleet-auto-revert of \(from.prefix(12)): this host does not run it")
        }
        return .apply(target)
    }

    private func pendingTarget(head: String, again: Bool) -> FleetTargetDecision {
        // One more read after a lost race to fill the head in; a second loss is a hold.
        guard let kv = try? etcd.get(keys.target), let target = try? etcd.decode(FleetTarget.self, kv),
            target.head != nil
        else { return .hold("\(keys.target) is changing; the next trigger looks again") }
        return pendingTarget(head: head)
    }

    public func apply(_ target: FleetTarget, rollback: () throws -> String) throws -> String {
        let label = target.sha.map { String($0.prefix(12)) } ?? "the previous release"
        let shaKey = target.sha ?? "previous"
        do {
            try register(state: "waiting", sha: target.sha, current: layout.currentSHA())
            let (position, of) = try acquireTargetSlot(shaKey)
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
        } catch {
            release()
            throw error
        }
        defer { release() }
        do {
            let sha = try rollback()
            target.markApplied(layout)
            FleetLocalState(.idle, sha: sha, detail: "fleet rollback: \(sha.prefix(12)) is live").write(layout)
            try? register(state: "idle", sha: nil, current: sha, result: "fleet rollback ok")
            return sha
        } catch let error as AgentError where error.kind == .busy {
            // Not carried out: the lock was busy; the next poll tries again.
            throw error
        } catch {
            // Carried out, if not well: a rollback that cannot be done is not tried every poll.
            target.markApplied(layout)
            FleetLocalState(.failed, sha: target.sha, detail: "fleet rollback failed").write(layout)
            try? register(state: "failed", sha: nil, current: layout.currentSHA(), result: "fleet rollback failed")
            throw error
        }
    }

    /// A slot for a fleet rollback: the same line as for a deploy, without the rollout checks
    /// (the target is what the fleet goes to; a pause still holds it).
    private func acquireTargetSlot(_ key: String) throws -> (Int, Int) {
        let saved = newerHead
        newerHead = nil
        defer { newerHead = saved }
        return try acquireSlot(key, checking: false)
    }
}
