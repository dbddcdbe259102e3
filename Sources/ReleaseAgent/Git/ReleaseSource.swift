import Foundation

/// The git work of a deploy, behind a protocol: the pipeline (`Pipeline/`) walks its stages in
/// this module, and `ReleaseAgentGit` implements it on libgit2 (`GitCache`, the bare cache of
/// the remote under `.release-agent/cache`). `Capabilities.openSource` opens one.
public protocol ReleaseSource: AnyObject {
    /// The branch from the remote into the cache; its head.
    func fetch(branch: String, progress: ProgressReporter?) throws -> CommitID
    /// A branch or tag by name from the remote; the commit it names.
    func fetch(ref: String, progress: ProgressReporter?) throws -> CommitID
    /// The branch's head in the cache, as last fetched (nil: never fetched).
    func branchHead(_ branch: String) throws -> CommitID?
    /// The commit a unique prefix names in the cache.
    func lookup(prefix: String) throws -> CommitID?
    /// `id` is `head` or one of its ancestors.
    func isOnBranch(_ id: CommitID, head: CommitID) -> Bool
    /// `new` descends from `old`.
    func isFastForward(from old: CommitID, to new: CommitID) -> Bool
    /// Subject, author and time of a commit in the cache (nil: not there).
    func info(_ id: CommitID) -> CommitInfo?
    /// `paths`: why `target` changes nothing under them against `live`; nil when it does.
    func skipReason(_ target: CommitID, live: CommitID, tree: TreeSettings) -> String?
    /// The tree of `id` (from `subdir`) and its submodules by `submodules` into `directory`;
    /// the submodules written (path in the release -> URL), nil when submodules are off.
    func checkout(
        _ id: CommitID, subdir: String?, submodules: SubmoduleRules?, into directory: String,
        progress: ProgressReporter?
    ) throws -> [String: String]?
    /// The paths a live release of `id` holds from its commit (build-cache leaves them alone).
    func trackedFiles(of id: CommitID, layout: Layout, fallbackSubdir: String?) throws -> Set<String>
    /// `deploy --dry-run`: the submodules a checkout of `id` would write, or why it would fail.
    func describeSubmodules(_ id: CommitID, subdir: String?, rules: SubmoduleRules) -> (
        lines: [String], refusal: String?
    )
    /// The signature of `id` (or of the annotated tag `ref` names) by verify-signatures.
    func verifySignature(_ id: CommitID, ref: String?, settings: Settings, scratch: String) throws
        -> SignatureVerdict
    /// The head as seen now against `live`: commits behind, or that `live` left the branch.
    func headSeen(_ head: CommitID, live: String?, source: String) -> HeadSeen
}

/// What verify-signatures says of a commit.
public enum SignatureVerdict: Equatable, Sendable {
    /// Who signed: the key's fingerprint, and the principal for ssh.
    case trusted(signer: String)
    case refused(key: String, why: String)
}

/// What a deploy does with gitlinks: `submodules`, `submodules-allow-local`, and where the
/// submodules' caches live.
public struct SubmoduleRules: Sendable {
    public var enabled: Bool
    public var allowLocal: Bool
    public var cacheDirectory: String

    public init(settings: Settings) {
        enabled = settings.tree.submodules
        allowLocal = settings.tree.submodulesAllowLocal
        cacheDirectory = settings.layout.modules
    }
}
