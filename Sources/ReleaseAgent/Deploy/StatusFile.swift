import Foundation

/// A small JSON file under `.release-agent/` that status, /healthz and /metrics read
/// (head.json, fetch.json, fleet.json): read whole, written atomically, best effort: a state
/// file that cannot be written loses only a line of status or a metric.
public protocol StatusFile: Codable {
    static var fileName: String { get }
}

extension StatusFile {
    static func path(_ layout: Layout) -> String { layout.state + "/" + fileName }

    public static func read(_ layout: Layout) -> Self? {
        guard let data = FileManager.default.contents(atPath: path(layout)) else { return nil }
        return try? JSONDecoder().decode(Self.self, from: data)
    }

    public func write(_ layout: Layout) {
        guard FileSystem.isDirectory(layout.state), let data = try? JSONEncoder().encode(self) else { return }
        try? FileSystem.writeAtomically(data, to: Self.path(layout))
    }
}

/// A status file whose `time` says when it was last found true: seen again unchanged, only its
/// modification time moves (no rewrite, no fsync), and `read` takes the later of the two. A
/// cron poll that finds nothing new each minute rewrote head.json and fetch.json every time
/// (issue 28's no-op poll).
public protocol TimedStatusFile: StatusFile, Equatable {
    var time: Double { get set }
}

extension TimedStatusFile {
    /// Writes the file, or, when it already says the same but for the time, touches it.
    public func record(_ layout: Layout) { record(layout, over: Self.read(layout)) }

    /// As `record`, against the file's content already read.
    func record(_ layout: Layout, over old: Self?) {
        var same = self
        if let old {
            same.time = old.time
            if same == old, utimensat(AT_FDCWD, Self.path(layout), nil, 0) == 0 { return }
        }
        write(layout)
    }

    /// As `StatusFile.read`, with `time` the later of the one written and the file's
    /// modification time.
    public static func read(_ layout: Layout) -> Self? {
        let path = path(layout)
        guard let data = FileManager.default.contents(atPath: path),
            var file = try? JSONDecoder().decode(Self.self, from: data)
        else { return nil }
        var info = stat()
        if stat(path, &info) == 0 {
            file.time = max(file.time, Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        }
        return file
    }
}
