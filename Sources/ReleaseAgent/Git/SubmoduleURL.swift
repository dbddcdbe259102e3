import Foundation

/// A submodule's URL as `.gitmodules` gives it, checked and made absolute (SPEC "Repositories
/// as they are"): `https://`, `ssh://` and scp form are fetched as they are; a relative URL
/// (`./x`, `../x`) is taken against its parent's remote, whatever that is (a local path stays
/// a local path: the operator chose it); anything else (`file://`, a path, `http://`,
/// `git://`, `ext::`) is refused unless `submodules-allow-local`, which admits local paths and
/// `file://` only. Plain `http://` and `git://` are never fetched: nothing authenticates what
/// they bring, and a relative URL under an `http://` remote is the way to keep one.
public enum SubmoduleURL {
    /// The URL to fetch, or why it is refused (a phrase to put after the URL).
    public static func resolve(_ raw: String, parent: String, allowLocal: Bool) -> Result<String, Refused> {
        guard !raw.isEmpty, !raw.hasPrefix("-"),
            !raw.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return .failure(Refused("is empty, starts with '-' or holds control characters")) }
        if raw.hasPrefix("./") || raw.hasPrefix("../") {
            guard let url = relative(raw, to: parent) else {
                return .failure(Refused("climbs above the root of its parent's remote \(parent)"))
            }
            return .success(url)
        }
        if raw.hasPrefix("https://") || raw.hasPrefix("ssh://") { return .success(raw) }
        if scpHostEnd(raw) != nil { return .success(raw) }
        if allowLocal {
            if raw.hasPrefix("file://") { return .success(String(raw.dropFirst(7))) }
            if raw.hasPrefix("/") { return .success(raw) }
        }
        return .failure(
            Refused(
                "is not https://, ssh://, scp form or relative\(allowLocal ? "" : " (a local path or file:// needs submodules-allow-local, then deploy --force: the commit is quarantined)")"
            ))
    }

    public struct Refused: Error, Equatable, Sendable {
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// git's scp form, `[user@]host:path` (`host` may be `[v6 address]`): the index of the
    /// colon that ends the host, or nil. The host holds no `/` and is not empty, so neither a
    /// path nor `ext::...` (an empty host after `ext:`) is taken for one.
    static func scpHostEnd(_ text: String) -> String.Index? {
        guard !text.contains("://") else { return nil }
        var start = text.startIndex
        if let at = text.firstIndex(of: "@"), !text[..<at].contains("/"), !text[..<at].contains(":") {
            start = text.index(after: at)
        }
        let rest = text[start...]
        let colon: String.Index?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            let after = rest.index(after: close)
            colon = after < rest.endIndex && rest[after] == ":" ? after : nil
        } else {
            colon = rest.firstIndex(of: ":")
        }
        guard let colon, colon > rest.startIndex, !rest[..<colon].contains("/"),
            !rest[..<colon].hasPrefix("-")
        else { return nil }
        let after = rest.index(after: colon)
        guard after < rest.endIndex, rest[after] != ":" else { return nil }
        return colon
    }

    /// git's rule: each leading `../` drops one component of the parent's path, `./` none, and
    /// the rest is appended. The parent's scheme, host or scp `host:` part is kept.
    static func relative(_ raw: String, to parent: String) -> String? {
        var head = ""
        var path = parent
        if let range = parent.range(of: "://") {
            let afterScheme = parent[range.upperBound...]
            let hostEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
            head = String(parent[..<hostEnd])
            path = String(parent[hostEnd...])
        } else if let colon = scpHostEnd(parent) {
            head = String(parent[...colon])
            path = String(parent[parent.index(after: colon)...])
        }
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let absolute = path.hasPrefix("/")
        var rest = Substring(raw)
        while true {
            if rest.hasPrefix("./") {
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("../") {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                rest = rest.dropFirst(3)
            } else {
                break
            }
        }
        let tail = rest.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !tail.contains(".."), !tail.isEmpty || !parts.isEmpty else { return nil }
        let joined = (parts + tail.filter { $0 != "." }).joined(separator: "/")
        return head + (absolute ? "/" : "") + joined
    }
}
