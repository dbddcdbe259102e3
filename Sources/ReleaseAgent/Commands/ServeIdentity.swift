import Foundation

/// Which process is this root's `serve`, so that `resume` signals that one and nothing else.
/// A pid-file outlives a serve killed with -9, and its pid is then reused by anything: the
/// pid counts only when /proc shows a `release-agent(-full) serve` that holds this root's
/// `.release-agent` directory open (serve opens it at start and keeps it, see `hold`), or,
/// for a serve started before it did, one whose `--root` is this root.
package enum ServeIdentity {
    package enum Found: Equatable {
        case serve(pid_t)
        /// Why no serve of this root is behind the pid-file.
        case none(String)
    }

    /// Called by serve once the root exists: keeps its state directory open for the
    /// process's lifetime (close-on-exec, so builds and hooks do not carry it).
    package static func hold(_ layout: Layout) {
        _ = open(layout.state, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    package static func find(pidFile: String, layout: Layout) -> Found {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else {
            return .none("pid-file \(pidFile) does not exist")
        }
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
            return .none("pid-file \(pidFile) holds no process id")
        }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !cmdline.isEmpty else {
            return .none("pid-file \(pidFile) names pid \(pid), which is not running (a stale pid-file)")
        }
        let argv = cmdline.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        let names: Set<String> = ["release-agent", "release-agent-full"]
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
        let program =
            names.contains((argv[0] as NSString).lastPathComponent)
            || names.contains((exe as NSString).lastPathComponent)
        guard program, argv.count > 1, argv[1] == "serve" else {
            return .none(
                "pid-file \(pidFile) names pid \(pid), which is not a release-agent serve (a stale pid-file)")
        }
        guard let state = FileSystem.realPath(layout.state) else {
            return .none("\(layout.state) does not exist")
        }
        if holds(pid, state) { return .serve(pid) }
        if let root = rootArgument(argv, pid: pid), root == FileSystem.realPath(layout.root) { return .serve(pid) }
        return .none("pid-file \(pidFile) names pid \(pid), a release-agent serve of another root")
    }

    /// Whether `pid` has `path` open (needs the rights to read its /proc/<pid>/fd: its user or root).
    static func holds(_ pid: pid_t, _ path: String) -> Bool {
        let directory = "/proc/\(pid)/fd"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return false }
        return names.contains {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0)) == path
        }
    }

    /// The `--root` on `argv`, resolved against the process's working directory.
    static func rootArgument(_ argv: [String], pid: pid_t) -> String? {
        var value: String?
        for (index, argument) in argv.enumerated() {
            if argument == "--root", index + 1 < argv.count { value = argv[index + 1] }
            if argument.hasPrefix("--root=") { value = String(argument.dropFirst("--root=".count)) }
        }
        guard var root = value, !root.isEmpty else { return nil }
        if !root.hasPrefix("/") {
            guard let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else {
                return nil
            }
            root = cwd + "/" + root
        }
        return FileSystem.realPath(root)
    }
}
