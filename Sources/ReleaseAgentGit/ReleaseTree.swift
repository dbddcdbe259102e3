import Foundation
import ReleaseAgent

/// What a release on disk was written from: its commit's tree, from the directory its record
/// names (`subdir`), and under each submodule the submodule's tree, read from the caches by
/// the URLs the record keeps. Nothing is fetched. `verify` compares the release with it;
/// `build-cache` leaves out what it tracks.
enum ReleaseTree {
    static func plan(
        _ id: CommitID, layout: Layout, repository: Repository, fallbackSubdir: String?
    ) throws -> TreeWriter.Plan {
        let record = RecordStore(layout: layout).read(id.hex)
        // The directory the release was made from, as its record says (subdir may have changed since).
        let subdir = record.map(\.subdir) ?? fallbackSubdir
        var plan: TreeWriter.Plan
        do { plan = try TreeWriter.plan(repository: repository, commit: id, subdir: subdir) } catch is GitError {
            throw AgentError.failed(
                "\(id.short) is not in the cache \(layout.cache); deploy it again to fetch it")
        }
        // No map: the release was written with submodules off (or before they were fetched at
        // all, when a commit with gitlinks was refused): each gitlink is an empty directory.
        if let recorded = record?.submodules, !plan.submodules.isEmpty {
            let more = try SubmoduleCheckout.expanded(plan, recorded: recorded, cacheDirectory: layout.modules)
            plan.directories += more.directories
            plan.files += more.files
        }
        return plan
    }
}
