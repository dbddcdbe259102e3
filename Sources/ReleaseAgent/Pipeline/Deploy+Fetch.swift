import Foundation

/// What the fetch stage found: the commit to deploy and the branch head.
struct Fetched {
    let target: CommitID
    /// The fetch stage's line: "main at 1a2b3c4d5e6f".
    let line: String
    let elapsed: Duration
    let branchHead: CommitID?
}

/// The fetch stage: the branch from the remote into the cache, then the commit asked for.
extension Deploy {
    func fetch(_ request: DeployRequest, cache: ReleaseSource) throws -> Fetched {
        let settings = operation.settings
        let start = ContinuousClock.now
        let progress = operation.output.progress("fetch")
        let head: CommitID
        if case .branchHead = request.target, let known = request.knownHead,
            try cache.branchHead(settings.branch) == known
        {
            // The fleet's published head is in the cache already: the remote is not asked.
            head = known
        } else {
            head = try FetchState.recording(trigger: request.trigger, layout: operation.layout) {
                try cache.fetch(branch: settings.branch, progress: progress)
            }
        }
        let target: CommitID
        let line: String
        switch request.target {
        case .branchHead:
            (target, line) = (head, "\(settings.branch) at \(head.short)")
        case .sha(let prefix):
            guard let id = try cache.lookup(prefix: prefix), cache.isOnBranch(id, head: head) else {
                throw AgentError.usage(
                    "commit \(prefix) is not in the history of \(settings.branch) on the remote; check --sha, or use --ref for another branch or tag"
                )
            }
            (target, line) = (id, "\(id.short) (asked for \(prefix))")
        case .ref(let ref):
            let id = try cache.fetch(ref: ref, progress: progress)
            (target, line) = (id, "\(ref) at \(id.short)")
        }
        let elapsed = ContinuousClock.now - start
        return Fetched(target: target, line: line, elapsed: elapsed, branchHead: try cache.branchHead(settings.branch))
    }

    /// Fleet mode, while a deploy of the branch head waits: the branch head now, asked the
    /// cheap way (a local remote's ref file, else ls-remote). Nil for --sha and --ref.
    func newerHead(_ request: DeployRequest, url: String) -> (() -> String?)? {
        guard case .branchHead = request.target else { return nil }
        let settings = operation.settings
        return {
            if let local = LocalRefs.branchHead(repository: url, branch: settings.branch) { return local.hex }
            return
                (try? operation.capabilities.askRemoteHead(
                    url: url, branch: settings.branch, credentials: settings.credentials))??
                .hex
        }
    }

}
