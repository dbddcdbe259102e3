import CLibGit2
import Foundation
import ReleaseAgent

/// The bare cache of the remote at `ROOT/.release-agent/repo.git`: fetches only the
/// followed branch (incrementally) and checks commits out of it.
public final class GitCache: ReleaseSource {
    let repository: Repository
    public let remoteURL: String
    let credentials: GitCredentials
    /// Where the remote's URL comes from, for the remedy in fetch errors.
    var urlOrigin = "the repo setting"

    public init(path: String, remoteURL: String, credentials: GitCredentials) throws {
        do {
            self.repository = try Repository.openOrCreateBare(at: path)
        } catch let error as GitError {
            let why = GitError.cacheReading(klass: error.klass, code: error.code, cache: path)
            throw AgentError(.failed, "cannot open the git cache: \(why)", environmental: true, cause: error)
        }
        self.remoteURL = remoteURL
        self.credentials = credentials
    }

    static func trackingRef(_ branch: String) -> String { "refs/remotes/origin/\(branch)" }

    /// Fetches `branch` and returns its head. Errors name the remote and the fix. A branch the
    /// remote no longer has is an error, never its stale head from the cache (fetch prunes).
    public func fetch(branch: String, progress: ProgressReporter?) throws -> CommitID {
        let tracking = GitCache.trackingRef(branch)
        try fetch(["+refs/heads/\(branch):\(tracking)"], destinations: [tracking], progress: progress)
        guard let head = try repository.resolveReference(tracking) else {
            throw AgentError.failed("branch '\(branch)' does not exist on \(remoteURL); check the branch setting")
        }
        return head
    }

    /// Fetches a branch or tag named `ref` and returns the commit it points at. What the
    /// remote no longer has is pruned, so a deleted ref is an error, not its old head.
    public func fetch(ref: String, progress: ProgressReporter?) throws -> CommitID {
        let names = ref.hasPrefix("refs/") ? [ref] : ["refs/heads/\(ref)", "refs/tags/\(ref)"]
        let locals = names.map { "refs/release-agent/\($0.dropFirst(5))" }
        try fetch(zip(names, locals).map { "+\($0):\($1)" }, destinations: locals, progress: progress)
        for local in locals {
            if let id = try repository.peeledCommit(local) { return id }
        }
        throw AgentError.usage("ref '\(ref)' is neither a branch nor a tag on \(remoteURL); check --ref")
    }

    /// Every branch and tag (a submodule's cache: its recorded commit may be on any of them).
    func fetchAll() throws {
        try fetch(["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], destinations: [], progress: nil)
    }

    /// One commit by its id, for a server that lets a client ask for one no ref names.
    func fetch(commit: CommitID) throws {
        try fetch(["+\(commit.hex):refs/release-agent/commits/\(commit.hex)"], destinations: [], progress: nil)
    }

    /// One fetch of `refspecs` with prune. A cached ref that would block a destination
    /// (`feature` when `feature/x` is fetched, or the other way round: a branch renamed into
    /// a directory) is removed first; it is only a copy of the remote's.
    private func fetch(_ refspecs: [String], destinations: [String], progress: ProgressReporter?) throws {
        for name in try repository.referenceNames() {
            for destination in destinations
            where destination.hasPrefix(name + "/") || name.hasPrefix(destination + "/") {
                try repository.removeReference(name)
            }
        }
        let remote = try Remote.open(
            url: remoteURL, in: repository, context: RemoteContext(credentials: credentials, progress: progress))
        do {
            try remote.fetch(refspecs: refspecs)
        } catch let error as RemoteError {
            throw error.explain(url: remoteURL, setting: urlOrigin)
        }
    }

    /// `status --fetch`: the remote's branch head now (ls-remote), counted against the live
    /// release. A head the cache lacks is fetched under the lock, waiting for it briefly (as
    /// `wait` does); with a deploy holding it, the head is recorded uncounted and that is said.
    public static func recordRemoteHead(_ settings: Settings) throws {
        let url = try RemoteURL.normalize(try settings.requireRepo())
        guard let head = try remoteHead(url: url, branch: settings.branch, credentials: settings.credentials) else {
            throw AgentError.failed("branch '\(settings.branch)' does not exist on \(url); check the branch setting")
        }
        let layout = settings.layout
        let live = layout.currentSHA()
        func open() -> GitCache? {
            guard FileSystem.exists(layout.cache + "/HEAD") else { return nil }
            return try? GitCache(path: layout.cache, remoteURL: url, credentials: settings.credentials)
        }
        if let cache = open(), cache.info(head) != nil {
            return cache.headSeen(head, live: live, source: "status --fetch").record(layout)
        }
        // Nothing deployed here yet: nothing to count against, and no cache to create.
        guard FileSystem.isDirectory(layout.state), live != nil else {
            return HeadSeen.sawHead(head.hex, source: "status --fetch", layout: layout)
        }
        guard let lock = try FileLock.acquire(layout.lock, wait: .seconds(5)) else {
            StandardStream.error(
                "status: another operation holds the lock (a deploy under way); the commits behind are counted by its fetch\n"
            )
            return HeadSeen.sawHead(head.hex, source: "status --fetch", layout: layout)
        }
        defer { withExtendedLifetime(lock) {} }
        let cache = try GitCache(path: layout.cache, remoteURL: url, credentials: settings.credentials)
        let fetched = try FetchState.recording(trigger: "status", layout: layout) {
            try cache.fetch(branch: settings.branch, progress: nil)
        }
        cache.headSeen(fetched, live: live, source: "status --fetch").record(layout)
    }

    /// The branch head as the last fetch left it in the cache.
    public func branchHead(_ branch: String) throws -> CommitID? {
        try repository.resolveReference(GitCache.trackingRef(branch))
    }

    /// True when `id` is `head` or in its history: `--sha` names a commit of the followed branch.
    public func isOnBranch(_ id: CommitID, head: CommitID) -> Bool {
        (try? repository.isDescendant(head, of: id)) ?? false
    }

    /// The branch head on the remote, without fetching (connect + ls-remote).
    public static func remoteHead(url: String, branch: String, credentials: GitCredentials) throws -> CommitID? {
        let remote = try Remote.open(url: url, in: nil, context: RemoteContext(credentials: credentials, progress: nil))
        do {
            return try remote.listReferences()["refs/heads/\(branch)"]
        } catch let error as RemoteError {
            throw error.explain(url: url)
        }
    }

    public func lookup(prefix: String) throws -> CommitID? { try repository.lookupCommit(prefix: prefix.lowercased()) }

    public func info(_ id: CommitID) -> CommitInfo? { try? repository.commitInfo(id) }

    public func isFastForward(from old: CommitID, to new: CommitID) -> Bool {
        (try? repository.isDescendant(new, of: old)) ?? false
    }

    /// Writes the tree of `id` into the empty `directory` with parallel writers. Files get the
    /// committed bytes, as `git archive` gives them: `.gitattributes` filters (eol, ident,
    /// LFS smudge) are not applied; a checkout out of a bare cache never applied them either.
    /// With `subdir`, only that directory of the tree is written, at the top of `directory`.
    /// Submodules follow `submodules` (nil: a commit with any is refused); returns the
    /// submodules written (path in the release -> URL), nil when submodules are off.
    @discardableResult
    public func checkout(
        _ id: CommitID, subdir: String?, submodules: SubmoduleRules?, into directory: String,
        progress: ProgressReporter?
    ) throws -> [String: String]? {
        do {
            let plan = try TreeWriter.plan(repository: repository, commit: id, subdir: subdir)
            if !plan.submodules.isEmpty && submodules == nil {
                throw AgentError.failed(
                    "\(id.short) has submodules (\(plan.submodules.prefix(3).map(\.path).joined(separator: ", "))), which this command does not fetch"
                )
            }
            let threads = min(8, max(2, ProcessInfo.processInfo.activeProcessorCount))
            try TreeWriter.write(
                plan, repositoryPath: repository.path, into: directory, threads: threads, progress: progress)
            guard let submodules else { return [:] }
            let written = try SubmoduleCheckout(rules: submodules, credentials: credentials, mainURL: remoteURL).write(
                plan, of: id, in: repository, url: remoteURL, subdir: subdir, into: directory)
            return submodules.enabled ? written : nil
        } catch let error as GitError {
            throw Self.checkoutFailure(error, of: id, cache: repository.path)
        }
    }

    /// A libgit2 error while reading the commit's trees: named by its class; libgit2's own
    /// text stays in `cause`, for the log, not the user's line.
    static func checkoutFailure(_ error: GitError, of id: CommitID, cache: String) -> AgentError {
        let reading = GitError.cacheReading(klass: error.klass, code: error.code, cache: cache)
        return AgentError(.failed, "checkout of \(id.short) failed: \(reading)", environmental: true, cause: error)
    }

    public func trackedFiles(of id: CommitID, layout: Layout, fallbackSubdir: String?) throws -> Set<String> {
        Set(
            try ReleaseTree.plan(id, layout: layout, repository: repository, fallbackSubdir: fallbackSubdir).files.map(
                \.path))
    }

    /// `deploy --dry-run`: the submodules a checkout of `id` would write, or why it would fail.
    public func describeSubmodules(_ id: CommitID, subdir: String?, rules: SubmoduleRules) -> (
        lines: [String], refusal: String?
    ) {
        do {
            let lines = try SubmoduleCheckout(rules: rules, credentials: credentials, mainURL: remoteURL).describe(
                id, in: repository, subdir: subdir)
            return (lines, nil)
        } catch let error as AgentError {
            return ([], error.message)
        } catch {
            return ([], "\(error)")
        }
    }

    /// The signature of `id` by `policy` (see `SignatureCheck`). With `ref` naming a signed
    /// annotated tag, the tag's signature is the one checked.
    public func verifySignature(_ id: CommitID, ref: String?, settings: Settings, scratch: String) throws
        -> SignatureVerdict
    {
        let check = SignatureCheck(
            policy: settings.verifySignatures, allowedSigners: settings.allowedSigners, gpgKeyring: settings.gpgKeyring,
            scratch: scratch)
        if let ref {
            let names = ref.hasPrefix("refs/") ? [ref] : ["refs/tags/\(ref)"]
            for name in names where name.hasPrefix("refs/tags/") {
                let local = "refs/release-agent/\(name.dropFirst(5))"
                // Only the tag that named this commit (a branch of the same name wins the fetch).
                if try repository.peeledCommit(local) == id, let tag = try repository.tagSignature(local) {
                    return try check.verify(.init(signature: tag.signature, payload: tag.payload, time: tag.taggerTime))
                }
            }
        }
        return try check.verify(id, in: repository)
    }

    /// The head as seen now against `live`: commits after it on the branch, with up to 10
    /// subjects, or that `live` is not in the branch's history.
    public func headSeen(_ head: CommitID, live: String?, source: String) -> HeadSeen {
        var seen = HeadSeen(sha: head.hex, source: source, live: live)
        guard let live, let liveID = CommitID(hex: live) else { return seen }
        if live == head.hex {
            seen.behind = 0
            seen.liveOnBranch = true
            return seen
        }
        guard info(liveID) != nil, isFastForward(from: liveID, to: head) else {
            seen.liveOnBranch = info(liveID) == nil ? nil : false
            return seen
        }
        seen.liveOnBranch = true
        if let (count, subjects) = try? repository.commitsBetween(liveID, head, subjects: 10) {
            seen.behind = count
            seen.pending = subjects
        }
        return seen
    }
}
