import CShims
import Foundation

/// `build-cache`: paths copied from the live release into the new one before the build, so it
/// starts warm (Deployer's `copy_dirs`). Every step goes through descriptors opened with
/// O_NOFOLLOW from the two release directories: a symlink on the way to a cached path, or a
/// cached path that is itself a symlink, is skipped with a line, never followed. Files are
/// reflinked where the file system can (FICLONE), else copied by the kernel; never hard-linked,
/// so a build that edits a file in place changes only its own release's copy. What the new
/// checkout already has wins: the copy only adds what is missing.
package struct BuildCache {
    package struct Summary: Equatable {
        package var files = 0
        package var bytes: UInt64 = 0
        /// Why an entry was not copied, one line each (a link out, a socket...).
        package var skipped: [String] = []
    }

    /// Deeper than this is no cache a build made: the copy stops there and says so.
    static let maxDepth = 128

    let paths: [String]
    /// Files and symlinks (paths in the release) the live release's commit has: the new
    /// checkout is their authority, so the cache never brings one back that a commit deleted.
    let tracked: Set<String>

    package init(paths: [String], tracked: Set<String> = []) {
        self.paths = paths
        self.tracked = tracked
    }

    /// Copies each path from `live` into `release` (both release directories).
    package func copy(from live: String, into release: String) throws -> Summary {
        var summary = Summary()
        for path in paths {
            try copy(path, from: live, into: release, summary: &summary)
        }
        return summary
    }

    private func copy(_ path: String, from live: String, into release: String, summary: inout Summary) throws {
        let parts = path.split(separator: "/").map(String.init)
        guard let name = parts.last else { return }
        // The live side: a missing path is a cold start, a link on the way is not followed.
        guard var source = Directory(open: live) else { return }
        defer { source.close() }
        for part in parts.dropLast() {
            guard let next = source.child(part) else {
                if errno != ENOENT {
                    summary.skipped.append("\(path): \(part) on the way is a symlink or no directory")
                }
                return
            }
            source.close()
            source = next
        }
        var st = stat()
        guard fstatat(source.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        guard st.st_mode & S_IFMT != S_IFLNK else {
            summary.skipped.append("\(path): a symlink in the live release, not followed")
            return
        }
        // The new side: parents made as needed; a link from the checkout on the way is refused.
        guard var target = Directory(open: release) else {
            throw AgentError.system(environmental: true) { "cannot open \(release): \($0); check permissions" }
        }
        defer { target.close() }
        for part in parts.dropLast() {
            if mkdirat(target.fd, part, 0o755) != 0 && errno != EEXIST {
                throw BuildCache.failure("create", release + "/" + path)
            }
            guard let next = target.child(part) else {
                summary.skipped.append("\(path): \(part) in the new release is a symlink or no directory")
                return
            }
            target.close()
            target = next
        }
        let walk = Walk(root: path, tracked: tracked)
        try walk.entry(name, shown: path, relative: [], from: source.fd, to: target.fd, depth: 0, summary: &summary)
    }

    /// Writing the new release failed (no space, no rights): the build cannot start warm as asked.
    static func failure(_ verb: String, _ path: String) -> AgentError {
        AgentError.environment(
            "build-cache: cannot \(verb) \(path): \(FileSystem.errnoText()); \(FileSystem.remedy(for: errno, path: path))"
        )
    }

    /// A directory held open; `child` never follows a symlink.
    private struct Directory {
        var fd: Int32

        init?(open path: String) {
            fd = Foundation.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { return nil }
        }

        private init(fd: Int32) { self.fd = fd }

        func child(_ name: String) -> Directory? {
            let fd = openat(self.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            return fd < 0 ? nil : Directory(fd: fd)
        }

        func close() { Foundation.close(fd) }
    }

    /// The recursive copy of one cached path.
    private struct Walk {
        /// The cached path, as the setting gives it (for lines and errors).
        let root: String
        let tracked: Set<String>

        /// `name` in `source`, shown as `shown`; `relative` is its directory's path inside the
        /// cached path (empty for the cached path itself and its entries).
        func entry(
            _ name: String, shown: String, relative: [String], from source: Int32, to target: Int32, depth: Int,
            summary: inout Summary
        ) throws {
            var st = stat()
            guard fstatat(source, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
            // Tracked by the live commit: the new checkout has it, or deleted it on purpose.
            if st.st_mode & S_IFMT != S_IFDIR && tracked.contains(shown) { return }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard depth < BuildCache.maxDepth else {
                    summary.skipped.append("\(shown): deeper than \(BuildCache.maxDepth) directories, not copied")
                    return
                }
                try directory(
                    name, st, shown: shown, relative: relative, from: source, to: target, depth: depth,
                    summary: &summary)
            case S_IFREG:
                try file(name, st, shown: shown, from: source, to: target, summary: &summary)
            case S_IFLNK:
                try link(name, relative: relative, shown: shown, from: source, to: target, summary: &summary)
            default:
                summary.skipped.append("\(shown): not a file, directory or symlink, not copied")
            }
        }

        private func directory(
            _ name: String, _ st: stat, shown: String, relative: [String], from source: Int32, to target: Int32,
            depth: Int, summary: inout Summary
        ) throws {
            let inner = depth == 0 ? [] : relative + [name]
            let from = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard from >= 0 else { return unreadable(shown, &summary) }
            defer { close(from) }
            let created = mkdirat(target, name, 0o700) == 0
            if !created && errno != EEXIST { throw BuildCache.failure("create", shown) }
            let to = openat(target, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard to >= 0 else {
                // The checkout has a file or a symlink there: it wins.
                summary.skipped.append("\(shown): the new release has a file or symlink there, kept")
                return
            }
            defer { close(to) }
            for child in try names(in: from, shown: shown) {
                try entry(
                    child, shown: shown + "/" + child, relative: inner, from: from, to: to, depth: depth + 1,
                    summary: &summary)
            }
            // A directory the checkout made keeps its own mode and times.
            guard created else { return }
            fchmod(to, st.st_mode & 0o777)
            var times = [st.st_atim, st.st_mtim]
            futimens(to, &times)
        }

        private func file(
            _ name: String, _ st: stat, shown: String, from source: Int32, to target: Int32, summary: inout Summary
        ) throws {
            let from = openat(source, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard from >= 0 else { return unreadable(shown, &summary) }
            defer { close(from) }
            let to = openat(target, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if to < 0 && errno == EEXIST { return }  // the checkout's own file wins
            guard to >= 0 else { throw BuildCache.failure("create", shown) }
            defer { close(to) }
            if cshims_ficlone(to, from) != 0 {
                var left = Int(st.st_size)
                while left > 0 {
                    let n = cshims_copy_file_range(from, to, UInt(left))
                    if n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) {
                        try copyByReading(from, to, shown: shown)
                        break
                    }
                    guard n >= 0 else { throw BuildCache.failure("copy", shown) }
                    if n == 0 { break }  // the source shrank under us: what is there is copied
                    left -= n
                }
            }
            // No set-id bits: a cache is data a build made, not something to run with more rights.
            fchmod(to, st.st_mode & 0o777)
            var times = [st.st_atim, st.st_mtim]
            futimens(to, &times)
            summary.files += 1
            summary.bytes += UInt64(st.st_size)
        }

        private func copyByReading(_ from: Int32, _ to: Int32, shown: String) throws {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                guard n >= 0 else { throw BuildCache.failure("read", shown) }
                if n == 0 { return }
                var offset = 0
                while offset < n {
                    let written = buffer.withUnsafeBytes { write(to, $0.baseAddress! + offset, n - offset) }
                    guard written > 0 else { throw BuildCache.failure("write", shown) }
                    offset += written
                }
            }
        }

        /// A symlink is copied as a symlink when its target, read as a path from the link's own
        /// directory, stays inside the cached path; one that points out (or is absolute) is
        /// skipped with a line.
        private func link(
            _ name: String, relative: [String], shown: String, from source: Int32, to target: Int32,
            summary: inout Summary
        ) throws {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(source, name, &buffer, buffer.count - 1)
            guard n >= 0 else { return unreadable(shown, &summary) }
            let destination = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard Self.staysInside(destination, from: relative) else {
                summary.skipped.append(
                    "\(shown): a symlink to \(destination.terminalSafe), outside \(root), not copied")
                return
            }
            if symlinkat(destination, target, name) != 0 && errno != EEXIST {
                throw BuildCache.failure("create the link", shown)
            }
        }

        /// `destination` taken from the directory `relative` (inside the cached path) stays inside it.
        static func staysInside(_ destination: String, from relative: [String]) -> Bool {
            guard !destination.isEmpty, !destination.hasPrefix("/") else { return false }
            var depth = relative.count
            for part in destination.split(separator: "/", omittingEmptySubsequences: true) {
                switch part {
                case ".": continue
                case "..":
                    depth -= 1
                    if depth < 0 { return false }
                default: depth += 1
                }
            }
            return true
        }

        private func names(in fd: Int32, shown: String) throws -> [String] {
            let copy = dup(fd)
            guard copy >= 0, let dir = fdopendir(copy) else { throw BuildCache.failure("list", shown) }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = FileSystem.entryName(entry)
                if name != "." && name != ".." { names.append(name) }
            }
            return names
        }

        /// What the live release has but the agent cannot read (a build left it mode 000): the
        /// cache is an optimisation, so that entry is skipped with a line, the deploy goes on.
        private func unreadable(_ shown: String, _ summary: inout Summary) {
            summary.skipped.append("\(shown): cannot be read (\(FileSystem.errnoText())), not copied")
        }
    }
}
