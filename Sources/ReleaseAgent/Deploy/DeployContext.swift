import Foundation

/// One deploy root as a locked operation sees it: the settings, the store, the history, the
/// output, and the lock (named so, not `Operation`, which Foundation has too).
public struct DeployContext {
    public let settings: Settings
    public let layout: Layout
    public let records: RecordStore
    public let history: History
    public let output: Output
    /// The fleet gate, the Prometheus client and the head fetcher this binary has.
    public let capabilities: Capabilities

    public init(settings: Settings, output: Output, capabilities: Capabilities = .process) {
        self.settings = settings
        self.capabilities = capabilities
        self.layout = settings.layout
        self.records = RecordStore(layout: settings.layout)
        self.history = History(path: settings.layout.history)
        self.output = output
    }

    /// Creates the layout, takes the lock (exit 75 when busy, or waits `wait`), repairs
    /// what a crash left, then runs `body`. The lock is released when `body` returns. A stage
    /// failure `body` throws is recorded here, the one place, before the lock goes.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        try layout.create()
        guard let lock = try FileLock.acquire(layout.lock, wait: settings.wait) else {
            throw AgentError(
                .busy,
                "another deploy, rollback or prune holds \(layout.lock); try again later or pass --wait DURATION")
        }
        defer { withExtendedLifetime(lock) {} }
        Recovery(operation: self).run()
        ActivationRecovery(operation: self).run()
        do {
            return try body()
        } catch let unrecorded as UnrecordedFailure {
            throw recordFailure(unrecorded.failure, unrecorded.attempt)
        }
    }

    /// Blue-green never guesses the live slot: an error naming the file when it is unknown.
    /// Checked before anything is fetched or built.
    package func checkLiveSlot() throws {
        guard settings.strategy == .blueGreen, let slots = settings.slots else { return }
        _ = try SlotState.live(layout, slots: slots)
    }

    /// Complete releases with their directory on disk, by sha.
    public func completeOnDisk() -> [String: ReleaseRecord] {
        let dirs = Set(records.directories())
        var result: [String: ReleaseRecord] = [:]
        for record in records.all() where record.state.isComplete && dirs.contains(record.sha) {
            result[record.sha] = record
        }
        return result
    }

    /// Marks `sha` live after a swap: it becomes active, the one before it retired.
    package func recordActivation(of sha: String, previous: String?) throws {
        if let previous, previous != sha, let record = records.read(previous), record.state == .active {
            try records.move(previous, to: .retired)
        }
        try records.move(sha, to: .active) { record in
            record.activatedAt = Date().timeIntervalSince1970
            record.quarantine = nil
        }
    }

    /// After a failed deploy or rollback: the `on-failure` hook, a history line, exit 1.
    package func recordFailure(_ failure: StageFailure, _ attempt: Attempt) -> AgentError {
        let (kind, sha, previous) = (attempt.kind, attempt.sha, attempt.previous)
        Hooks(operation: self).runLogged(
            .onFailure, sha: sha, previous: previous,
            extra: failure.ports.merging(["FAILURE_STAGE": failure.stage, "FAILURE_REASON": failure.reason]) { $1 })
        var event = HistoryEvent(event: kind, result: .failed, sha: sha, previous: previous)
        event.trigger = attempt.trigger
        event.stage = failure.stage
        event.reason = failure.reason
        event.subject = attempt.subject
        event.seconds = (ContinuousClock.now - attempt.started).seconds
        event.stages = output.takeStageSeconds()
        event.analysis = failure.analysis
        try? history.append(event)
        let live = layout.currentSHA().map { "current stays on \($0.prefix(12))" } ?? "nothing is live"
        return AgentError.failed(
            "\(kind.rawValue) of \(sha.prefix(12)) failed at \(failure.stage): \(failure.reason); \(live); see \(layout.log(sha))"
        )
    }

    /// Removes releases beyond `keep` by the store's rules; returns the removed shas.
    package func prune(keep: Int) throws -> [String] {
        let current = layout.currentSHA()
        let activations = history.recentActivations()
        let previous = Policies.previous(activations: activations, current: current)
        let onDisk = Set(records.directories())
        let candidates = records.all().filter { onDisk.contains($0.sha) }
        // The release a no-argument rollback would pick now stays too, so rollback stays instant.
        let eligible = Set(candidates.filter { $0.state.isComplete && $0.quarantine == nil }.map(\.sha))
        let rollbackTarget = Policies.rollbackTarget(activations: activations, current: current, eligible: eligible)
        let victims = Policies.pruneVictims(
            records: candidates, current: current, previous: previous, pins: settings.pin, keep: keep,
            alsoKeep: Set([rollbackTarget].compactMap { $0 }))
        // A quarantine is a fact about the commit: it outlives the release dir and record.
        let byID = Dictionary(candidates.map { ($0.sha, $0) }) { first, _ in first }
        try QuarantineBook(layout: layout).remember(victims.map { ($0, byID[$0]?.quarantine) })
        var trashed: [String] = []
        for sha in victims {
            // The release leaves the eligible set before any of its files is touched: without
            // its record it is an incomplete dir, which the next recovery removes whatever
            // happens below. Then it leaves releases/ at once (rename is atomic) and is deleted
            // in the background. Moving a directory to another parent needs write permission
            // on it, which a build may have taken away (`chmod -R a-w .`).
            unlink(layout.record(sha))
            unlink(layout.log(sha))
            FileSystem.syncDirectory(layout.records)
            let release = layout.release(sha)
            if FileSystem.isDirectory(release) { chmod(release, 0o755) }
            let trash = "\(layout.trash)/\(sha).\(getpid())"
            if rename(release, trash) == 0 {
                trashed.append(trash)
            } else {
                try FileSystem.removeTree(release)
            }
        }
        if !victims.isEmpty { FileSystem.syncDirectory(layout.releases) }
        FileSystem.removeInBackground(trashed)
        return victims
    }
}

/// Repairs what a crash left, under the lock: kills a dead agent's build, removes
/// incomplete release dirs and stale temp links.
package struct Recovery {
    let operation: DeployContext

    package init(operation: DeployContext) { self.operation = operation }

    func run() {
        let layout = operation.layout
        for link in layout.staleTempLinks() {
            unlink(link)
            operation.output.line("recover  removed stale link \(link)")
        }
        let current = layout.currentSHA()
        for sha in operation.records.directories() {
            let record = operation.records.read(sha)
            if let record, record.state != .building { continue }
            if sha == current {
                // The live release is never removed. It was complete when it went live, so a
                // missing or damaged record is rebuilt rather than trusted.
                repairLiveRecord(sha, damaged: record == nil)
                continue
            }
            if let record, let pgid = record.pgid, pgid > 1, record.bootID == BootID.current {
                ProcessRunner.killGroup(pgid, grace: .seconds(1))
            }
            do {
                try FileSystem.removeTree(layout.release(sha))
                if record != nil { unlink(layout.record(sha)) }
                operation.output.line("recover  removed incomplete release \(sha)")
            } catch {
                operation.output.line("recover  could not remove incomplete release \(sha): \(error)")
            }
        }
        // Temp files of atomic writes a crash interrupted (records, slot state).
        for dir in [layout.records, layout.state] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.contains(".tmp-") {
                unlink(dir + "/" + name)
            }
        }
        // Pruned releases whose background removal did not finish (a crash, a reboot).
        let trash = (try? FileManager.default.contentsOfDirectory(atPath: layout.trash)) ?? []
        // Removal may still be under way in the background: start another, which is harmless.
        FileSystem.removeInBackground(trash.map { layout.trash + "/" + $0 })
        // A build whose dir is already gone but whose record still says building.
        // (current's own record was repaired above.)
        for record in operation.records.all() where record.state == .building {
            if !FileSystem.exists(layout.release(record.sha)) { unlink(layout.record(record.sha)) }
        }
    }

    /// The cache is only opened under our lock, so a libgit2 lock file there (a ref's
    /// `.lock`, `packed-refs.lock`, `config.lock`) or a half-written pack is what a killed fetch
    /// left; a stale ref lock would make every later fetch fail. Deploy calls this before it
    /// opens the cache; rollback and prune never open it, so they skip the walk.
    package func removeStaleCacheLocks() {
        let modules = operation.layout.modules
        let caches = (try? FileManager.default.contentsOfDirectory(atPath: modules))?.filter { $0.hasSuffix(".git") }
        for cache in [operation.layout.cache] + (caches ?? []).map({ modules + "/" + $0 }) {
            removeStaleLocks(in: cache)
        }
    }

    private func removeStaleLocks(in cache: String) {
        var stale: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? [] where name.hasSuffix(".lock") {
            stale.append(cache + "/" + name)
        }
        if let walk = FileManager.default.enumerator(atPath: cache + "/refs") {
            for case let name as String in walk where name.hasSuffix(".lock") { stale.append(cache + "/refs/" + name) }
        }
        let packs = cache + "/objects/pack"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: packs)) ?? []
        where name.hasPrefix("pack_git2_") || name.hasSuffix(".lock") {
            stale.append(packs + "/" + name)
        }
        for path in stale where unlink(path) == 0 {
            operation.output.line("recover  removed stale git lock or temp file \(path)")
        }
    }

    private func repairLiveRecord(_ sha: String, damaged: Bool) {
        let layout = operation.layout
        var record = operation.records.read(sha) ?? ReleaseRecord(sha: sha, state: .active, log: layout.log(sha))
        record.state = .active
        record.pgid = nil
        guard (try? operation.records.write(record)) != nil else { return }
        let what = damaged ? "missing or unreadable" : "marked building"
        operation.output.line("recover  the record of the live release \(sha) was \(what); rebuilt it")
    }
}
