import Foundation

/// One cron-friendly cycle: a lock-free look at the remote head, and a deploy only when
/// there is something new. Silent when there is nothing to do, so cron mails nothing.
public struct Poll {
    let operation: DeployContext

    public init(operation: DeployContext) { self.operation = operation }

    public enum Outcome: Equatable, Sendable {
        case nothingToDo
        case busy
        case deployed(String)
        case quarantined(String, reason: String)
        case paused
    }

    /// `knownHead`: the head the fleet published (serve in fleet mode), taken instead of
    /// asking the remote; a host whose release is that head already, or that refuses it,
    /// stops here without asking etcd either. `sawHead`: told the head read from the remote.
    /// `shareWithFleet` (a cron `poll` in fleet mode): one host asks the remote per poll
    /// interval, the others take the head it published.
    public func run(
        force: Bool, trigger: String = "poll", knownHead: CommitID? = nil, sawHead: ((CommitID) -> Void)? = nil,
        shareWithFleet: Bool = false
    ) throws -> Outcome {
        let check = PollCheck(operation: operation)
        if PauseState.isPaused(operation.layout) { return .paused }
        // Fast path: no lock, no fetch; for a local remote not even libgit2.
        let (url, local) = try check.remote()
        let head: CommitID
        var published = knownHead
        var fleetGate: FleetGate?
        if shareWithFleet && knownHead == nil && local == nil, let gate = try operation.fleetGate() {
            fleetGate = gate
            let shared = try fleetHead(gate, url: url, trigger: trigger)
            if shared.published { published = shared.head }
            head = shared.head
        } else {
            head = try knownHead ?? lookAtRemote(url: url, local: local, trigger: trigger)
        }
        if let knownHead, let stop = Self.stop(check.verdict(head: knownHead, force: force), knownHead) {
            return stop
        }
        HeadSeen.sawHead(head.hex, source: trigger, layout: operation.layout)
        if knownHead == nil { sawHead?(head) }
        // Fleet mode: a `fleet rollback` not carried out here yet comes before the head.
        // One gate (one etcd client) for the whole cycle, the deploy below included.
        let gate = try fleetGate ?? operation.fleetGate()
        if let gate, let outcome = try carryOutFleetTarget(gate, head: head) { return outcome }
        if let stop = Self.stop(check.verdict(head: head, force: force), head) { return stop }
        do {
            var request = DeployRequest(force: force, trigger: trigger)
            request.knownHead = published
            switch try Deploy(operation: operation).run(request, gate: gate) {
            case .deployed(let sha): return .deployed(sha)
            case .alreadyCurrent, .refusedAgain, .held, .skipped: return .nothingToDo
            case .quarantined(let sha, let reason): return .quarantined(sha, reason: reason)
            }
        } catch let error as AgentError where error.kind == .busy {
            return .busy
        }
    }

    /// What a verdict on `head` means for this poll: nil when it is new (go on).
    private static func stop(_ verdict: PollCheck.Verdict, _ head: CommitID) -> Outcome? {
        switch verdict {
        case .live, .skipped: return .nothingToDo
        case .quarantined(let reason): return .quarantined(head.hex, reason: reason)
        case .paused: return .paused
        case .new: return nil
        }
    }

    /// A cron poll in fleet mode: the head of this poll interval. The host that claims the
    /// interval asks the remote and publishes it (unless etcd has it already); the others take
    /// it (`published`); with etcd out of reach or the claimer slow, a host asks itself.
    private func fleetHead(_ gate: FleetGate, url: String, trigger: String) throws -> (head: CommitID, published: Bool)
    {
        switch gate.sharedPoll(every: operation.settings.pollInterval) {
        case .published(let head):
            return (head, true)
        case .claimed, .ask:
            // The gate puts what this host read when the fleet's head differs (and, as the
            // interval's claimer, marks the claim checked when it does not); with etcd out of
            // reach it writes nothing.
            let head = try lookAtRemote(url: url, local: nil, trigger: trigger)
            gate.answer(head: head)
            return (head, false)
        }
    }

    /// The branch head: read from a local remote's refs, else asked of the remote (ls-remote).
    private func lookAtRemote(url: String, local: CommitID?, trigger: String) throws -> CommitID {
        if let local {
            FetchState.record(ok: true, source: trigger, layout: operation.layout)
            return local
        }
        let settings = operation.settings
        do {
            return try FetchState.recording(trigger: trigger, layout: operation.layout) {
                guard
                    let head = try operation.capabilities.askRemoteHead(
                        url: url, branch: settings.branch, credentials: settings.credentials)
                else {
                    throw AgentError.failed(
                        "branch '\(settings.branch)' does not exist on \(url); check the branch setting")
                }
                return head
            }
        } catch let error as AgentError {
            throw AgentError.failed(error.message)
        }
    }

    /// A `fleet rollback` this host has not carried out: done now, or held; nil when there is none.
    private func carryOutFleetTarget(_ gate: FleetGate, head: CommitID) throws -> Outcome? {
        switch gate.pendingTarget(head: head.hex) {
        case .none:
            return nil
        case .hold:
            // Shown by status (fleet.json); the branch head is not deployed meanwhile.
            return .nothingToDo
        case .apply(let target):
            do {
                let sha = try gate.apply(target) {
                    try Rollback(operation: operation).run(target: target.sha, trigger: "fleet rollback")
                }
                return .deployed(sha)
            } catch let error as AgentError where error.kind == .busy {
                return .busy
            }
        }
    }
}
