import CLibGit2
import Foundation
import ReleaseAgent

extension Repository {
    /// The first path (added, removed or changed between the trees of `old` and `new`) that
    /// `accept` takes, or nil when every change lies outside. libgit2 compares tree ids first,
    /// so a directory that did not change costs nothing however large it is.
    func firstChange(from old: CommitID, to new: CommitID, where accept: (String) -> Bool) throws -> String? {
        let before = try tree(of: old)
        defer { git_tree_free(before) }
        let after = try tree(of: new)
        defer { git_tree_free(after) }
        var diff: OpaquePointer?
        try GitError.check(
            git_diff_tree_to_tree(&diff, pointer, before, after, nil), "compare \(old.short) with \(new.short)")
        defer { git_diff_free(diff) }
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
            for path in [delta.old_file.path, delta.new_file.path] {
                if let path, accept(String(cString: path)) { return String(cString: path) }
            }
        }
        return nil
    }
}

extension GitCache {
    /// `paths`: why `target` needs no build while `live` runs (it changes nothing under them),
    /// or nil when it must be built: a change under a prefix, no prefixes, or a live commit the
    /// cache cannot compare with (then building is the safe side).
    public func skipReason(_ target: CommitID, live: CommitID, tree: TreeSettings) -> String? {
        guard !tree.paths.isEmpty else { return nil }
        let change: String?
        do { change = try repository.firstChange(from: live, to: target, where: tree.watches) } catch { return nil }
        guard change == nil else { return nil }
        return
            "changes nothing under paths (\(tree.paths.joined(separator: ", ").terminalSafe)) since the live \(live.short)"
    }
}
