import Foundation

/// The deploy root's paths, as the SPEC's layout gives them.
public struct Layout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public var current: String { root + "/current" }
    public var releases: String { root + "/releases" }
    public var shared: String { root + "/shared" }
    public var state: String { root + "/.release-agent" }
    public var cache: String { state + "/repo.git" }
    /// Bare caches of submodules, one per URL.
    public var modules: String { state + "/modules" }
    public var lock: String { state + "/lock" }
    public var history: String { state + "/history.jsonl" }
    public var records: String { state + "/releases" }
    public var logs: String { state + "/logs" }
    /// Pruned releases wait here for their background removal.
    public var trash: String { state + "/trash" }

    public func release(_ sha: String) -> String { releases + "/" + sha }
    public func record(_ sha: String) -> String { records + "/" + sha + ".json" }
    public func log(_ sha: String) -> String { logs + "/" + sha + ".log" }

    /// Creates the root and the agent's state directories (mode 0700).
    public func create() throws {
        try FileSystem.makeDirectory(root)
        try FileSystem.makeDirectory(releases)
        try FileSystem.makeDirectory(state, mode: 0o700)
        chmod(state, 0o700)
        try FileSystem.makeDirectory(records, mode: 0o700)
        try FileSystem.makeDirectory(logs, mode: 0o700)
        try FileSystem.makeDirectory(trash, mode: 0o700)
    }

    /// The sha `current` points at, if it points into `releases/`.
    public func currentSHA() -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return nil }
        let name = (target as NSString).lastPathComponent
        return CommitID(hex: name) != nil ? name : nil
    }

    /// Points `current` at `releases/<sha>`: a temp symlink renamed over it, then fsync of the root.
    /// At every instant `current` is either the old link or the new one.
    public func swapCurrent(to sha: String) throws {
        let temp = "\(root)/.current.tmp-\(getpid())"
        unlink(temp)
        guard symlink("releases/\(sha)", temp) == 0 else {
            throw AgentError.failed(
                "cannot create the link \(temp): \(FileSystem.errnoText()); check free space and permissions")
        }
        guard rename(temp, current) == 0 else {
            let reason = FileSystem.errnoText()
            unlink(temp)
            throw AgentError.failed(
                "cannot replace \(current): \(reason); if it is a real directory, move it away and deploy again")
        }
        FileSystem.syncDirectory(root)
    }

    /// Temp links a crashed swap left behind.
    public func staleTempLinks() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.hasPrefix(".current.tmp-") }.map { root + "/" + $0 }
    }
}
