import CLibGit2
import Foundation
import ReleaseAgent

/// Owns one `git_repository` handle; freed in `deinit`.
final class Repository {
    let pointer: OpaquePointer
    let path: String

    private init(pointer: OpaquePointer, path: String) {
        self.pointer = pointer
        self.path = path
    }

    deinit { git_repository_free(pointer) }

    /// Opens the bare cache at `path`, creating it on first use.
    static func openOrCreateBare(at path: String) throws -> Repository {
        LibGit2.ensureInitialized()
        var handle: OpaquePointer?
        if FileManager.default.fileExists(atPath: path + "/HEAD") {
            try GitError.check(git_repository_open_bare(&handle, path), "open the cache \(path)")
        } else {
            try GitError.check(git_repository_init(&handle, path, 1), "create the cache \(path)")
        }
        guard let handle else { throw GitError(code: -1, message: "no handle", operation: "open \(path)") }
        return Repository(pointer: handle, path: path)
    }

    /// The commit a reference (full name) points at, or nil when it does not exist.
    func resolveReference(_ name: String) throws -> CommitID? {
        var oid = git_oid()
        let rc = git_reference_name_to_id(&oid, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "resolve \(name)")
        return CommitID(oid: oid)
    }

    /// The commit a reference points at after peeling annotated tags; nil when it does not exist.
    func peeledCommit(_ name: String) throws -> CommitID? {
        var reference: OpaquePointer?
        let rc = git_reference_lookup(&reference, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "resolve \(name)")
        defer { git_reference_free(reference) }
        var object: OpaquePointer?
        try GitError.check(git_reference_peel(&object, reference, GIT_OBJECT_COMMIT), "peel \(name) to a commit")
        defer { git_object_free(object) }
        guard let object, let id = git_object_id(object) else { return nil }
        return CommitID(oid: id.pointee)
    }

    /// Looks up a commit by full id or unique prefix (at least 4 hex digits).
    func lookupCommit(prefix: String) throws -> CommitID? {
        guard prefix.count >= 4, prefix.count <= 40, prefix.allSatisfy({ $0.isHexDigit }) else { return nil }
        var oid = git_oid()
        guard git_oid_fromstrn(&oid, prefix, prefix.utf8.count) == 0 else { return nil }
        var commit: OpaquePointer?
        let rc = git_commit_lookup_prefix(&commit, pointer, &oid, prefix.utf8.count)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "look up commit \(prefix)")
        defer { git_commit_free(commit) }
        guard let commit, let id = git_commit_id(commit) else { return nil }
        return CommitID(oid: id.pointee)
    }

    func commitInfo(_ id: CommitID) throws -> CommitInfo {
        var oid = id.oid
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, pointer, &oid), "read commit \(id.short)")
        defer { git_commit_free(commit) }
        let author = git_commit_author(commit)
        let name = author.flatMap { $0.pointee.name.map { String(cString: $0) } } ?? ""
        let summary = git_commit_summary(commit).map { String(cString: $0) } ?? ""
        return CommitInfo(id: id, author: name, date: Int64(git_commit_time(commit)), subject: summary)
    }

    /// True when `descendant` has `ancestor` in its history (a fast-forward move).
    func isDescendant(_ descendant: CommitID, of ancestor: CommitID) throws -> Bool {
        if descendant == ancestor { return true }
        var a = descendant.oid
        var b = ancestor.oid
        let rc = git_graph_descendant_of(pointer, &a, &b)
        try GitError.check(rc, "compare \(descendant.short) with \(ancestor.short)")
        return rc == 1
    }

    /// Every reference name in the cache.
    func referenceNames() throws -> [String] {
        var array = git_strarray()
        try GitError.check(git_reference_list(&array, pointer), "list the references of \(path)")
        defer { git_strarray_dispose(&array) }
        return (0..<array.count).compactMap { array.strings[$0].map { String(cString: $0) } }
    }

    func removeReference(_ name: String) throws {
        let rc = git_reference_remove(pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return }
        try GitError.check(rc, "remove \(name)")
    }

    /// The signature and the signed bytes of a commit; nil when it is unsigned.
    func commitSignature(_ id: CommitID) throws -> (signature: Data, payload: Data, committerTime: Int64)? {
        var oid = id.oid
        var signature = git_buf()
        var payload = git_buf()
        defer {
            git_buf_dispose(&signature)
            git_buf_dispose(&payload)
        }
        let rc = git_commit_extract_signature(&signature, &payload, pointer, &oid, nil)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "read the signature of \(id.short)")
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, pointer, &oid), "read commit \(id.short)")
        defer { git_commit_free(commit) }
        let time = git_commit_committer(commit).map { Int64($0.pointee.when.time) } ?? Int64(git_commit_time(commit))
        func data(_ buffer: git_buf) -> Data {
            guard let bytes = buffer.ptr else { return Data() }
            return Data(bytes: bytes, count: buffer.size)
        }
        return (data(signature), data(payload), time)
    }

    /// The signature and signed bytes of the annotated tag `name` points at (git appends a tag's
    /// signature to its message); nil for a lightweight or an unsigned tag.
    func tagSignature(_ name: String) throws -> (signature: Data, payload: Data, taggerTime: Int64)? {
        var oid = git_oid()
        let rc = git_reference_name_to_id(&oid, pointer, name)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check(rc, "resolve \(name)")
        var tag: OpaquePointer?
        guard git_tag_lookup(&tag, pointer, &oid) == 0 else { return nil }  // not an annotated tag
        defer { git_tag_free(tag) }
        let time = git_tag_tagger(tag).map { Int64($0.pointee.when.time) } ?? 0
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, pointer), "open the object store")
        defer { git_odb_free(odb) }
        var object: OpaquePointer?
        try GitError.check(git_odb_read(&object, odb, &oid), "read the tag \(name)")
        defer { git_odb_object_free(object) }
        guard let bytes = git_odb_object_data(object) else { return nil }
        let raw = Data(bytes: bytes, count: git_odb_object_size(object))
        for armor in ["\n-----BEGIN SSH SIGNATURE-----", "\n-----BEGIN PGP SIGNATURE-----"] {
            if let range = raw.range(of: Data(armor.utf8), options: .backwards) {
                let start = range.lowerBound + 1
                return (Data(raw[start...]), Data(raw[..<start]), time)
            }
        }
        return nil
    }

    /// Commits reachable from `head` and not from `base` (base excluded), newest first: how
    /// many, and the subjects of the first `subjects` of them.
    func commitsBetween(_ base: CommitID, _ head: CommitID, subjects limit: Int) throws -> (Int, [String]) {
        var walk: OpaquePointer?
        try GitError.check(git_revwalk_new(&walk, pointer), "walk the history")
        defer { git_revwalk_free(walk) }
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
        var headOID = head.oid
        var baseOID = base.oid
        try GitError.check(git_revwalk_push(walk, &headOID), "walk from \(head.short)")
        try GitError.check(git_revwalk_hide(walk, &baseOID), "hide \(base.short)")
        var count = 0
        var subjects: [String] = []
        var oid = git_oid()
        while git_revwalk_next(&oid, walk) == 0 {
            count += 1
            if subjects.count < limit, let info = try? commitInfo(CommitID(oid: oid)) { subjects.append(info.subject) }
            if count >= 100_000 { break }
        }
        return (count, subjects)
    }

    /// The tree of commit `id` (the caller frees it).
    func tree(of id: CommitID) throws -> OpaquePointer? {
        var oid = id.oid
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, pointer, &oid), "read commit \(id.short)")
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try GitError.check(git_commit_tree(&tree, commit), "read the tree of \(id.short)")
        return tree
    }
}
