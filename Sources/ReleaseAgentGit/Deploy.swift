import Foundation
import ReleaseAgent

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
        var cache: GitCache
        var started: ContinuousClock.Instant
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
        do {
            try Cancellation.interruptible {
                try gate.admit(sha: built.target.hex, previous: built.current, newerHead: newerHead(request, url: url))
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
            if hold.quiet && request.trigger != "cli" { return .held(built.target.hex, reason: hold.reason) }
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

    /// Under the lock: fetch, the refusals, checkout and build. Nothing is live-changed here.
    private func prepare(_ request: DeployRequest, url: String, gate: FleetGate?) throws -> Prepared {
        let settings = operation.settings
        let started = ContinuousClock.now
        _ = operation.output.takeStageSeconds()
        try operation.checkLiveSlot()
        Recovery(operation: operation).removeStaleCacheLocks()
        // A result this host owes the fleet (a crash after the swap, an etcd outage) first.
        try gate?.reconcile()
        let cache = try GitCache(path: operation.layout.cache, remoteURL: url, credentials: settings.credentials)
        let fetchStart = ContinuousClock.now
        let fetched = try { () throws -> (CommitID, String) in
            let progress = operation.output.progress("fetch")
            let head: CommitID
            if case .branchHead = request.target, let known = request.knownHead,
                try cache.branchHead(settings.branch) == known
            {
                head = known
            } else {
                head = try FetchState.recording(trigger: request.trigger, layout: operation.layout) {
                    try cache.fetch(branch: settings.branch, progress: progress)
                }
            }
            switch request.target {
            case .branchHead:
                return (head, "\(settings.branch) at \(head.short)")
            case .sha(let prefix):
                guard let id = try cache.lookup(prefix: prefix), cache.isOnBranch(id, head: head) else {
                    throw AgentError.usage(
                        "commit \(prefix) is not in the history of \(settings.branch) on the remote; check --sha, or use --ref for another branch or tag"
                    )
                }
                return (id, "\(id.short) (asked for \(prefix))")
            case .ref(let ref):
                let id = try cache.fetch(ref: ref, progress: progress)
                return (id, "\(ref) at \(id.short)")
            }
        }()
        let fetchElapsed = ContinuousClock.now - fetchStart
        let target = fetched.0
        let branchHead = try cache.branchHead(settings.branch)
        let current = operation.layout.currentSHA()
        if let branchHead {
            cache.headSeen(branchHead, live: current, source: request.trigger).write(operation.layout)
        }
        // A poll or webhook that ends up doing nothing prints nothing (cron mails nothing):
        // the fetch line waits until there is something to do, or the CLI asked.
        let fetchLine = { operation.output.stage("fetch", fetchElapsed, fetched.1) }
        if request.trigger == "cli" { fetchLine() }
        // A live release whose dir is gone is not live: it is rebuilt.
        if target.hex == current && !request.force && FileSystem.isDirectory(operation.layout.release(target.hex)) {
            operation.output.line("deploy   \(target.short) is already live; nothing to do")
            return .done(.alreadyCurrent(target.hex))
        }
        if request.respectQuarantine && !request.force, let reason = operation.records.quarantine(target.hex) {
            return .done(.quarantined(target.hex, reason: reason))
        }
        if !request.force, let current, let live = CommitID(hex: current),
            FileSystem.isDirectory(operation.layout.release(current)),
            let reason = cache.skipReason(target, live: live, tree: settings.tree)
        {
            return .done(
                try skip(
                    target, live: current, reason: reason, subject: cache.info(target)?.subject, request: request,
                    fetchLine: fetchLine))
        }
        if request.trigger != "cli", let gate, let record = operation.records.read(target.hex),
            record.state.isComplete, FileSystem.isDirectory(operation.layout.release(target.hex))
        {
            // Built already and the fleet holds it (a pause, a fleet rollback): nothing to say.
            do {
                try gate.precheck(sha: target.hex)
            } catch let hold as FleetHold where hold.quiet {
                return .done(.held(target.hex, reason: hold.reason))
            } catch {
                // admit, after the build step, meets it again and handles it.
            }
        }
        let info = cache.info(target)
        let signer = try verifySignature(target, cache: cache, current: current, request: request, started: started)
        var built = Built(
            request: request, target: target, current: current, info: info, signer: signer, nonFastForward: false,
            branchHead: branchHead, cache: cache, started: started)
        let printFetch = request.trigger != "cli"
        switch checkFastForward(cache: cache, current: current, target: target, force: request.force) {
        case .fastForward: break
        case .nonFastForward: built.nonFastForward = true
        case .refused(let reason):
            return .done(try refuse(built, "fetch", reason, fetchLine: printFetch ? fetchLine : nil))
        }
        if let reason = freeSpaceShortage(for: target) {
            return .done(try refuse(built, "checkout", reason, fetchLine: printFetch ? fetchLine : nil))
        }
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
            // The one failure path: whatever the error, the record, history, on-failure and
            // exit 1 are the same (StageFailure carries the stage; anything else is unexpected).
            throw operation.recordFailure(
                StageFailure(error), kind: .deploy, sha: target.hex, previous: current, trigger: request.trigger,
                subject: info?.subject, started: started)
        }
        return .built(built)
    }

    /// Fleet mode, while a deploy of the branch head waits: the branch head now, asked the
    /// cheap way (a local remote's ref file, else ls-remote). Nil for --sha and --ref.
    private func newerHead(_ request: DeployRequest, url: String) -> (() -> String?)? {
        guard case .branchHead = request.target else { return nil }
        let settings = operation.settings
        return {
            if let local = LocalRefs.branchHead(repository: url, branch: settings.branch) { return local.hex }
            return (try? GitCache.remoteHead(url: url, branch: settings.branch, credentials: settings.credentials))??
                .hex
        }
    }

    /// With verify-signatures, refuses an untrusted commit before anything is checked out: it
    /// is quarantined (a newer signed commit lifts it) and the refusal goes through the one
    /// failure path. Returns who signed it.
    private func verifySignature(
        _ target: CommitID, cache: GitCache, current: String?, request: DeployRequest, started: ContinuousClock.Instant
    ) throws -> String? {
        let settings = operation.settings
        guard settings.verifySignatures != .off else { return nil }
        var ref: String?
        if case .ref(let name) = request.target { ref = name }
        let verdict: SignatureCheck.Verdict
        do {
            verdict = try cache.verifySignature(target, ref: ref, settings: settings, scratch: operation.layout.state)
        } catch let error as AgentError where error.isEnvironmental {
            // The machine's fault (a policy file missing for a moment, no gpgv): recorded,
            // nothing quarantined, the next trigger checks again.
            throw operation.recordFailure(
                StageFailure(stage: "verify", reason: error.message), kind: .deploy, sha: target.hex,
                previous: current, trigger: request.trigger, subject: cache.info(target)?.subject, started: started)
        }
        switch verdict {
        case .trusted(let signer):
            operation.output.line("verify   \(target.short) signed by \(signer)")
            if operation.records.read(target.hex) != nil {
                try? operation.records.update(target.hex) { $0.signer = signer }
            }
            return signer
        case .refused(let key, let why):
            let reason = "commit \(target.short) (\(key)): \(why); nothing was checked out"
            var record =
                operation.records.read(target.hex)
                ?? ReleaseRecord(sha: target.hex, state: .failed, log: operation.layout.log(target.hex))
            record.state = .failed
            record.failure = "verify: \(reason)"
            record.quarantine = key == "unsigned" ? "unsigned" : "signature refused"
            record.commit = record.commit ?? cache.info(target)
            try? operation.records.write(record)
            throw operation.recordFailure(
                StageFailure(stage: "verify", reason: reason), kind: .deploy, sha: target.hex, previous: current,
                trigger: request.trigger, subject: cache.info(target)?.subject, started: started)
        }
    }

    enum Ancestry {
        case fastForward, nonFastForward
        case refused(String)
    }

    /// Reports (or with refuse-force-push, refuses) a branch that moved non-fast-forward.
    private func checkFastForward(cache: GitCache, current: String?, target: CommitID, force: Bool) -> Ancestry {
        guard let current, let currentID = CommitID(hex: current), cache.info(currentID) != nil else {
            return .fastForward
        }
        if cache.isFastForward(from: currentID, to: target) { return .fastForward }
        if operation.settings.refuseForcePush && !force {
            return .refused(
                "\(target.short) does not descend from the live \(currentID.short) (a force push) and refuse-force-push is set; deploy with --force to accept it"
            )
        }
        return .nonFastForward
    }

    /// Why min-free-space refuses a checkout of `id`; nil when it is ready on disk or there is room.
    private func freeSpaceShortage(for id: CommitID) -> String? {
        let layout = operation.layout
        if let record = operation.records.read(id.hex), record.state.isComplete,
            FileSystem.isDirectory(layout.release(id.hex))
        {
            return nil
        }
        guard let minimum = operation.settings.minFreeSpace, let free = FileSystem.freeBytes(at: layout.releases),
            free < minimum
        else { return nil }
        return
            "only \(free / 1_048_576) MiB free under \(layout.releases), below min-free-space (\(minimum / 1_048_576) MiB); free space or run prune"
    }

    /// Leaves `releases/<sha>` complete and `ready`: reuses a ready one, else checks out and builds.
    private func ensureBuilt(_ id: CommitID, info: CommitInfo?, cache: GitCache, previous: String?) throws {
        let layout = operation.layout
        let records = operation.records
        let dir = layout.release(id.hex)
        if let record = records.read(id.hex), record.state.isComplete, FileSystem.isDirectory(dir) {
            operation.output.line("build    skipped: \(id.short) is ready on disk")
            return
        }
        try FileSystem.removeTree(dir)
        var record = ReleaseRecord(sha: id.hex, state: .building, log: layout.log(id.hex))
        record.commit = info
        record.subdir = operation.settings.tree.subdir
        record.bootID = BootID.current
        try records.write(record)
        unlink(layout.log(id.hex))
        var stage = "checkout"
        do {
            let checkout = try timed("checkout") { () throws -> (Duration, String) in
                let start = ContinuousClock.now
                guard mkdir(dir, 0o755) == 0 else {
                    throw AgentError.environment(
                        "cannot create \(dir): \(FileSystem.errnoText()); check permissions and free space")
                }
                let submodules = try cache.checkout(
                    id, subdir: operation.settings.tree.subdir,
                    submodules: SubmoduleRules(settings: operation.settings),
                    into: dir,
                    progress: operation.output.progress("checkout"))
                // Which cache each submodule came from: verify and build-cache read them by it.
                try records.update(id.hex) { $0.submodules = submodules }
                let links = SharedLinks(layout: layout)
                try links.writeRevision(id.hex, into: dir)
                try links.link(operation.settings.shared, into: dir)
                let count = submodules?.count ?? 0
                let with = count == 0 ? "" : ", with \(count) submodule\(count == 1 ? "" : "s")"
                return (ContinuousClock.now - start, "\(id.short) into releases/\(id.hex)\(with)")
            }
            func check(_ outcome: ProcessOutcome, hook: Bool = false) throws {
                let what = hook ? "the build hook" : "the build"
                guard outcome.succeeded else {
                    let timeout = hook ? operation.settings.hookTimeout : operation.settings.buildTimeout
                    throw AgentError.failed(
                        outcome == .timedOut
                            ? "\(what) timed out after \(timeout.short)" : "\(what) failed (\(outcome.text))")
                }
            }
            stage = "build"
            let build = try timed("build") { () throws -> (Duration, String) in
                let start = ContinuousClock.now
                defer { FileSystem.syncDirectory(dir) }
                try warmBuildCache(into: dir, sha: id.hex, previous: previous, cache: cache)
                if let command = operation.settings.build {
                    let env = StepRunner.environment(
                        event: "build", sha: id.hex, layout: layout, branch: operation.settings.branch,
                        previous: previous)
                    let outcome = try StepRunner(operation: operation, sha: id.hex).run(
                        stage: "build", command: command, timeout: operation.settings.buildTimeout, environment: env)
                    try check(outcome)
                }
                if let outcome = try Hooks(operation: operation).run(.build, sha: id.hex, previous: previous) {
                    try check(outcome, hook: true)
                }
                return (ContinuousClock.now - start, operation.settings.build == nil ? "no build command" : "ok")
            }
            // Everything the checkout and build wrote is on disk before the record says ready.
            FileSystem.syncFileSystem(of: dir)
            try records.move(id.hex, to: .ready) { record in
                record.readyAt = Date().timeIntervalSince1970
                record.checkoutSeconds = checkout.0.seconds
                record.buildSeconds = build.0.seconds
            }
        } catch let error as AgentError where Cancellation.isRequested {
            // Not the commit's fault: leave no trace, so the next trigger builds it again.
            try? FileSystem.removeTree(dir)
            unlink(layout.record(id.hex))
            throw AgentError.cancelled(
                "deploy of \(id.short) cancelled by shutdown (\(error.message)); current is unchanged")
        } catch let error as AgentError {
            // A half-written checkout is no use to inspect: it goes at once. A failed build
            // stays on disk until prune, with its output, for the operator to look at.
            if stage == "checkout" { try? FileSystem.removeTree(dir) }
            _ = try? records.move(id.hex, to: .failed) { record in
                record.failure = "\(stage): \(error.message)"
                record.quarantine = error.isEnvironmental ? nil : "\(stage) failed"
                record.pgid = nil
            }
            throw StageFailure(stage: stage, reason: error.message)
        }
    }

    /// Runs a stage and prints its line with the duration.
    @discardableResult
    private func timed<T>(_ stage: String, _ body: () throws -> (T, String)) throws -> (T, String) {
        let start = ContinuousClock.now
        let result = try body()
        operation.output.stage(stage, ContinuousClock.now - start, result.1)
        return result
    }
}
