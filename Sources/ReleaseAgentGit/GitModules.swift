import CLibGit2
import Foundation
import ReleaseAgent

/// `.gitmodules` at a commit, read with libgit2's config parser (the file is git-config):
/// submodule path -> url as written. libgit2 1.5 reads config only from a file, so the blob
/// goes to a scratch file first. A file with an `[include]` or `[includeIf]` section is
/// refused: libgit2 would follow it to a file of this machine, and git itself ignores
/// includes in `.gitmodules`.
enum GitModules {
    static func read(_ commit: CommitID, in repository: Repository, scratch: String) throws -> [String: String] {
        guard let text = try blob(".gitmodules", at: commit, in: repository) else { return [:] }
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }.lowercased()
            if trimmed.hasPrefix("[include") {
                throw AgentError.failed(
                    ".gitmodules of \(commit.short) has an include section, which release-agent does not follow; nothing was checked out; remove it"
                )
            }
        }
        try FileSystem.makeDirectory(scratch, mode: 0o700)
        let file = scratch + "/gitmodules-\(getpid()).tmp"
        try FileSystem.writeAtomically(Data(text.utf8), to: file)
        defer { unlink(file) }
        var config: OpaquePointer?
        guard git_config_open_ondisk(&config, file) == 0 else {
            throw AgentError.failed(
                ".gitmodules of \(commit.short) cannot be read as git config (\(GitError.lastMessage())); nothing was checked out; fix it"
            )
        }
        defer { git_config_free(config) }
        final class Collector {
            var entries: [(String, String)] = []
        }
        let collector = Collector()
        _ = git_config_foreach(
            config,
            { entry, payload in
                guard let entry, let payload, let name = entry.pointee.name, let value = entry.pointee.value else {
                    return 0
                }
                Unmanaged<Collector>.fromOpaque(payload).takeUnretainedValue().entries.append(
                    (String(cString: name), String(cString: value)))
                return 0
            }, Unmanaged.passUnretained(collector).toOpaque())
        // submodule.<name>.path and submodule.<name>.url; the name may hold dots.
        var paths: [String: String] = [:]
        var urls: [String: String] = [:]
        for (name, value) in collector.entries where name.hasPrefix("submodule.") {
            let rest = name.dropFirst("submodule.".count)
            guard let dot = rest.lastIndex(of: ".") else { continue }
            let (module, key) = (String(rest[..<dot]), rest[rest.index(after: dot)...])
            if key == "path" { paths[module] = value }
            if key == "url" { urls[module] = value }
        }
        var result: [String: String] = [:]
        for (module, path) in paths {
            var path = path
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            if let url = urls[module] { result[path] = url }
        }
        return result
    }

    /// The text of the blob at `path` in the tree of `commit`, nil when there is none.
    private static func blob(_ path: String, at commit: CommitID, in repository: Repository) throws -> String? {
        let tree = try repository.tree(of: commit)
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, path) == 0, let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        var blob: OpaquePointer?
        try GitError.check(git_blob_lookup(&blob, repository.pointer, git_tree_entry_id(entry)), "read \(path)")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size <= 1 << 20 else {
            throw AgentError.failed(
                "\(path) of \(commit.short) is larger than 1 MiB; nothing was checked out; it cannot be a real \(path)")
        }
        return String(decoding: UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: size), as: UTF8.self)
    }
}
