import CLibGit2
import Foundation
import ReleaseAgent

/// `verify`: the live release's files against its commit's tree, by git blob id (each file
/// hashed as git hashes it), mode and symlink target. `shared` links and `REVISION` are the
/// agent's own, not drift; files the tree does not have (build output) are counted apart.
public struct DriftReport: Codable, Sendable {
    public var sha: String
    public var modified: [String] = []
    public var missing: [String] = []
    public var typeChanged: [String] = []
    public var added: [String] = []

    public var drifted: Bool { !(modified.isEmpty && missing.isEmpty && typeChanged.isEmpty) }

    public func text(listAdded: Bool) -> String {
        var lines = [
            "verify   releases/\(sha.prefix(12)): \(modified.count) modified, \(missing.count) missing, \(typeChanged.count) type changed, \(added.count) added (not in the commit: build output)"
        ]
        lines += modified.map { "modified \($0.terminalSafe)" }
        lines += missing.map { "missing  \($0.terminalSafe)" }
        lines += typeChanged.map { "type     \($0.terminalSafe)" }
        if listAdded { lines += added.map { "added    \($0.terminalSafe)" } }
        return lines.joined(separator: "\n")
    }
}

public struct Verify {
    let layout: Layout
    let shared: [String]

    public init(settings: Settings) {
        layout = settings.layout
        shared = settings.shared
    }

    public func run() throws -> DriftReport {
        guard let sha = layout.currentSHA(), let id = CommitID(hex: sha) else {
            throw AgentError.failed("nothing is live in \(layout.root); deploy first")
        }
        let release = layout.release(sha)
        guard FileSystem.isDirectory(release) else {
            throw AgentError.failed("current points at \(release), which is missing; deploy or roll back to repair it")
        }
        guard FileSystem.exists(layout.cache + "/HEAD") else {
            throw AgentError.failed("the cache \(layout.cache) is missing; deploy once to fetch it")
        }
        let repository = try Repository.openOrCreateBare(at: layout.cache)
        let plan: TreeWriter.Plan
        do { plan = try TreeWriter.plan(repository: repository, commit: id) } catch {
            throw AgentError.failed("\(sha.prefix(12)) is not in the cache \(layout.cache); deploy it again to fetch it")
        }
        var report = DriftReport(sha: sha)
        func isOwn(_ path: String) -> Bool {
            path == "REVISION" || shared.contains { path == $0 || path.hasPrefix($0 + "/") }
        }
        var inTree = Set<String>()
        for entry in plan.files where !isOwn(entry.path) {
            inTree.insert(entry.path)
            let path = release + "/" + entry.path
            var st = stat()
            guard lstat(path, &st) == 0 else {
                report.missing.append(entry.path)
                continue
            }
            let kind = st.st_mode & S_IFMT
            if entry.mode == 0o120000 {
                guard kind == S_IFLNK else {
                    report.typeChanged.append("\(entry.path) (a symlink in the commit)")
                    continue
                }
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? ""
                if try repository.blobText(entry.oid) != target { report.modified.append(entry.path) }
                continue
            }
            guard kind == S_IFREG else {
                report.typeChanged.append("\(entry.path) (a file in the commit)")
                continue
            }
            let executable = st.st_mode & 0o100 != 0
            if executable != (entry.mode == 0o100755) {
                report.modified.append("\(entry.path) (mode \(executable ? "755" : "644"), the commit has \(entry.mode == 0o100755 ? "755" : "644"))")
                continue
            }
            var oid = git_oid()
            var expected = entry.oid
            guard git_odb_hashfile(&oid, path, GIT_OBJECT_BLOB) == 0, git_oid_equal(&oid, &expected) != 0 else {
                report.modified.append(entry.path)
                continue
            }
        }
        let prefix = release + "/"
        if let walk = FileManager.default.enumerator(atPath: release) {
            for case let name as String in walk where !inTree.contains(name) && !isOwn(name) {
                var st = stat()
                guard lstat(prefix + name, &st) == 0, st.st_mode & S_IFMT != S_IFDIR else { continue }
                report.added.append(name)
            }
        }
        report.added.sort()
        return report
    }
}

extension Repository {
    /// A blob's bytes as text (a symlink's target).
    func blobText(_ id: git_oid) throws -> String {
        var oid = id
        var blob: OpaquePointer?
        try GitError.check(git_blob_lookup(&blob, pointer, &oid), "read a blob")
        defer { git_blob_free(blob) }
        guard let bytes = git_blob_rawcontent(blob) else { return "" }
        return String(decoding: Data(bytes: bytes, count: Int(git_blob_rawsize(blob))), as: UTF8.self)
    }
}
