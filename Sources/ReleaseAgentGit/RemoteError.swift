import CLibGit2
import Foundation
import ReleaseAgent

/// A failed fetch or ls-remote with what the callbacks saw (which credential was offered,
/// why a host key was refused), so the message can name the cause and the remedy from
/// libgit2's class and code and our own state, never from libgit2's message text.
struct RemoteError: Error {
    let error: GitError
    let offered: RemoteContext.Offered?
    let hostKey: RemoteContext.HostKeyVerdict?
    let credentialError: String?
    let credentialAttempts: Int
    let endpoint: (host: String, port: Int)?
    let knownHosts: String
    let cache: String?

    init(error: GitError, context: RemoteContext) {
        self.error = error
        offered = context.offered
        hostKey = context.hostKey
        credentialError = context.credentialError
        credentialAttempts = context.credentialAttempts
        endpoint = context.endpoint
        knownHosts = context.credentials.knownHosts
        cache = context.cache
    }

    /// One line: what failed and what to do.
    /// `setting` says where the URL came from (`the repo setting`, `the url in .gitmodules`).
    func explain(url: String, setting: String = "the repo setting") -> AgentError {
        let host = endpoint?.host ?? url
        let port = endpoint?.port ?? 22
        let message =
            hostKeyProblem(host: host, port: port) ?? credentialProblem(url: url)
            ?? classProblem(url: url, host: host, port: port, setting: setting)
        return AgentError(.failed, message, cause: error)
    }

    /// A host key that was refused: unknown, changed, unreadable known-hosts, or a type we
    /// cannot check.
    private func hostKeyProblem(host: String, port: Int) -> String? {
        let hostPort = port == 22 ? host : "[\(host)]:\(port)"
        let keyscan = "ssh-keyscan\(port == 22 ? "" : " -p \(port)") \(host)"
        switch hostKey {
        case .unknown:
            return
                ("the ssh host key of \(hostPort) is not in \(knownHosts); check the key out of band, then add it: \(keyscan) >> \(knownHosts) (or set known-hosts to the file that has it)")
        case .changed:
            return
                ("the ssh host key of \(hostPort) differs from the one for it in \(knownHosts): possibly a man in the middle, so the fetch is refused; if the server's key really changed, replace the entry: ssh-keygen -R '\(hostPort)' -f \(knownHosts), then \(keyscan) >> \(knownHosts)")
        case .unreadable:
            return
                ("the known-hosts file \(knownHosts) cannot be read, so the ssh host key of \(hostPort) cannot be checked; create it with \(keyscan) > \(knownHosts), or set known-hosts")
        case .unsupported:
            return
                ("the ssh host key of \(hostPort) is of a type release-agent cannot check against \(knownHosts); use an ed25519, ecdsa or rsa host key")
        case nil: return nil
        }
    }

    /// Credentials the remote refused, or asked for and were not set.
    private func credentialProblem(url: String) -> String? {
        if let credentialError { return "authentication to \(url) failed: \(credentialError)" }
        switch (offered, error.klass) {
        case (.sshKey(let key), _)
        where error.code == GIT_EAUTH.rawValue || error.klass == Int32(GIT_ERROR_SSH.rawValue):
            return
                ("authentication to \(url) failed: the remote refused ssh-key \(key); add \(key).pub as a deploy key with read access, or set ssh-key to a key it accepts")
        case (.token(let file), _)
        where error.code == GIT_EAUTH.rawValue || error.klass == Int32(GIT_ERROR_HTTP.rawValue):
            return
                ("authentication to \(url) failed: the remote refused the token in token-file \(file) (HTTP 401 or 403; a private repository may answer 404); check that the token is current and can read the repository")
        default: break
        }
        if error.code == GIT_EAUTH.rawValue {
            return
                ("authentication to \(url) failed: the remote asks for credentials; set ssh-key (ssh) or token-file (https)")
        }
        return nil
    }

    /// Everything else, by libgit2's error class.
    private func classProblem(url: String, host: String, port: Int, setting: String) -> String {
        switch error.klass {
        case Int32(GIT_ERROR_NET.rawValue):
            return (reachability(host: host, port: port, url: url, setting: setting))
        case Int32(GIT_ERROR_SSL.rawValue):
            return
                ("cannot fetch from \(url): the TLS certificate of \(host) is not trusted or does not match; check the URL, or add its CA to the system's certificates")
        case Int32(GIT_ERROR_HTTP.rawValue):
            return
                ("cannot fetch from \(url): the server answered with an HTTP error (not found, or it needs a token); check the repo URL, and set token-file for a private repository")
        case Int32(GIT_ERROR_SSH.rawValue):
            return
                ("cannot fetch from \(url): the ssh server closed the session (a wrong repository path, or no access for this key); check \(setting) and the key's access")
        case Int32(GIT_ERROR_ODB.rawValue), Int32(GIT_ERROR_ZLIB.rawValue), Int32(GIT_ERROR_OBJECT.rawValue),
            Int32(GIT_ERROR_REPOSITORY.rawValue):
            // The fetch failed reading this host's own cache, not the remote (a damaged pack).
            guard let cache else { fallthrough }
            return "cannot fetch from \(url): "
                + GitError.cacheReading(klass: error.klass, code: error.code, cache: cache)
        default:
            return
                ("cannot fetch from \(url) (libgit2 error class \(error.klass), code \(error.code)); check \(setting) and that the remote is reachable")
        }
    }

    /// Tells a name that does not resolve from a port where nothing answers, by trying both.
    private func reachability(host: String, port: Int, url: String, setting: String) -> String {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        defer { if let result { freeaddrinfo(result) } }
        guard rc == 0, let first = result else {
            return
                "cannot fetch from \(url): the host name \(host) does not resolve (DNS); check \(setting) and the resolver"
        }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        defer { if fd >= 0 { close(fd) } }
        if fd >= 0, connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0, errno == ECONNREFUSED {
            return
                "cannot fetch from \(url): nothing accepts connections on \(host):\(port); check the port in \(setting) and that the server runs"
        }
        return
            "cannot fetch from \(url): the connection to \(host):\(port) failed or was cut; check the network and \(setting)"
    }
}
