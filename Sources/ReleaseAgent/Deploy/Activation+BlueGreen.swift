import Foundation

/// Blue-green: the candidate starts on the free slot and must pass the health check before
/// `current` moves; the old slot runs until the analysis passed, so a failure switches back.
extension Activation {
    func blueGreen(_ base: ActivationMarker) throws -> AnalysisRecord? {
        let sha = base.sha
        guard let slots = operation.settings.slots else {
            throw StageFailure(stage: "start", reason: "strategy blue-green without slots")
        }
        let livePort = try SlotState.live(layout, slots: slots)?.port
        let candidate = slots.other(than: livePort)
        var marker = base
        marker.candidatePort = candidate
        marker.livePort = livePort
        let ports = ["RELEASE_PORT": String(candidate), "PREVIOUS_PORT": livePort.map(String.init) ?? ""]

        if let outcome = try hooks.run(.start, sha: sha, previous: marker.previous, extra: ports), !outcome.succeeded {
            stopCandidate(marker)
            if outcome == .cancelled {
                // A shutdown is nobody's fault: the release stays ready, deployable later.
                throw AgentError.cancelled(
                    "the deploy of \(sha.prefix(12)) was cancelled by shutdown while its candidate started; current is unchanged"
                )
            }
            throw fail(marker, "start", "the start hook \(outcome.text) on port \(candidate)")
        }
        if let failure = checkLive(port: candidate) {
            throw fail(marker, "health", "the candidate on port \(candidate) is unhealthy: \(failure)")
        }
        do {
            try beforeSwap?()
        } catch {
            stopCandidate(marker)
            throw error
        }
        try marker.write(layout)
        try layout.swapCurrent(to: sha)
        try SlotState(port: candidate, sha: sha).write(layout)
        if let outcome = try hooks.run(
            .activate, sha: sha, previous: marker.previous, extra: ports, cancellable: false), !outcome.succeeded
        {
            try revertBlueGreen(marker, stage: "activate", reason: "the activate hook \(outcome.text)")
        }
        // The old slot keeps running until the analysis passed or was inconclusive: a failed
        // one switches back to it.
        let analysis = try analyze(marker, port: candidate) {
            try revertBlueGreen(marker, stage: "analysis", reason: $0)
        }
        try finish(marker)
        stopOldSlot(marker)
        return analysis
    }

    /// After a successful switch: stop the slot that was live before.
    func stopOldSlot(_ marker: ActivationMarker) {
        guard let livePort = marker.livePort, let candidate = marker.candidatePort, livePort != candidate else {
            return
        }
        let old = marker.previous
        hooks.runLogged(
            .stop, sha: marker.sha, previous: old,
            extra: [
                "RELEASE_PORT": String(candidate), "PREVIOUS_PORT": String(livePort), "STOP_PORT": String(livePort),
                "STOP_SHA": old ?? "", "STOP_DIR": old.map { layout.release($0) } ?? "",
            ], cancellable: false)
    }

    func stopCandidate(_ marker: ActivationMarker) {
        guard let candidate = marker.candidatePort else { return }
        hooks.runLogged(
            .stop, sha: marker.sha, previous: marker.previous,
            extra: [
                "RELEASE_PORT": String(candidate), "PREVIOUS_PORT": marker.livePort.map(String.init) ?? "",
                "STOP_PORT": String(candidate), "STOP_SHA": marker.sha, "STOP_DIR": layout.release(marker.sha),
            ], cancellable: false)
    }

    /// Back to the slot and release that were live, the candidate stopped, then fail.
    func revertBlueGreen(_ marker: ActivationMarker, stage: String, reason: String) throws -> Never {
        var marker = marker
        marker.phase = .reverting
        try? marker.write(layout)
        if let previous = marker.previous, let livePort = marker.livePort,
            FileSystem.isDirectory(layout.release(previous))
        {
            if layout.currentSHA() != previous { try layout.swapCurrent(to: previous) }
            restoreRecord(previous)
            try SlotState(port: livePort, sha: previous).write(layout)
            _ = try? hooks.run(
                .activate, sha: previous, previous: marker.sha,
                extra: [
                    "RELEASE_PORT": String(livePort), "PREVIOUS_PORT": marker.candidatePort.map(String.init) ?? "",
                ],
                cancellable: false)
        } else {
            unlink(layout.current)
            unlink(SlotState.path(layout))
            FileSystem.syncDirectory(layout.root)
        }
        throw fail(marker, stage, reason)
    }

    func fail(_ marker: ActivationMarker, _ stage: String, _ reason: String) -> StageFailure {
        stopCandidate(marker)
        markFailed(marker.sha, stage: stage, reason: reason)
        ActivationMarker.remove(layout)
        var failure = StageFailure(stage: stage, reason: reason)
        if let candidate = marker.candidatePort {
            failure.ports = [
                "RELEASE_PORT": String(candidate), "PREVIOUS_PORT": marker.livePort.map(String.init) ?? "",
            ]
        }
        return failure
    }

    /// The release swapped back in is live again (it was retired when a forced redeploy of
    /// the newer one had gone live before).
    func restoreRecord(_ sha: String) {
        if operation.records.read(sha)?.state == .retired { _ = try? operation.records.move(sha, to: .active) }
    }
}
