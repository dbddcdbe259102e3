import Foundation

/// Credentials for a private remote. Neither is needed for a local path.
public struct GitCredentials: Sendable {
    public var sshKey: String?
    public var tokenFile: String?

    public init(sshKey: String? = nil, tokenFile: String? = nil) {
        self.sshKey = sshKey
        self.tokenFile = tokenFile
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

    /// scp form, `user@host:path`: what the pattern `^[^/]+@[^/]+:` matches, without a regex
    /// (the first NSRegularExpression loads ICU's tables: ~2.5 ms of every command's start).
    public static func isSCPLike(_ text: String) -> Bool {
        let head = text.utf8.prefix { $0 != UInt8(ascii: "/") }
        guard let at = head.dropFirst().firstIndex(of: UInt8(ascii: "@")) else { return false }
        guard let rest = head.index(at, offsetBy: 2, limitedBy: head.endIndex) else { return false }
        return head[rest...].contains(UInt8(ascii: ":"))
    }
}
