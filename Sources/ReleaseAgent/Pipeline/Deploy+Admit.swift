import Foundation

/// The fleet admit stage: a built release waits, without the lock, for the fleet (canaries, a
/// slot, no halt or pause), then activates under the lock after a re-check. A hold, a halt or
/// a failure gives the slot back.
extension Deploy {
    func admitAndActivate(_ built: Built, gate: FleetGate, url: String) throws -> DeployResult {
        if let given = built.request.knownHead, let head = built.branchHead, head != given {
            gate.fetched(head: head, over: given)
        }
        do {
            try Cancellation.interruptible {
                try gate.admit(
                    sha: built.target.hex, previous: built.current, newerHead: newerHead(built.request, url: url))
            }
            // A shutdown that came as the wait ended: the slot goes back, nothing is activated.
            if Cancellation.isStopping { throw FleetHold("shutting down: gave the slot back", quiet: true) }
            return try operation.locked {
                try recheck(built, gate: gate)
                return try activate(built, gate: gate)
            }
        } catch let error as AgentError where error.kind == .busy {
            gate.release()
            throw error
        } catch let hold as FleetHold {
            gate.release()
            if hold.quiet && built.request.trigger != "cli" { return .held(built.target.hex, reason: hold.reason) }
            throw AgentError.environment(
                "fleet: \(hold.reason); \(built.target.short) is built and waits, current is unchanged")
        } catch let halt as FleetHalt {
            gate.release()
            return try operation.locked {
                try? operation.records.update(built.target.hex) { $0.quarantine = halt.reason }
                return try refuse(built, "fleet", halt.reason)
            }
        } catch let failure as FleetFailure {
            gate.release()
            return try operation.locked { try refuse(built, "fleet", failure.reason) }
        }
    }
}
