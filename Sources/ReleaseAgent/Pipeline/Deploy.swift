import Foundation

/// What to deploy: the branch head, a named commit, or a ref.
public struct DeployRequest: Sendable {
    public enum Target: Sendable {
        case branchHead
        case sha(String)
        case ref(String)
    }

    public var target: Target = .branchHead
    public var force = false
    public var trigger = "cli"
    /// poll and webhooks: never deploy a quarantined sha (a failed one, or one a rollback left).
    public var respectQuarantine = false
    /// The head the fleet published (serve in fleet mode): when an earlier fetch from the
    /// remote left the branch there already, it is not fetched again (a host held or waiting
    /// asks the remote nothing when it tries again each interval).
    public var knownHead: CommitID?

    public init(target: Target = .branchHead, force: Bool = false, trigger: String = "cli") {
        self.target = target
        self.force = force
        self.trigger = trigger
        self.respectQuarantine = trigger != "cli"
    }
}

public enum DeployResult: Equatable, Sendable {
    case deployed(String)
    case alreadyCurrent(String)
    case quarantined(String, reason: String)
    /// Refused again for the reason already recorded (poll and webhooks only): nothing to say.
    case refusedAgain(String)
    /// Fleet mode: built, not activated now (a pause, a shutdown, a newer head, a fleet
    /// rollback, the operator acted on this host meanwhile); poll and webhooks say nothing.
    case held(String, reason: String)
    /// `paths`: the head changes nothing under them; the live release stays.
    case skipped(String, reason: String)
}

/// fetch -> checkout -> build -> activate -> prune, under the lock. In fleet mode the lock is
/// let go between the build and the activation: the host waits for the fleet without it (so
/// the operator's rollback, pause and status work meanwhile), then takes it again, re-checks
/// what may have changed, and activates.
public struct Deploy {
    let operation: DeployContext

    public init(operation: DeployContext) { self.operation = operation }

    /// What the first phase leaves for the activation.
    struct Built {
        var request: DeployRequest
        var target: CommitID
        var current: String?
        var info: CommitInfo?
        var signer: String?
        var nonFastForward: Bool
        var branchHead: CommitID?
        var cache: ReleaseSource
        var started: ContinuousClock.Instant

        /// What a failure of this deploy records.
        var attempt: Attempt {
            Attempt(
                .deploy, sha: target.hex, previous: current, trigger: request.trigger, subject: info?.subject,
                started: started)
        }
    }

    enum Prepared {
        case done(DeployResult)
        case built(Built)
    }

    /// `gate`: the fleet gate a caller already made (poll asks it about `fleet rollback`
    /// first); nil makes one when fleet mode is on.
    public func run(_ request: DeployRequest, gate given: FleetGate? = nil) throws -> DeployResult {
        let url = try RemoteURL.normalize(try operation.settings.requireRepo())
        guard let gate = try given ?? operation.fleetGate() else {
            return try operation.locked {
                switch try prepare(request, url: url, gate: nil) {
                case .done(let result): return result
                case .built(let built): return try activate(built, gate: nil)
                }
            }
        }
        let built: Built
        switch try operation.locked({ try prepare(request, url: url, gate: gate) }) {
        case .done(let result): return result
        case .built(let ready): built = ready
        }
        return try admitAndActivate(built, gate: gate, url: url)
    }

    /// Under the lock: fetch, the refusals, checkout and build. Nothing is live-changed here.
    private func prepare(_ request: DeployRequest, url: String, gate: FleetGate?) throws -> Prepared {
        let started = ContinuousClock.now
        _ = operation.output.takeStageSeconds()
        try operation.checkLiveSlot()
        Recovery(operation: operation).removeStaleCacheLocks()
        // A result this host owes the fleet (a crash after the swap, an etcd outage) first.
        try gate?.reconcile()
        let cache = try operation.capabilities.source(operation.settings, url: url)
        let fetched = try fetch(request, cache: cache)
        let target = fetched.target
        let current = operation.layout.currentSHA()
        if let branchHead = fetched.branchHead {
            cache.headSeen(branchHead, live: current, source: request.trigger).record(operation.layout)
        }
        // A poll or webhook that ends up doing nothing prints nothing (cron mails nothing):
        // the fetch line waits until there is something to do, or the CLI asked.
        let fetchLine = { operation.output.stage("fetch", fetched.elapsed, fetched.line) }
        if request.trigger == "cli" { fetchLine() }
        if let result = try nothingToDo(
            target, request: request, current: current, cache: cache, gate: gate,
            fetchLine: fetchLine)
        {
            return .done(result)
        }
        let info = cache.info(target)
        let signer = try verifySignature(target, cache: cache, current: current, request: request, started: started)
        var built = Built(
            request: request, target: target, current: current, info: info, signer: signer, nonFastForward: false,
            branchHead: fetched.branchHead, cache: cache, started: started)
        let printFetch = request.trigger != "cli"
        if let result = try refuseUnfit(&built, fetchLine: printFetch ? fetchLine : nil) { return .done(result) }
        if printFetch { fetchLine() }
        if built.nonFastForward, let current {
            operation.output.line(
                "deploy   note: \(target.short) does not descend from the live \(current.prefix(12)) (non-fast-forward)"
            )
        }
        do {
            try ensureBuilt(target, info: info, cache: cache, previous: current)
            if let signer { try? operation.records.update(target.hex) { $0.signer = signer } }
        } catch let error as AgentError where error.kind == .cancelled {
            throw error
        } catch {
            // Whatever the error, the record, history, on-failure and exit 1 are the same
            // (StageFailure carries the stage; anything else is unexpected); `locked` records it.
            throw UnrecordedFailure(StageFailure(error), built.attempt)
        }
        return .built(built)
    }
}
