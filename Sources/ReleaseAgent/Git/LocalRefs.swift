import Foundation

/// Reads a branch head straight from a local repository's files, the way git's "files" ref
/// backend stores them (a loose `refs/heads/<branch>` file, else a line of `packed-refs`).
///
/// A no-op `poll` of a local remote then needs no libgit2 at all: `git_libgit2_init` alone
/// costs ~4 ms here (Debian's libgit2 parses every CA certificate at init), more than the
/// whole `git ls-remote` it is measured against. Anything but the plain layout (a `.git`
/// file, a linked worktree's `commondir`, reftable, a symbolic or sha256 ref, an odd branch
/// name) answers nil, and the caller asks libgit2, which also words the errors.
public enum LocalRefs {
    public static func branchHead(repository path: String, branch: String) -> CommitID? {
        guard path.hasPrefix("/"), isPlainBranchName(branch), let gitDir = gitDirectory(of: path) else { return nil }
        if FileSystem.exists(gitDir + "/commondir") || FileSystem.exists(gitDir + "/reftable") { return nil }
        let name = "refs/heads/" + branch
        switch readLoose(gitDir + "/" + name) {
        case .found(let id): return id
        case .unusable: return nil
        case .absent: return packed(gitDir + "/packed-refs", name: name)
        }
    }

    /// `path` itself when it is a bare repository, `path/.git` when that is a directory.
    static func gitDirectory(of path: String) -> String? {
        var info = stat()
        if lstat(path + "/.git", &info) == 0 {
            return (info.st_mode & S_IFMT) == S_IFDIR ? path + "/.git" : nil
        }
        let isBare =
            FileSystem.isDirectory(path + "/objects") && FileSystem.isDirectory(path + "/refs")
            && FileSystem.exists(path + "/HEAD")
        return isBare ? path : nil
    }

    /// Letters, digits and `-_./` in slash-separated parts that are not empty, not dot-led
    /// and not `.lock`: every name this reader can map to a file without surprises.
    static func isPlainBranchName(_ branch: String) -> Bool {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")
        guard !branch.isEmpty, branch.count <= 200, branch.allSatisfy({ allowed.contains($0) }) else { return false }
        return branch.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && !part.hasPrefix(".") && !part.hasSuffix(".lock")
        } && !branch.contains("..")
    }

    enum Loose { case found(CommitID), absent, unusable }

    static func readLoose(_ file: String) -> Loose {
        var info = stat()
        guard lstat(file, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .absent : .unusable }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_size == 41,
            let data = FileManager.default.contents(atPath: file), data.last == UInt8(ascii: "\n"),
            let id = CommitID(hex: String(decoding: data.dropLast(), as: UTF8.self))
        else { return .unusable }
        return .found(id)
    }

    /// The id on `name`'s line of packed-refs; nil when the file or the line is missing.
    static func packed(_ file: String, name: String) -> CommitID? {
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard line.count == 41 + name.utf8.count, !line.hasPrefix("#"), !line.hasPrefix("^") else { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1] == name { return CommitID(hex: String(parts[0])) }
        }
        return nil
    }
}
