import Foundation

/// Credentials for a private remote. Neither is needed for a local path.
public struct GitCredentials: Sendable {
    public var sshKey: String?
    public var tokenFile: String?
    /// The OpenSSH known_hosts file an ssh remote's host key must be in.
    public var knownHosts: String

    public init(sshKey: String? = nil, tokenFile: String? = nil, knownHosts: String? = nil) {
        self.sshKey = sshKey
        self.tokenFile = tokenFile
        self.knownHosts = knownHosts ?? GitCredentials.defaultKnownHosts
    }

    public static var defaultKnownHosts: String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.ssh/known_hosts"
    }
}

/// Remote URL rules: `file://` is a local path (libgit2's file transport is ~10x slower),
/// and a local path that does not exist is reported plainly.
public enum RemoteURL {
    public static func normalize(_ url: String) throws -> String {
        var path = url
        if path.hasPrefix("file://") { path = String(path.dropFirst("file://".count)) }
        let isNetwork = path.contains("://") || isSCPLike(path)
        if isNetwork { return path }
        if !path.hasPrefix("/") {
            path = FileManager.default.currentDirectoryPath + "/" + path
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw AgentError.usage("the repository \(url) does not exist; set repo to an existing path or a URL")
        }
        return path
    }

    /// Host and port of a network remote (`ssh://`, `https://`, scp form), for messages and
    /// the known-hosts check; nil for a local path.
    public static func endpoint(_ url: String) -> (host: String, port: Int)? {
        if isSCPLike(url), !url.contains("://") {
            let afterAt = url.split(separator: "@", maxSplits: 1).last.map(String.init) ?? url
            return (String(afterAt.prefix { $0 != ":" }), 22)
        }
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            return nil
        }
        let defaults = ["ssh": 22, "https": 443, "http": 80, "git": 9418]
        return (host, components.port ?? defaults[components.scheme ?? ""] ?? 0)
    }

    /// scp form, `user@host:path`: what the pattern `^[^/]+@[^/]+:` matches, without a regex
    /// (the first NSRegularExpression loads ICU's tables: ~2.5 ms of every command's start).
    public static func isSCPLike(_ text: String) -> Bool {
        let head = text.utf8.prefix { $0 != UInt8(ascii: "/") }
        guard let at = head.dropFirst().firstIndex(of: UInt8(ascii: "@")) else { return false }
        guard let rest = head.index(at, offsetBy: 2, limitedBy: head.endIndex) else { return false }
        return head[rest...].contains(UInt8(ascii: ":"))
    }
}
