import Foundation

/// `deploy --dry-run`: what a deploy would do, changing nothing under the root but the
/// bare cache (which it fetches into, under the lock, when the lock is free; with the lock
/// held it plans from the cache as last fetched). No recovery runs, no hook, no build.
public struct DryRunPlan: Codable, Sendable {
    public var target: String
    public var subject: String?
    public var asked: String
    public var live: String?
    public var alreadyLive: Bool
    public var commits: Int?
    public var pending: [String] = []
    public var fastForward: Bool?
    public var quarantined: String?
    public var paused: String?
    public var locked: Bool
    public var refusal: String?
    /// `paths`: why the deploy would skip the target (it changes nothing under them).
    public var skipped: String?
    /// Fleet mode: what the fleet would make of the target now (a pause, a rollback under way).
    public var fleet: String?
    public var build: String
    /// The submodules a checkout would write (top level), with their URLs.
    public var submodules: [String] = []
    public var hooks: [String] = []
    public var pruned: [String] = []
    /// Each analysis check asked once, filled in for the live release: its value or why not.
    public var analysis: [String] = []

    public var text: String {
        var lines = ["dry-run  target \(target.prefix(12)) \((subject ?? "").terminalSafe) (\(asked))"]
        lines.append(
            "dry-run  live \(live.map { String($0.prefix(12)) } ?? "none")\(alreadyLive ? ": already live, nothing to do" : "")"
        )
        if let commits { lines.append("dry-run  \(commits) commit\(commits == 1 ? "" : "s") from live to target") }
        lines += pending.map { "           \($0.terminalSafe)" }
        if let fastForward, !fastForward {
            lines.append("dry-run  not a fast-forward of live (a force push or a rollback line)")
        }
        if let quarantined {
            lines.append(
                "dry-run  quarantined: \(quarantined.terminalSafe) (poll and webhooks skip it; deploy would try it)")
        }
        if let paused {
            lines.append("dry-run  paused: \(paused.terminalSafe) (poll and webhooks deploy nothing; deploy would)")
        }
        if locked {
            lines.append("dry-run  another operation holds the lock now (planned from the cache as last fetched)")
        }
        if let refusal { lines.append("dry-run  would be refused: \(refusal.terminalSafe)") }
        if let skipped {
            lines.append("dry-run  would skip: \(target.prefix(12)) \(skipped.terminalSafe) (--force builds it)")
        }
        if let fleet { lines.append("dry-run  fleet: \(fleet.terminalSafe)") }
        lines.append("dry-run  build: \(build)")
        lines += submodules.map { "dry-run  submodule \($0)" }
        lines.append("dry-run  hooks: \(hooks.isEmpty ? "none" : hooks.joined(separator: ", "))")
        lines += analysis.map { "dry-run  analysis \($0)" }
        lines.append(
            "dry-run  prune would remove: \(pruned.isEmpty ? "nothing" : pruned.map { String($0.prefix(12)) }.joined(separator: " "))"
        )
        return lines.joined(separator: "\n")
    }
}

extension Deploy {
    public func dryRun(_ request: DeployRequest) throws -> DryRunPlan {
        let settings = operation.settings
        let layout = operation.layout
        let url = try RemoteURL.normalize(try settings.requireRepo())
        try layout.create()
        let (cache, found, asked, locked) = try dryRunTarget(request, url: url)
        guard let target = found else {
            throw AgentError.failed(
                "the cache has no \(settings.branch) yet and the lock is held; try again when it frees")
        }
        let live = layout.currentSHA()
        let record = operation.records.read(target.hex)
        let ready = record.map { $0.state.isComplete } == true && FileSystem.isDirectory(layout.release(target.hex))
        var plan = DryRunPlan(
            target: target.hex, subject: cache.info(target)?.subject, asked: asked, live: live,
            alreadyLive: live == target.hex && ready, locked: locked,
            build: ready
                ? "reuse releases/\(target.short), ready on disk"
                : "check out and build (\(settings.build ?? "no build command"))")
        plan.quarantined = operation.records.quarantine(target.hex)
        plan.paused = PauseState.read(layout)?.text
        if let live, let liveID = CommitID(hex: live), cache.info(liveID) != nil, live != target.hex {
            plan.fastForward = cache.isFastForward(from: liveID, to: target)
            if plan.fastForward == true {
                let seen = cache.headSeen(target, live: live, source: "dry-run")
                plan.commits = seen.behind
                plan.pending = seen.pending
            }
            if plan.fastForward == false && settings.refuseForcePush && !request.force {
                plan.refusal = "refuse-force-push: \(target.short) does not descend from the live \(liveID.short)"
            }
        }
        if !plan.alreadyLive, !request.force, let live, let liveID = CommitID(hex: live),
            FileSystem.isDirectory(layout.release(live))
        {
            plan.skipped = cache.skipReason(target, live: liveID, tree: settings.tree)
        }
        if !plan.alreadyLive && plan.skipped == nil {
            try judge(&plan, target: target, cache: cache, request: request)
        }
        if !ready && plan.skipped == nil && plan.refusal == nil {
            let described = cache.describeSubmodules(
                target, subdir: settings.tree.subdir, rules: SubmoduleRules(settings: settings))
            plan.submodules = described.lines
            plan.refusal = described.refusal.map { "checkout: \($0)" }
        }
        if let subdir = settings.tree.subdir, !ready, plan.skipped == nil {
            plan.build += "; only \(subdir) of the tree is the release"
        }
        plan.hooks = plan.refusal == nil && plan.skipped == nil ? hooks(ready: ready) : []
        plan.pruned = pruneForecast(target: target.hex, ready: ready, live: live)
        plan.analysis = analysisForecast(live: live)
        return plan
    }

    /// What the deploy would take: fetched under the lock when it is free, else the cache's
    /// branch head as the running operation left it (`locked`).
    private func dryRunTarget(_ request: DeployRequest, url: String) throws -> (
        cache: ReleaseSource, target: CommitID?, asked: String, locked: Bool
    ) {
        let settings = operation.settings
        let lock = try FileLock.acquire(operation.layout.lock, wait: nil)
        defer { withExtendedLifetime(lock) {} }
        let cache = try operation.capabilities.source(settings, url: url)
        guard lock != nil else {
            return (cache, try cache.branchHead(settings.branch), "\(settings.branch) head", true)
        }
        Recovery(operation: operation).removeStaleCacheLocks()
        let head = try cache.fetch(branch: settings.branch, progress: nil)
        switch request.target {
        case .branchHead:
            return (cache, head, "\(settings.branch) head", false)
        case .sha(let prefix):
            guard let id = try cache.lookup(prefix: prefix), cache.isOnBranch(id, head: head) else {
                throw AgentError.usage(
                    "commit \(prefix) is not in the history of \(settings.branch) on the remote; check --sha")
            }
            return (cache, id, "--sha \(prefix)", false)
        case .ref(let ref):
            return (cache, try cache.fetch(ref: ref, progress: nil), "--ref \(ref)", false)
        }
    }

    /// `deploy --dry-run` asks each check once for the live release (the new one is not live
    /// yet): what the operator sees is what the analysis will compare with its bound.
    private func analysisForecast(live: String?) -> [String] {
        guard let analysis = operation.settings.analysis else { return [] }
        guard let live else { return ["not asked: nothing is live to fill {sha} with"] }
        let querier: MetricsQuerier
        do { querier = try operation.capabilities.querier(analysis) } catch {
            return ["not asked: \((error as? AgentError)?.message ?? "no Prometheus client")"]
        }
        let port = operation.settings.slots.flatMap { try? SlotState.live(operation.layout, slots: $0)?.port }
        let host = operation.settings.fleet?.hostID ?? ProcessInfo.processInfo.hostName
        return analysis.checks.map { check in
            let measurement = check.judge(querier.query(check.filled(sha: live, host: host, port: port)))
            return "\(measurement.text) for the live \(live.prefix(12))"
        }
    }

    /// The refusals the deploy itself would meet after the fetch: the signature (checked as
    /// the deploy checks it) and, in fleet mode, a halt fleet-wide; a fleet pause or rollback
    /// under way is said too. A refused target is neither checked out nor built.
    private func judge(_ plan: inout DryRunPlan, target: CommitID, cache: ReleaseSource, request: DeployRequest) throws
    {
        let settings = operation.settings
        if settings.verifySignatures != .off {
            var ref: String?
            if case .ref(let name) = request.target { ref = name }
            let verdict = try cache.verifySignature(
                target, ref: ref, settings: settings, scratch: NSTemporaryDirectory())
            if case .refused(let key, let why) = verdict {
                plan.refusal = "verify-signatures: commit \(target.short) (\(key)): \(why); it would be quarantined"
            }
        }
        if plan.refusal == nil, let gate = try operation.fleetGate() {
            do {
                try gate.precheck(sha: target.hex)
            } catch let halt as FleetHalt {
                plan.refusal = "fleet: \(halt.reason); it would be quarantined here"
            } catch let hold as FleetHold {
                plan.fleet = "would be held: \(hold.reason)"
            } catch let failure as FleetFailure {
                plan.fleet = "would fail: \(failure.reason)"
            }
            gate.release()
        }
        if plan.refusal != nil { plan.build = "none: refused before the checkout" }
    }

    /// The hooks that exist and would run, in order, with the ports they would get.
    private func hooks(ready: Bool) -> [String] {
        let settings = operation.settings
        var events: [(String, String)] = []
        if !ready { events.append(("build", "")) }
        if settings.strategy == .blueGreen {
            let live = settings.slots.flatMap { try? SlotState.live(operation.layout, slots: $0)?.port }
            let candidate = settings.slots?.other(than: live)
            events.append(("start", " RELEASE_PORT=\(candidate.map(String.init) ?? "?")"))
            events.append(("activate", " RELEASE_PORT=\(candidate.map(String.init) ?? "?")"))
            if let live { events.append(("stop", " STOP_PORT=\(live)")) }
        } else {
            events.append(("activate", ""))
        }
        events.append(("post-deploy", ""))
        return events.filter { FileManager.default.isExecutableFile(atPath: settings.hooksDir + "/" + $0.0) }
            .map { $0.0 + $0.1 }
    }

    /// What prune would remove after this deploy went live.
    private func pruneForecast(target: String, ready: Bool, live: String?) -> [String] {
        let settings = operation.settings
        let onDisk = Set(operation.records.directories())
        var candidates = operation.records.all().filter { onDisk.contains($0.sha) && $0.sha != target }
        var next = ReleaseRecord(sha: target, state: .active, log: operation.layout.log(target))
        next.createdAt = ready ? (operation.records.read(target)?.createdAt ?? next.createdAt) : next.createdAt
        candidates.append(next)
        let activations = operation.history.recentActivations() + [target]
        let eligible = Set(candidates.filter { $0.state.isComplete && $0.quarantine == nil }.map(\.sha))
        let rollbackTarget = Policies.rollbackTarget(activations: activations, current: target, eligible: eligible)
        return Policies.pruneVictims(
            records: candidates, current: target, previous: live, pins: settings.pin, keep: settings.keepReleases,
            alsoKeep: Set([rollbackTarget].compactMap { $0 }))
    }
}
