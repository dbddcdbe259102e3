import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// How the client proves who it is to a production cluster: TLS (a CA to trust, a client
/// certificate for `--client-cert-auth`) and an etcd user whose token goes with every call.
public struct EtcdClientOptions: Sendable {
    /// CA bundle (PEM) that signed the members' certificates; nil: the system's CAs.
    public var caFile: String?
    /// Client certificate and key (PEM), for clusters started with `--client-cert-auth`.
    public var certFile: String?
    public var keyFile: String?
    /// An etcd user and its password (authentication on).
    public var user: String?
    public var password: String?
    public var requestTimeout: Duration

    public init(
        caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, user: String? = nil,
        password: String? = nil, requestTimeout: Duration = .seconds(3)
    ) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.user = user
        self.password = password
        self.requestTimeout = requestTimeout
    }

    /// The TLS configuration of `https://` endpoints; a file that cannot be read or is not PEM
    /// is `accessRefused` naming it (checked here, once, not at the first handshake).
    func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            guard (try? NIOSSLCertificate.fromPEMFile(caFile))?.isEmpty == false else {
                throw EtcdError(.accessRefused, "the CA file \(caFile) holds no PEM certificate it could read")
            }
            tls.trustRoots = .file(caFile)
        }
        switch (certFile, keyFile) {
        case (nil, nil):
            break
        case (let cert?, let key?):
            guard let chain = try? NIOSSLCertificate.fromPEMFile(cert), !chain.isEmpty else {
                throw EtcdError(
                    .accessRefused, "the client certificate file \(cert) holds no PEM certificate it could read")
            }
            guard let privateKey = try? NIOSSLPrivateKey(file: key, format: .pem) else {
                throw EtcdError(.accessRefused, "the client key file \(key) holds no PEM private key it could read")
            }
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(privateKey)
            // The pair is checked here: a key of another certificate fails now, not at every call.
            guard (try? NIOSSLContext(configuration: tls)) != nil else {
                throw EtcdError(.accessRefused, "the client key \(key) does not belong to the certificate \(cert)")
            }
        default:
            throw EtcdError(.accessRefused, "a client certificate needs both its certificate and its key file")
        }
        return tls
    }
}

extension EtcdClient {
    /// A TLS handshake failed: find out which side refused, with the same endpoint probed
    /// under looser client-side checks (the handshake error itself carries only BoringSSL's
    /// text, and its codes are not public). A probe that passes without the host-name check
    /// or without any check of the server's certificate names that as the cause; one that
    /// still fails means the server refused this client's certificate (or its absence).
    /// nil: the endpoint did not answer the probes at all (a network failure: next member).
    func diagnoseHandshake(_ endpoint: URL) -> EtcdError? {
        guard var tls = try? options.tlsConfiguration() else { return nil }
        let host = endpoint.host ?? "?"
        tls.certificateVerification = .noHostnameVerification
        switch probe(endpoint, tls) {
        case .answered:
            return EtcdError(
                .accessRefused,
                "the certificate of \(endpoint.absoluteString) does not name \(host); list the members in fleet-etcd by a name or address their certificates were made for"
            )
        case .unreachable: return nil
        case .refused: break
        }
        tls.certificateVerification = .none
        switch probe(endpoint, tls) {
        case .answered:
            let trust = options.caFile.map { "the CA in \($0)" } ?? "a CA this system trusts"
            return EtcdError(
                .accessRefused,
                "the certificate of \(endpoint.absoluteString) is not signed by \(trust), or has expired; set fleet-ca-file to the CA bundle that signed the cluster's certificates"
            )
        case .unreachable: return nil
        case .refused: break
        }
        guard let cert = options.certFile else {
            return EtcdError(
                .accessRefused,
                "\(endpoint.absoluteString) refused the connection without a client certificate (the cluster runs --client-cert-auth); set fleet-cert-file and fleet-key-file"
            )
        }
        return EtcdError(
            .accessRefused,
            "\(endpoint.absoluteString) refused the client certificate \(cert) (not signed by the CA the cluster trusts, expired, or not made for client authentication); make one as the README's openssl recipe does and set fleet-cert-file and fleet-key-file"
        )
    }

    private enum Probe { case answered, refused, unreachable }

    /// GET /version with `tls`: any HTTP answer means the handshake passed.
    private func probe(_ endpoint: URL, _ tls: TLSConfiguration) -> Probe {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = tls
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(2))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { try? client.syncShutdown() }
        do {
            let url = endpoint.absoluteString.trimmingSuffix("/") + "/version"
            _ = try client.execute(request: try HTTPClient.Request(url: url), deadline: .now() + .seconds(3)).wait()
            return .answered
        } catch {
            return Self.isTLSFailure(error) ? .refused : .unreachable
        }
    }

    /// A failure of the TLS layer (by type, not by text).
    static func isTLSFailure(_ error: Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
    }

    // MARK: the etcd user's token

    /// The token to send, authenticating first when a user is set and none is held. nil: no
    /// user, or a cluster with authentication off.
    func token() throws -> String? {
        guard let user = options.user else { return nil }
        if let held = lock.withLock({ authToken }) { return held.isEmpty ? nil : held }
        let answer: [String: Any]
        do {
            answer = try call(
                "/v3/auth/authenticate", ["name": user, "password": options.password ?? ""], authenticated: false)
        } catch let error as EtcdError {
            switch error.kind {
            case .refused(code: 3), .refused(code: 16):
                throw EtcdError(
                    .accessRefused,
                    "etcd refused the user '\(user)' with its password (wrong password, or no such user); check fleet-user and fleet-password-file"
                )
            case .refused(code: 9):
                // Authentication is off on this cluster: calls need no token.
                lock.withLock { authToken = "" }
                return nil
            default:
                throw error
            }
        }
        guard let token = answer["token"] as? String, !token.isEmpty else {
            throw EtcdError(.badAnswer, "etcd answered the authentication of '\(user)' without a token")
        }
        lock.withLock { authToken = token }
        return token
    }

    /// Forgets the token (a member restart or a password change made it invalid).
    func dropToken() { lock.withLock { authToken = nil } }

    /// What etcd's refusal means, in the terms of the settings that fix it. gRPC codes:
    /// 16 unauthenticated (a bad token), 7 permission denied, 3 invalid argument (with
    /// authentication on, a request without a user).
    func refusal(code: Int, key: String?) -> EtcdError {
        let what = key.map { " on \($0)" } ?? ""
        switch (code, options.user) {
        case (7, let user?):
            return EtcdError(
                .accessRefused,
                "etcd denied the user '\(user)' access\(what) (permission denied); grant its role readwrite on the fleet's prefix (README, Fleet: the role)"
            )
        case (7, nil), (16, nil), (3, nil):
            return EtcdError(
                .accessRefused,
                "etcd refused a request without a user\(what) (gRPC code \(code)): the cluster has authentication on; set fleet-user and fleet-password-file"
            )
        case (16, let user?):
            return EtcdError(
                .accessRefused,
                "etcd rejected the token of the user '\(user)' again after it was renewed; check fleet-user and fleet-password-file"
            )
        default:
            return EtcdError(.refused(code: code), "etcd refused the request\(what) (gRPC code \(code))")
        }
    }
}
