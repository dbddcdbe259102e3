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
    let fallbackSubdir: String?

    public init(settings: Settings) {
        layout = settings.layout
        shared = settings.shared
        fallbackSubdir = settings.tree.subdir
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
        let plan = try ReleaseTree.plan(id, layout: layout, repository: repository, fallbackSubdir: fallbackSubdir)
        var report = DriftReport(sha: sha)
        func isOwn(_ path: String) -> Bool {
            path == "REVISION" || shared.contains { path == $0 || path.hasPrefix($0 + "/") }
        }
        let tracked = plan.files.filter { !isOwn($0.path) }
        // A directory of the tree that is now a symlink (out of the release), a file or
        // nothing is drift, and nothing under it is read through it.
        let directories = Self.directories(of: tracked.map(\.path)).filter { !isOwn($0) }
        var broken: [String] = []
        for directory in directories where !broken.contains(where: { directory.hasPrefix($0 + "/") }) {
            switch Self.checkDirectory(release + "/" + directory) {
            case nil: continue
            case .missing?: report.missing.append(directory + "/")
            case .typeChanged(let now)?:
                report.typeChanged.append("\(directory) (a directory in the commit, now \(now))")
            default: break
            }
            broken.append(directory)
        }
        let entries = tracked.filter { entry in !broken.contains { entry.path.hasPrefix($0 + "/") } }
        let inTree = Set(tracked.map(\.path)).union(directories)
        for (entry, finding) in zip(entries, Self.check(entries, release: release)) {
            switch finding {
            case .missing: report.missing.append(entry.path)
            case .typeChanged(let was): report.typeChanged.append("\(entry.path) (\(was) in the commit)")
            case .modified(let detail): report.modified.append(entry.path + detail)
            case .link(let target):
                if try repository.blobText(entry.oid) != target { report.modified.append(entry.path) }
            case nil: break
            }
        }
        report.added = FileSystem.files(under: release).filter { !inTree.contains($0) && !isOwn($0) }
        report.added.sort()
        return report
    }
}

extension Verify {
    /// Each entry against the release. Hashing is most of the time: split over the cores
    /// (each finding goes to its slot).
    static func check(_ entries: [TreeWriter.Entry], release: String) -> [Finding?] {
        var findings = [Finding?](repeating: nil, count: entries.count)
        let threads = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
        findings.withUnsafeMutableBufferPointer { slots in
            // Each thread writes only its own indices: no two touch one slot.
            nonisolated(unsafe) let base = slots.baseAddress
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                var index = part
                while index < entries.count {
                    base?[index] = Self.check(entries[index], release: release)
                    index += threads
                }
            }
        }
        return findings
    }

    /// Every directory that holds a file of `paths` (`a`, `a/b` for `a/b/c`), parents first.
    static func directories(of paths: [String]) -> [String] {
        var found = Set<String>()
        for path in paths {
            var parts = path.split(separator: "/").dropLast()
            while !parts.isEmpty, found.insert(parts.joined(separator: "/")).inserted { parts = parts.dropLast() }
        }
        return found.sorted { $0.count == $1.count ? $0 < $1 : $0.count < $1.count }
    }

    /// A path the tree has as a directory: nil when it still is one (not followed if a link).
    static func checkDirectory(_ path: String) -> Finding? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return nil
        case S_IFLNK:
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
            return .typeChanged("a symlink to \(target)")
        case S_IFREG: return .typeChanged("a file")
        default: return .typeChanged("neither a directory nor a file")
        }
    }
}

enum Finding {
    case missing
    case typeChanged(String)
    case modified(String)
    /// A symlink, as the commit has it: its target, compared with the blob by the caller.
    case link(String)
}

extension Verify {
    /// One file against its tree entry, without libgit2 objects (thread-safe).
    static func check(_ entry: TreeWriter.Entry, release: String) -> Finding? {
        let path = release + "/" + entry.path
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        let kind = st.st_mode & S_IFMT
        if entry.mode == 0o120000 {
            guard kind == S_IFLNK else { return .typeChanged("a symlink") }
            return .link((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "")
        }
        guard kind == S_IFREG else { return .typeChanged("a file") }
        let executable = st.st_mode & 0o100 != 0
        if executable != (entry.mode == 0o100755) {
            return .modified(
                " (mode \(executable ? "755" : "644"), the commit has \(entry.mode == 0o100755 ? "755" : "644"))")
        }
        var oid = git_oid()
        var expected = entry.oid
        guard git_odb_hashfile(&oid, path, GIT_OBJECT_BLOB) == 0, git_oid_equal(&oid, &expected) != 0 else {
            return .modified("")
        }
        return nil
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
