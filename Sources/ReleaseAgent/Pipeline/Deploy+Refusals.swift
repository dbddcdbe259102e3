import Foundation

/// The refusals stage, before anything is checked out: nothing to do (live, quarantined,
/// skipped by `paths`, held by the fleet), an untrusted signature, a force push under
/// refuse-force-push, too little free space.
extension Deploy {
    /// Nothing to build: the target is live already, quarantined (poll and webhooks), changes
    /// nothing under `paths`, or built already and held by the fleet.
    func nothingToDo(
        _ target: CommitID, request: DeployRequest, current: String?, cache: ReleaseSource, gate: FleetGate?,
        fetchLine: () -> Void
    ) throws -> DeployResult? {
        let layout = operation.layout
        // A live release whose dir is gone is not live: it is rebuilt.
        if target.hex == current && !request.force && FileSystem.isDirectory(layout.release(target.hex)) {
            operation.output.line("deploy   \(target.short) is already live; nothing to do")
            return .alreadyCurrent(target.hex)
        }
        if request.respectQuarantine && !request.force, let reason = operation.records.quarantine(target.hex) {
            return .quarantined(target.hex, reason: reason)
        }
        if !request.force, let current, let live = CommitID(hex: current),
            FileSystem.isDirectory(layout.release(current)),
            let reason = cache.skipReason(target, live: live, tree: operation.settings.tree)
        {
            return try skip(
                target, live: current, reason: reason, subject: cache.info(target)?.subject, request: request,
                fetchLine: fetchLine)
        }
        if request.trigger != "cli", let gate, let record = operation.records.read(target.hex),
            record.state.isComplete, FileSystem.isDirectory(layout.release(target.hex))
        {
            // Built already and the fleet holds it (a pause, a fleet rollback): nothing to say.
            do {
                try gate.precheck(sha: target.hex)
            } catch let hold as FleetHold where hold.quiet {
                return .held(target.hex, reason: hold.reason)
            } catch {
                // admit, after the build step, meets it again and handles it.
            }
        }
        return nil
    }

    /// A force push under refuse-force-push, or too little free space, refuses; a non-fast-forward
    /// head otherwise is marked on `built`.
    func refuseUnfit(_ built: inout Built, fetchLine: (() -> Void)?) throws -> DeployResult? {
        let target = built.target
        switch checkFastForward(cache: built.cache, current: built.current, target: target, force: built.request.force)
        {
        case .fastForward: break
        case .nonFastForward: built.nonFastForward = true
        case .refused(let reason): return try refuse(built, "fetch", reason, fetchLine: fetchLine)
        }
        if let reason = freeSpaceShortage(for: target) {
            return try refuse(built, "checkout", reason, fetchLine: fetchLine)
        }
        return nil
    }

    /// With verify-signatures, refuses an untrusted commit before anything is checked out: it
    /// is quarantined (a newer signed commit lifts it) and the refusal goes through the one
    /// failure path. Returns who signed it.
    func verifySignature(
        _ target: CommitID, cache: ReleaseSource, current: String?, request: DeployRequest,
        started: ContinuousClock.Instant
    ) throws -> String? {
        let settings = operation.settings
        guard settings.verifySignatures != .off else { return nil }
        var ref: String?
        if case .ref(let name) = request.target { ref = name }
        let attempt = Attempt(
            .deploy, sha: target.hex, previous: current, trigger: request.trigger, subject: cache.info(target)?.subject,
            started: started)
        let verdict: SignatureVerdict
        do {
            verdict = try cache.verifySignature(target, ref: ref, settings: settings, scratch: operation.layout.state)
        } catch let error as AgentError where error.isEnvironmental {
            // The machine's fault (a policy file missing for a moment, no gpgv): recorded,
            // nothing quarantined, the next trigger checks again.
            throw UnrecordedFailure(StageFailure(stage: "verify", reason: error.message), attempt)
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
            throw UnrecordedFailure(StageFailure(stage: "verify", reason: reason), attempt)
        }
    }

    enum Ancestry {
        case fastForward, nonFastForward
        case refused(String)
    }

    /// Reports (or with refuse-force-push, refuses) a branch that moved non-fast-forward.
    func checkFastForward(cache: ReleaseSource, current: String?, target: CommitID, force: Bool) -> Ancestry {
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
    func freeSpaceShortage(for id: CommitID) -> String? {
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
}
