import CLibGit2
import Foundation
import ReleaseAgent

/// Submodules written into a release, recursively, through libgit2 on bare caches: libgit2's
/// own submodule API needs a working tree ("cannot get submodules without a working tree" on
/// a bare repository), so `.gitmodules` is read at the commit, each URL is checked and made
/// absolute (`SubmoduleURL`), each submodule has a bare cache of its own under
/// `.release-agent/modules/`, fetched with the main remote's ssh key and known hosts (its
/// token only for the main remote's own host: a URL in a commit must not be able to collect
/// it), and the gitlink's tree is written where the gitlink is.
struct SubmoduleCheckout {
    /// Nested deeper than this is a loop or an error in the repository.
    static let maxDepth = 8

    let rules: SubmoduleRules
    let credentials: GitCredentials
    let mainURL: String

    /// One gitlink to write: where, which commit, from which URL.
    struct Module {
        /// Inside the release directory.
        var path: String
        /// As the operator reads it: the path from the repository's root through each parent.
        var shown: String
        var commit: CommitID
        var url: String
    }

    /// At most this many submodules in one checkout, nested ones counted: a small repository
    /// can fan out into tens of thousands (8 levels of 4 are 87,380).
    static let maxCount = 1000

    /// Counts the submodules written across the recursion.
    final class Budget {
        var used = 0
    }

    /// Writes the gitlinks of `plan` (the tree of `commit` in `repository`, fetched from `url`,
    /// written at `directory` from the tree's `subdir`), then theirs. Returns each written
    /// submodule's path in the release (`releasePrefix` + its path) with the URL it came from,
    /// for the release's record (verify and build-cache read the caches by it).
    @discardableResult
    func write(
        _ plan: TreeWriter.Plan, of commit: CommitID, in repository: Repository, url: String, subdir: String?,
        into directory: String, shownPrefix: String = "", releasePrefix: String = "", depth: Int = 0,
        budget: Budget = Budget()
    ) throws -> [String: String] {
        guard !plan.submodules.isEmpty else { return [:] }
        guard rules.enabled else {
            // As git leaves a submodule it did not initialise: an empty directory.
            for gitlink in plan.submodules { try makeDirectory(directory + "/" + gitlink.path) }
            return [:]
        }
        var written: [String: String] = [:]
        let modules = try resolve(
            plan.submodules, of: commit, in: repository, url: url, subdir: subdir,
            shownPrefix: shownPrefix)
        for module in modules {
            guard depth < Self.maxDepth else {
                throw AgentError.failed(
                    "submodule \(module.shown.terminalSafe) is nested deeper than \(Self.maxDepth) levels (a loop of submodules?); nothing was checked out"
                )
            }
            budget.used += 1
            guard budget.used <= Self.maxCount else {
                throw AgentError.failed(
                    "\(commit.short) brings more than \(Self.maxCount) submodules, nested ones counted (at \(module.shown.terminalSafe)); nothing was checked out; flatten the submodules or set submodules = false"
                )
            }
            let cache = try fetched(module)
            let inner: TreeWriter.Plan
            do {
                inner = try TreeWriter.plan(repository: cache.repository, commit: module.commit)
            } catch let error as AgentError {
                throw AgentError.failed(
                    "submodule \(module.shown.terminalSafe) (\(module.url.terminalSafe)): \(error.message)")
            }
            let target = directory + "/" + module.path
            try makeDirectory(target)
            try TreeWriter.write(
                inner, repositoryPath: cache.repository.path, into: target, threads: 2, progress: nil)
            let inRelease = releasePrefix + module.path
            written[inRelease] = module.url
            written.merge(
                try write(
                    inner, of: module.commit, in: cache.repository, url: module.url, subdir: nil, into: target,
                    shownPrefix: module.shown + "/", releasePrefix: inRelease + "/", depth: depth + 1, budget: budget)
            ) { first, _ in first }
        }
        return written
    }

    /// What the submodules of `plan` wrote, read from their caches by the URLs the release's
    /// record keeps (`recorded`: path in the release -> URL; nothing is fetched), as entries of
    /// the release: directories and files under each gitlink's path.
    static func expanded(
        _ plan: TreeWriter.Plan, recorded: [String: String], cacheDirectory: String, prefix: String = "",
        depth: Int = 0
    ) throws -> TreeWriter.Plan {
        var result = TreeWriter.Plan()
        guard depth < maxDepth else { return result }
        for gitlink in plan.submodules {
            let base = prefix + gitlink.path
            let commit = CommitID(oid: gitlink.oid)
            let path = recorded[base].map { cacheDirectory + "/" + cacheName($0) }
            guard let path, FileSystem.exists(path + "/HEAD"), let cache = try? Repository.openOrCreateBare(at: path),
                (try? cache.commitInfo(commit)) != nil
            else {
                throw AgentError.failed(
                    "submodule \(base.terminalSafe): commit \(commit.short) is not in its cache under \(cacheDirectory); run deploy --force to write the release again"
                )
            }
            let inner = try TreeWriter.plan(repository: cache, commit: commit)
            result.directories.append(base)
            result.directories += inner.directories.map { base + "/" + $0 }
            result.files += inner.files.map { entry in
                var entry = entry
                entry.path = base + "/" + entry.path
                return entry
            }
            let deeper = try expanded(
                inner, recorded: recorded, cacheDirectory: cacheDirectory, prefix: base + "/", depth: depth + 1)
            result.directories += deeper.directories
            result.files += deeper.files
        }
        return result
    }

    /// Each gitlink with its URL from `.gitmodules` at `commit`, checked; the first that has
    /// none or a refused one fails the checkout (the commit's fault: it is quarantined).
    func resolve(
        _ gitlinks: [TreeWriter.Entry], of commit: CommitID, in repository: Repository, url: String, subdir: String?,
        shownPrefix: String
    ) throws -> [Module] {
        let urls = try GitModules.read(commit, in: repository, scratch: rules.cacheDirectory)
        return try gitlinks.map { gitlink in
            let full = subdir.map { $0 + "/" + gitlink.path } ?? gitlink.path
            let shown = shownPrefix + full
            guard let raw = urls[full] else {
                throw AgentError.failed(
                    "submodule \(shown.terminalSafe) of \(commit.short) has no url in .gitmodules; nothing was checked out; add it to .gitmodules"
                )
            }
            switch SubmoduleURL.resolve(raw, parent: url, allowLocal: rules.allowLocal) {
            case .success(let resolved):
                return Module(path: gitlink.path, shown: shown, commit: CommitID(oid: gitlink.oid), url: resolved)
            case .failure(let refused):
                throw AgentError.failed(
                    "submodule \(shown.terminalSafe) url \(raw.terminalSafe) \(refused.reason); nothing was checked out; fix .gitmodules"
                )
            }
        }
    }

    /// The submodule's cache holding its commit: fetched only when it lacks it (a commit is
    /// immutable), first every branch and tag, then the commit itself where the server allows.
    private func fetched(_ module: Module) throws -> GitCache {
        let path = rules.cacheDirectory + "/" + Self.cacheName(module.url)
        var credentials = credentials
        if RemoteURL.endpoint(module.url)?.host != RemoteURL.endpoint(mainURL)?.host { credentials.tokenFile = nil }
        let what = "submodule \(module.shown.terminalSafe) (\(module.url.terminalSafe))"
        let cache: GitCache
        do {
            try FileSystem.makeDirectory(rules.cacheDirectory, mode: 0o700)
            cache = try GitCache(path: path, remoteURL: module.url, credentials: credentials)
            cache.urlOrigin = "the url of \(module.shown.terminalSafe) in .gitmodules"
            if cache.info(module.commit) != nil { return cache }
            try cache.fetchAll()
            if cache.info(module.commit) == nil { try? cache.fetch(commit: module.commit) }
        } catch let error as AgentError {
            throw AgentError.environment("\(what) cannot be fetched: \(error.message)")
        } catch let error as GitError {
            throw AgentError.environment("\(what) cannot be fetched: \(error.message); check the url and the network")
        }
        guard cache.info(module.commit) != nil else {
            throw AgentError.failed(
                "\(what): commit \(module.commit.short) is on no branch or tag there; push it, or point the submodule at a pushed commit"
            )
        }
        return cache
    }

    /// `deploy --dry-run`: the submodules of `id` at the top level, each with its URL and
    /// whether its cache has the commit already (nested ones are known only once fetched).
    func describe(_ id: CommitID, in repository: Repository, subdir: String?) throws -> [String] {
        let plan = try TreeWriter.plan(repository: repository, commit: id, subdir: subdir)
        guard !plan.submodules.isEmpty else { return [] }
        guard rules.enabled else { return plan.submodules.map { "\($0.path) left empty (submodules off)" } }
        return try resolve(plan.submodules, of: id, in: repository, url: mainURL, subdir: subdir, shownPrefix: "")
            .map { module in
                let path = rules.cacheDirectory + "/" + Self.cacheName(module.url)
                // Only an existing cache is opened: a dry run creates nothing.
                let exists = FileSystem.exists(path + "/HEAD")
                let cached =
                    exists
                    ? (try? Repository.openOrCreateBare(at: path)).flatMap { try? $0.commitInfo(module.commit) } : nil
                let state = cached != nil ? "cached" : "to fetch"
                return
                    "\(module.shown.terminalSafe) at \(module.commit.short) from \(module.url.terminalSafe) (\(state))"
            }
    }

    /// `<last part of the url>-<16 hex digits of its hash>.git`: one cache per URL, readable.
    static func cacheName(_ url: String) -> String {
        let last = url.split(whereSeparator: { $0 == "/" || $0 == ":" }).last.map(String.init) ?? "module"
        let stem = String(last.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(40))
        return (stem.isEmpty ? "module" : stem) + "-" + FNV1a.hex(url) + ".git"
    }

    private func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw AgentError.system(environmental: true) { "cannot create \(path): \($0); check free space" }
        }
    }
}
