import CLibGit2
import ReleaseAgent

/// Between libgit2's binary ids and the plain `CommitID` that leaves the wrapper.
extension CommitID {
    init(oid: git_oid) {
        var copy = oid
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, 41, &copy)
        self.init(hex: String(cString: buffer))!
    }

    var oid: git_oid {
        var oid = git_oid()
        _ = git_oid_fromstr(&oid, hex)
        return oid
    }
}
