import CLibGit2
import Foundation
import ReleaseAgent

/// State shared with libgit2's C callbacks through their payload pointer.
final class RemoteContext {
    let credentials: GitCredentials
    let progress: ProgressReporter?
    var credentialAttempts = 0
    var credentialError: String?
    /// What was offered to the remote, for the message when it is refused.
    var offered: Offered?
    /// Why the ssh host key was not accepted, when it was not.
    var hostKey: HostKeyVerdict?
    /// The remote's endpoint (the known-hosts check needs the port libgit2 does not pass).
    var endpoint: (host: String, port: Int)?
    /// The cache fetched into (nil: ls-remote), named when the fetch fails reading it.
    var cache: String?

    enum Offered { case sshKey(String), token(String) }
    enum HostKeyVerdict { case unknown, changed, unreadable, unsupported }

    init(credentials: GitCredentials, progress: ProgressReporter?) {
        self.credentials = credentials
        self.progress = progress
    }

    /// An ssh host key, checked against `known-hosts` with libssh2's known-hosts functions;
    /// 0 accepts it. Any other certificate (TLS) is left to libgit2's own check.
    func checkHostKey(_ cert: UnsafeMutablePointer<git_cert>, host: String) -> Int32 {
        guard cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else { return GIT_PASSTHROUGH.rawValue }
        let hostkey = UnsafeMutableRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self)
        guard hostkey.pointee.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let key = hostkey.pointee.hostkey else {
            hostKey = .unsupported
            return GIT_ECERTIFICATE.rawValue
        }
        let port = endpoint?.port ?? 22
        let result = clibgit2_known_host(
            credentials.knownHosts, host, Int32(port), key, hostkey.pointee.hostkey_len,
            Int32(hostkey.pointee.raw_type.rawValue))
        switch result {
        case 0: return 0
        case 1: hostKey = .changed
        case 2: hostKey = .unknown
        case 3: hostKey = .unreadable
        default: hostKey = .unsupported
        }
        return GIT_ECERTIFICATE.rawValue
    }

    /// Builds a credential for libgit2; each kind is offered once so a refused key ends the fetch.
    func acquire(
        _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, username: String?, allowed: UInt32
    ) -> Int32 {
        credentialAttempts += 1
        if credentialAttempts > 1 { return GIT_EAUTH.rawValue }
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let key = credentials.sshKey {
            let publicKey = FileManager.default.fileExists(atPath: key + ".pub") ? key + ".pub" : nil
            offered = .sshKey(key)
            return git_credential_ssh_key_new(out, username ?? "git", publicKey, key, nil)
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let file = credentials.tokenFile {
            guard
                let token = try? String(contentsOfFile: file, encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
            else {
                credentialError = "cannot read a token from \(file)"
                return GIT_EUSER.rawValue
            }
            offered = .token(file)
            return git_credential_userpass_plaintext_new(out, username ?? "x-access-token", token)
        }
        credentialError = "the remote asks for credentials; set ssh-key (ssh) or token-file (https)"
        return GIT_EUSER.rawValue
    }
}

/// Owns one `git_remote` handle; freed in `deinit`.
final class Remote {
    let pointer: OpaquePointer
    let url: String
    let context: RemoteContext

    private init(pointer: OpaquePointer, url: String, context: RemoteContext) {
        self.pointer = pointer
        self.url = url
        self.context = context
    }

    deinit { git_remote_free(pointer) }

    /// A remote bound to `repository` (applies its config) or detached (no repository needed).
    static func open(url: String, in repository: Repository?, context: RemoteContext) throws -> Remote {
        LibGit2.ensureInitialized()
        let target = try RemoteURL.normalize(url)
        var handle: OpaquePointer?
        if let repository {
            try GitError.check(git_remote_create_anonymous(&handle, repository.pointer, target), "open remote \(url)")
        } else {
            try GitError.check(git_remote_create_detached(&handle, target), "open remote \(url)")
        }
        guard let handle else { throw GitError(code: -1, message: "no handle", operation: "open remote \(url)") }
        context.endpoint = RemoteURL.endpoint(target)
        context.cache = repository?.path
        return Remote(pointer: handle, url: url, context: context)
    }

    private func callbacks() -> git_remote_callbacks {
        var callbacks = git_remote_callbacks()
        git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
        callbacks.payload = Unmanaged.passUnretained(context).toOpaque()
        callbacks.credentials = { out, _, username, allowed, payload in
            guard let payload else { return GIT_EUSER.rawValue }
            let context = Unmanaged<RemoteContext>.fromOpaque(payload).takeUnretainedValue()
            return context.acquire(out, username: username.map { String(cString: $0) }, allowed: allowed)
        }
        callbacks.certificate_check = { cert, _, host, payload in
            guard let cert, let payload else { return GIT_PASSTHROUGH.rawValue }
            let context = Unmanaged<RemoteContext>.fromOpaque(payload).takeUnretainedValue()
            return context.checkHostKey(cert, host: host.map { String(cString: $0) } ?? "")
        }
        if context.progress != nil {
            callbacks.transfer_progress = { stats, payload in
                guard let stats, let payload else { return 0 }
                let context = Unmanaged<RemoteContext>.fromOpaque(payload).takeUnretainedValue()
                context.progress?.update(
                    done: Int(stats.pointee.received_objects), total: Int(stats.pointee.total_objects))
                return 0
            }
        }
        return callbacks
    }

    /// Fetches exactly `refspecs`, no tags, and updates their destination refs.
    func fetch(refspecs: [String]) throws {
        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.callbacks = callbacks()
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        options.update_fetchhead = 0
        // A destination ref whose source the remote no longer has is deleted, so a deleted
        // branch or tag is never deployed from its stale copy in the cache.
        options.prune = GIT_FETCH_PRUNE
        try withStrArray(refspecs) { array in
            var array = array
            try check(git_remote_fetch(pointer, &array, &options, "release-agent fetch"), "fetch from \(url)")
        }
        context.progress?.finish()
    }

    /// The remote's refs without fetching anything (connect + ls-remote).
    func listReferences() throws -> [String: CommitID] {
        var callbacks = callbacks()
        try check(git_remote_connect(pointer, GIT_DIRECTION_FETCH, &callbacks, nil, nil), "connect to \(url)")
        defer { git_remote_disconnect(pointer) }
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try check(git_remote_ls(&heads, &count, pointer), "list refs of \(url)")
        var result: [String: CommitID] = [:]
        for index in 0..<count {
            guard let head = heads?[index] else { continue }
            result[String(cString: head.pointee.name)] = CommitID(oid: head.pointee.oid)
        }
        return result
    }

    private func check(_ code: Int32, _ operation: String) throws {
        guard code < 0 else { return }
        var error = GitError(code: code, message: GitError.lastMessage(), operation: operation)
        error.klass = clibgit2_last_error_class()
        throw RemoteError(error: error, context: context)
    }
}

func withStrArray<T>(_ strings: [String], _ body: (git_strarray) throws -> T) rethrows -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { buffer in
        try body(git_strarray(strings: buffer.baseAddress, count: buffer.count))
    }
}
