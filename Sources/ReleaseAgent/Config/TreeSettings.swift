import Foundation

/// What of the repository's tree a release is made of, and what its build starts from
/// (SPEC "Repositories as they are"), typed once like the others.
public struct TreeSettings: Sendable, Equatable {
    /// Path prefixes of the repository (whole components): a head whose tree differs from the
    /// live release's commit only outside them is recorded `skipped`, not built.
    public var paths: [String] = []
    /// The tree's directory that becomes the release; nil for the whole tree.
    public var subdir: String?
    /// Paths inside the release copied from the live release before the build.
    public var buildCache: [String] = []
    /// Gitlinks checked out at their recorded commits, recursively (false: left empty).
    public var submodules = true
    /// Submodule URLs that are local paths or `file://` are fetched too.
    public var submodulesAllowLocal = false

    public init() {}

    /// Whether `path` (of the repository's tree) lies under one of `paths`; true for every path
    /// when `paths` is empty.
    public func watches(_ path: String) -> Bool {
        paths.isEmpty || paths.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    static func read(_ reader: SettingReader, shared: [String]) throws -> TreeSettings {
        var settings = TreeSettings()
        settings.paths = try reader.relativePaths("paths", what: "a path of the repository")
        for path in settings.paths where path.contains(where: { "*?[".contains($0) }) {
            throw AgentError.usage(
                "paths '\(path.terminalSafe)' (\(reader.origin("paths"))) is a pattern; paths are prefixes of whole path components, so write the directory (services/api, not services/api/*)"
            )
        }
        if let text = try reader.string("subdir") {
            let subdir = try reader.relativePaths("subdir", items: [text], what: "a directory of the repository")
            settings.subdir = subdir.first
        }
        settings.submodules = try reader.bool("submodules") ?? true
        settings.submodulesAllowLocal = try reader.bool("submodules-allow-local") ?? false
        settings.buildCache = try reader.relativePaths("build-cache", what: "a path inside the release")
        try reader.disjoint("build-cache", settings.buildCache, because: "copying one would copy the other twice")
        for cached in settings.buildCache {
            for linked in shared where RelativePath.overlaps(cached, linked) {
                throw AgentError.usage(
                    "build-cache '\(cached)' (\(reader.origin("build-cache"))) overlaps shared '\(linked)' (\(reader.origin("shared"))): a shared path is a link to ROOT/shared, the same in every release, so there is nothing to copy; list it in one of them"
                )
            }
        }
        return settings
    }
}

/// A relative path inside a tree or a release, as settings give them.
enum RelativePath {
    /// `public/uploads/` is `public/uploads`; nil when a part is empty, `.` or `..`, or the
    /// path starts with `/` (it could then name something outside the release).
    static func normalized(_ text: String) -> String? {
        var path = text
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard !path.isEmpty, !path.hasPrefix("/"),
            !path.split(separator: "/", omittingEmptySubsequences: false).contains(where: {
                [".", "..", ""].contains($0)
            }),
            !path.contains(where: { $0 == "\0" })
        else { return nil }
        return path
    }

    /// One path is the other or lies inside it (whole components).
    static func overlaps(_ a: String, _ b: String) -> Bool {
        a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/")
    }
}

extension SettingReader {
    /// A list of plain relative paths, normalized, each checked; the setting named on a bad one.
    func relativePaths(_ name: String, items given: [String]? = nil, what: String) throws -> [String] {
        try (given ?? list(name)).map { text in
            guard let path = RelativePath.normalized(text) else {
                throw AgentError.usage(
                    "\(name) '\(text.terminalSafe)' (\(origin(name))) must be \(what), relative (no leading /, no '.', '..' or empty parts); fix \(name)"
                )
            }
            return path
        }
    }

    /// No item of `paths` is another or lies inside another.
    func disjoint(_ name: String, _ paths: [String], because reason: String) throws {
        for (index, outer) in paths.enumerated() {
            for inner in paths[(index + 1)...] where RelativePath.overlaps(outer, inner) {
                throw AgentError.usage(
                    "\(name) paths '\(outer)' and '\(inner)' (\(origin(name))) overlap: one lies inside the other, so \(reason); list only the outer one"
                )
            }
        }
    }
}
