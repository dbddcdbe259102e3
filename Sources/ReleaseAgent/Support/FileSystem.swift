import CShims
import Foundation

/// The few file operations the store relies on, with errors that name the path.
public enum FileSystem {
    package static func errnoText() -> String { String(cString: strerror(errno)) }

    /// `realpath(3)` of an existing path; nil when it does not exist (yet).
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates `path` (and missing parents) with `mode`.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, !isDirectory(parent) { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw AgentError.system { "cannot create directory \(path): \($0); check its parent's permissions" }
        }
    }

    /// fsync of a directory, so a rename or create in it survives a power loss.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Writes `data` under a temp name, fsyncs it and renames it over `path`.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let temp = "\(path).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AgentError.system { "cannot write \(temp): \($0); \(remedy(for: errno, path: path))" }
        }
        let ok = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        let reason = errnoText()
        let synced = fsync(fd) == 0
        close(fd)
        guard ok, synced, rename(temp, path) == 0 else {
            unlink(temp)
            throw AgentError.failed("cannot write \(path): \(reason); check free space and permissions")
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// What to do about a failed write of `path`, by errno.
    static func remedy(for code: Int32, path: String) -> String {
        switch code {
        case ENOENT, ENOTDIR:
            return "create the directory \((path as NSString).deletingLastPathComponent) first"
        case EACCES, EPERM, EROFS: return "check the permissions of its directory"
        case ENOSPC, EDQUOT, EFBIG: return "check free space"
        default: return "check free space and permissions"
        }
    }

    /// Removes `path` and everything under it without ever following a symlink:
    /// a symlink is unlinked, never entered.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            if unlink(path) != 0 && errno != ENOENT {
                throw AgentError.system { "cannot remove \(path): \($0)" }
            }
            return
        }
        try removeTree(in: AT_FDCWD, name: path, path: path)
    }

    /// Removes the directory `name` inside the open directory `dirfd` (or a path, with
    /// AT_FDCWD), never following a symlink.
    package static func removeTree(in dirfd: Int32, name: String, path: String) throws {
        let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw AgentError.system { "cannot open \(path) to remove it: \($0)" } }
        // A build may have made its own directory read-only (`chmod -R a-w .`).
        fchmod(child, 0o700)
        do { try removeContents(of: child, path: path) } catch {
            close(child)
            throw error
        }
        close(child)
        if unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
            throw AgentError.system { "cannot remove \(path): \($0)" }
        }
    }

    /// The name in a `readdir` entry.
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
    }

    /// Every non-directory below `root`, relative, with readdir's d_type (FileManager's
    /// enumerator stats and bridges each name: several times slower on 20,000 files).
    package static func files(under root: String) -> [String] {
        var result: [String] = []
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            guard let dir = opendir(relative.isEmpty ? root : root + "/" + relative) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = entryName(entry)
                if name == "." || name == ".." { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                if entry.pointee.d_type == UInt8(DT_DIR) {
                    pending.append(path)
                } else if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                    var st = stat()
                    if lstat(root + "/" + path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
                        pending.append(path)
                    } else {
                        result.append(path)
                    }
                } else {
                    result.append(path)
                }
            }
        }
        return result
    }

    private static func removeContents(of dirfd: Int32, path: String) throws {
        let dupfd = dup(dirfd)
        guard dupfd >= 0, let dir = fdopendir(dupfd) else {
            throw AgentError.system { "cannot list \(path): \($0)" }
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = entryName(entry)
            if name != "." && name != ".." { names.append(name) }
        }
        for name in names {
            var st = stat()
            guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw AgentError.system { "cannot open \(path)/\(name): \($0)" } }
                // A directory we cannot write into (a build chmod'ed it) is made writable first.
                fchmod(child, 0o700)
                do { try removeContents(of: child, path: "\(path)/\(name)") } catch {
                    close(child)
                    throw error
                }
                close(child)
                if unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
                    throw AgentError.system { "cannot remove \(path)/\(name): \($0)" }
                }
            } else if unlinkat(dirfd, name, 0) != 0 && errno != ENOENT {
                throw AgentError.system { "cannot remove \(path)/\(name): \($0)" }
            }
        }
    }

    /// Flushes every file written under `path` (one syncfs instead of an fsync per file).
    public static func syncFileSystem(of path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = cshims_syncfs(fd)
        close(fd)
    }

    /// Removes `paths` with `rm -rf --one-file-system` (which never follows symlinks) in a
    /// detached process, so a deploy does not wait for old releases to be deleted. The
    /// paths are already out of `releases/`; whatever a crash leaves is removed by the
    /// next operation's recovery.
    public static func removeInBackground(_ paths: [String]) {
        guard !paths.isEmpty else { return }
        // Write permission first: a build may have made its files read-only, and rm -rf as a
        // non-root user cannot empty a read-only directory. `chmod -R` does not follow the
        // symlinks it meets inside the tree.
        let command =
            "(chmod -R u+rwx -- \"$@\"; nice -n 19 rm -rf --one-file-system -- \"$@\") >/dev/null 2>&1 &"
        guard case .success(let pid) = Spawn.start(["/bin/sh", "-c", command, "release-agent-prune"] + paths) else {
            paths.forEach { try? removeTree($0) }
            return
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// Free bytes on the file system holding `path`.
    public static func freeBytes(at path: String) -> UInt64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return UInt64(st.f_bavail) * UInt64(st.f_frsize)
    }
}
