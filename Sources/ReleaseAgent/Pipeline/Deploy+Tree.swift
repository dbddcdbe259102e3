import Foundation

/// The deploy's steps for repositories as they are: `paths` (a head recorded `skipped`) and
/// `build-cache` (the copy before the build). Submodules are part of the checkout (ReleaseSource).
extension Deploy {
    /// `paths`: the head is recorded `skipped` once (history, a line); the same head against
    /// the same live release again is quiet for poll and webhooks. `deploy` says it each time.
    func skip(
        _ target: CommitID, live: String, reason: String, subject: String?, request: DeployRequest,
        fetchLine: () -> Void
    ) throws -> DeployResult {
        let layout = operation.layout
        let known = SkippedHead.covers(target.hex, layout: layout)
        if known && request.trigger != "cli" { return .skipped(target.hex, reason: reason) }
        if request.trigger != "cli" { fetchLine() }
        operation.output.line("deploy   skipped: \(target.short) \(reason); it stays live (--force builds it)")
        if !known {
            SkippedHead(sha: target.hex, live: live, reason: reason).write(layout)
            var event = HistoryEvent(event: .deploy, result: .skipped, sha: target.hex, previous: live)
            event.trigger = request.trigger
            event.reason = reason
            event.subject = subject
            try operation.history.append(event)
        }
        return .skipped(target.hex, reason: reason)
    }

    /// build-cache: the listed paths copied from the live release, less what its commit
    /// tracks (a file a later commit deleted must not come back through the cache), said in one
    /// line; every entry skipped goes to the release's log, the first few to the output too.
    func warmBuildCache(into dir: String, sha: String, previous: String?, cache: ReleaseSource) throws {
        let paths = operation.settings.tree.buildCache
        guard !paths.isEmpty else { return }
        let layout = operation.layout
        guard let previous, let liveID = CommitID(hex: previous), FileSystem.isDirectory(layout.release(previous))
        else {
            operation.output.line(
                "build    cache: no live release to copy \(paths.joined(separator: ", ")) from; cold build")
            return
        }
        let tracked: Set<String>
        do {
            tracked = try cache.trackedFiles(of: liveID, layout: layout, fallbackSubdir: operation.settings.tree.subdir)
        } catch let error as AgentError {
            operation.output.line("build    cache: cold build: the live release's files are unknown (\(error.message))")
            return
        }
        let start = ContinuousClock.now
        let copied = try BuildCache(paths: paths, tracked: tracked).copy(from: layout.release(previous), into: dir)
        let mib = Double(copied.bytes) / 1_048_576
        operation.output.line(
            "build    cache: \(copied.files) file\(copied.files == 1 ? "" : "s") (\(String(format: "%.1f", mib)) MiB) of \(paths.joined(separator: ", ")) from \(previous.prefix(12)) in \((ContinuousClock.now - start).short)"
        )
        for line in copied.skipped.prefix(5) { operation.output.line("build    cache: skipped \(line.terminalSafe)") }
        if copied.skipped.count > 5 {
            operation.output.line(
                "build    cache: and \(copied.skipped.count - 5) more skipped (listed in \(layout.log(sha)))")
        }
        let logged = copied.skipped.prefix(1000).map { "build-cache: skipped \($0.terminalSafe)\n" }.joined()
        if !logged.isEmpty, let log = FileHandle(forWritingAtPath: layout.log(sha)) ?? create(layout.log(sha)) {
            log.seekToEndOfFile()
            log.write(Data(logged.utf8))
            try? log.close()
        }
    }

    private func create(_ path: String) -> FileHandle? {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        return fd < 0 ? nil : FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
}
