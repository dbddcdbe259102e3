import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

extension EtcdFleetGate {
    /// Before a deploy's fetch: the access check (a read-only role is refused here, not after
    /// the build), then the result a dead run of this host still owes the fleet.
    public func reconcile() throws {
        do {
            // One request that needs both read and write on the prefix: a read-only role is
            // refused here, before the fetch, not after the build.
            _ = try etcd.txn(
                [], success: [.range(key: keys.paused, prefix: false), .delete(key: keys.accessCheck(fleet.hostID))])
        } catch let error as EtcdError where error.kind == .accessRefused {
            throw AgentError(.usage, error.detail, cause: error)
        } catch {
            // Unreachable, or any other answer: admit decides what it means.
        }
        guard var pending = FleetPendingResult.read(layout) else { return }
        // Another live run of this host (a CLI deploy beside cron) still owes it itself.
        guard pending.pid == getpid() || !FleetRegistration.isAgentRunning(pending.pid) else { return }
        // Its slot key, if the dead run held one, goes now, not when the slot's bound passes.
        _ = try? etcd.delete(keys.slot(fleet.hostID))
        if pending.ok == nil {
            // The agent died during that activation; recovery (under this lock) has finished it.
            let live = layout.currentSHA() == pending.sha
            pending.ok = live
            pending.reason = live ? nil : "the agent stopped during the activation; it was rolled back"
        }
        if let reason = pending.inconclusive, pending.ok == true {
            pause(
                reason:
                    "the canary analysis of \(pending.sha.prefix(12)) on \(fleet.hostID) was inconclusive: \(reason)")
        }
        if write(pending, until: ContinuousClock.now + waitStep) {
            output.line(
                "fleet    wrote the result \(pending.ok == true ? (pending.inconclusive == nil ? "ok" : "live, analysis inconclusive") : "failed") of \(pending.sha.prefix(12)) that etcd had not received"
            )
        }
    }
}
