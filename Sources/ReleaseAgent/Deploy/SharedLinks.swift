import Foundation

/// The agent's own writes into a fresh checkout: `REVISION` and the shared links. Every
/// step goes through descriptors opened from the release directory with O_NOFOLLOW, so a
/// symlink that came from the tree (`REVISION -> /etc/cron.d/x`, `config -> /outside`) is
/// refused, never followed: nothing outside the release is written or removed.
package struct SharedLinks {
    let layout: Layout

    package init(layout: Layout) { self.layout = layout }

    /// Writes `REVISION` (the sha and a newline). A regular file the tree put there is replaced.
    package func writeRevision(_ sha: String, into release: String) throws {
        let dir = try ReleaseDirectory(path: release)
        defer { dir.close() }
        try dir.clear("REVISION", refusing: "release-agent writes the commit id there")
        let fd = openat(dir.fd, "REVISION", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AgentError.environment(
                "cannot write \(release)/REVISION: \(FileSystem.errnoText()); check free space")
        }
        defer { Foundation.close(fd) }
        let bytes = Array((sha + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw AgentError.environment(
                "cannot write \(release)/REVISION: \(FileSystem.errnoText()); check free space")
        }
    }

    package func link(_ paths: [String], into release: String) throws {
        for path in paths {
            let source = layout.shared + "/" + path
            guard FileSystem.exists(source) else {
                throw AgentError.environment(
                    "shared path \(source) does not exist; create it (file or directory) before deploying")
            }
            let parts = path.split(separator: "/").map(String.init)
            guard let name = parts.last else { continue }
            var dir = try ReleaseDirectory(path: release)
            defer { dir.close() }
            for part in parts.dropLast() {
                let next = try dir.descend(part, for: path)
                dir.close()
                dir = next
            }
            try dir.clear(name, refusing: "shared path \(path) is linked there")
            // Relative, so the release stays valid if the root is moved: releases/<sha>/<path> -> ../../shared/<path>
            let up = String(repeating: "../", count: parts.count + 1)
            guard symlinkat(up + "shared/" + path, dir.fd, name) == 0 else {
                throw AgentError.environment(
                    "cannot link \(release)/\(path) to \(source): \(FileSystem.errnoText()); check free space")
            }
        }
    }
}

/// A directory inside a release, held open; moving down never follows a symlink.
struct ReleaseDirectory {
    let fd: Int32
    let path: String

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw AgentError.system(environmental: true) { "cannot open \(path): \($0); check permissions" }
        }
        self.fd = fd
        self.path = path
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func close() { Foundation.close(fd) }

    /// The subdirectory `name`, created when missing (the caller closes this one). A symlink or a
    /// file from the tree where a directory is needed is the commit's fault.
    func descend(_ name: String, for shared: String) throws -> ReleaseDirectory {
        var st = stat()
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            guard mkdirat(fd, name, 0o755) == 0 else {
                throw AgentError.system(environmental: true) { "cannot create \(path)/\(name): \($0)" }
            }
        } else if (st.st_mode & S_IFMT) != S_IFDIR {
            let what = (st.st_mode & S_IFMT) == S_IFLNK ? "a symlink" : "a file"
            throw AgentError.failed(
                "the commit has \(what) at \(name) (\(path)/\(name)) where shared path \(shared) needs a directory; release-agent never writes through it: remove it from the repository or change shared"
            )
        }
        let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else {
            throw AgentError.system(environmental: true) { "cannot open \(path)/\(name): \($0)" }
        }
        return ReleaseDirectory(fd: child, path: path + "/" + name)
    }

    /// Makes room for the agent's own entry `name`: a file or a directory from the tree goes;
    /// a symlink from the tree is refused (`why` says what the agent puts there).
    func clear(_ name: String, refusing why: String) throws {
        var st = stat()
        guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            throw AgentError.failed(
                "the commit has a symlink at \(path)/\(name), where \(why); release-agent never writes through a link from the tree: remove it from the repository"
            )
        case S_IFDIR:
            try FileSystem.removeTree(in: fd, name: name, path: path + "/" + name)
        default:
            guard unlinkat(fd, name, 0) == 0 else {
                throw AgentError.system(environmental: true) { "cannot remove \(path)/\(name): \($0)" }
            }
        }
    }
}
