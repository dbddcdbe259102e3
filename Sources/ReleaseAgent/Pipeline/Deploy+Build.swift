import Foundation

/// The checkout and build stages: `releases/<sha>` checked out, the build command and hook run
/// in it, the record made `ready`. A failure leaves the record `failed` and throws the stage
/// that failed.
extension Deploy {
    /// Leaves `releases/<sha>` complete and `ready`: reuses a ready one, else checks out and builds.
    func ensureBuilt(_ id: CommitID, info: CommitInfo?, cache: ReleaseSource, previous: String?) throws {
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
            let checkout = try timed("checkout") { try self.checkout(id, into: dir, cache: cache) }
            stage = "build"
            let build = try timed("build") { try self.build(id, in: dir, cache: cache, previous: previous) }
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

    /// The tree of `id` (and its submodules) into `dir`, the REVISION file and the shared links.
    private func checkout(_ id: CommitID, into dir: String, cache: ReleaseSource) throws -> (Duration, String) {
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
        try operation.records.update(id.hex) { $0.submodules = submodules }
        let links = SharedLinks(layout: operation.layout)
        try links.writeRevision(id.hex, into: dir)
        try links.link(operation.settings.shared, into: dir)
        let count = submodules?.count ?? 0
        let with = count == 0 ? "" : ", with \(count) submodule\(count == 1 ? "" : "s")"
        return (ContinuousClock.now - start, "\(id.short) into releases/\(id.hex)\(with)")
    }

    /// The build cache warmed, then the build command and the build hook, in `dir`.
    private func build(_ id: CommitID, in dir: String, cache: ReleaseSource, previous: String?) throws -> (
        Duration, String
    ) {
        let start = ContinuousClock.now
        defer { FileSystem.syncDirectory(dir) }
        try warmBuildCache(into: dir, sha: id.hex, previous: previous, cache: cache)
        if let command = operation.settings.build {
            let env = StepRunner.environment(
                event: "build", sha: id.hex, layout: operation.layout, branch: operation.settings.branch,
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

    private func check(_ outcome: ProcessOutcome, hook: Bool = false) throws {
        let what = hook ? "the build hook" : "the build"
        guard outcome.succeeded else {
            let timeout = hook ? operation.settings.hookTimeout : operation.settings.buildTimeout
            throw AgentError.failed(
                outcome == .timedOut ? "\(what) timed out after \(timeout.short)" : "\(what) failed (\(outcome.text))")
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
