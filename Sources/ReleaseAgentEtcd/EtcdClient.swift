import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client of etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/lease/*`,
/// `/v3/watch`) over AsyncHTTPClient. It knows nothing of release-agent. Calls block the
/// calling thread (the agent's deploys run on their own thread, never on an event loop); a
/// request goes to the endpoint that answered last, and on a connection error, a timeout
/// or "unavailable" (no leader) to the next, until each was tried once.
public final class EtcdClient: @unchecked Sendable {
    public let endpoints: [URL]
    let options: EtcdClientOptions
    let requestTimeout: TimeAmount
    let http: HTTPClient
    let lock = NSLock()
    private var preferred = 0
    private var streamClient: HTTPClient?
    private let configuration: HTTPClient.Configuration
    /// The etcd user's token; "" when the cluster has authentication off.
    var authToken: String?

    /// `endpoints`: `http://host:2379` or `https://...` (then `caFile` is trusted, if given).
    public convenience init(endpoints: [URL], caFile: String? = nil, requestTimeout: Duration = .seconds(3)) throws {
        try self.init(endpoints: endpoints, options: EtcdClientOptions(caFile: caFile, requestTimeout: requestTimeout))
    }

    /// A client of a production cluster: TLS with a client certificate, an etcd user. A file
    /// of `options` that cannot be read is `accessRefused` naming it, now.
    public init(endpoints: [URL], options: EtcdClientOptions) throws {
        precondition(!endpoints.isEmpty, "EtcdClient needs at least one endpoint")
        self.endpoints = endpoints
        self.options = options
        let timeout = options.requestTimeout
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        self.requestTimeout = .milliseconds(milliseconds)
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(min(milliseconds, 1500)), read: self.requestTimeout)
        configuration.redirectConfiguration = .disallow
        // etcd's gateway speaks HTTP/1.1; a refused handshake must fail now (and be diagnosed),
        // not be retried until the request's deadline.
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        if endpoints.contains(where: { $0.scheme == "https" }) || options.caFile != nil || options.certFile != nil {
            configuration.tlsConfiguration = try options.tlsConfiguration()
        }
        self.configuration = configuration
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        try? http.syncShutdown()
        try? lock.withLock { streamClient }?.syncShutdown()
    }

    /// The client of long-lived watch streams: the same TLS, no read timeout (an idle watch
    /// is the normal case). Made at the first stream.
    var streamHTTP: HTTPClient {
        lock.withLock {
            if let streamClient { return streamClient }
            var streaming = configuration
            streaming.timeout.read = nil
            let made = HTTPClient(eventLoopGroupProvider: .singleton, configuration: streaming)
            streamClient = made
            return made
        }
    }

    /// The endpoint that answered last (a stream starts there).
    var preferredIndex: Int { preferred }

    /// The next endpoint answers first from now on (the preferred one went away).
    func nextEndpoint() { lock.withLock { preferred = (preferred + 1) % endpoints.count } }

    // MARK: kv

    public func get(_ key: String) throws -> EtcdKeyValue? { try range(key, prefix: false).kvs.first }

    public func range(_ key: String, prefix: Bool) throws -> EtcdRange {
        try Self.decodeRange(try call("/v3/kv/range", Self.rangeBody(key, prefix: prefix), key: key))
    }

    /// A range read whose answer does not grow with the number of keys (a count, a few keys).
    public func range(_ key: String, prefix: Bool, _ query: EtcdRangeQuery) throws -> EtcdRange {
        var body = Self.rangeBody(key, prefix: prefix)
        if let revision = query.maxCreateRevision { body["max_create_revision"] = String(revision) }
        if query.newestCreatedFirst {
            body["sort_order"] = "DESCEND"
            body["sort_target"] = "CREATE"
        }
        if let limit = query.limit { body["limit"] = String(limit) }
        if query.countOnly { body["count_only"] = true }
        if query.keysOnly { body["keys_only"] = true }
        return try Self.decodeRange(try call("/v3/kv/range", body, key: key))
    }

    /// Puts without a comparison (registration on a lease). Returns the revision.
    @discardableResult
    public func put(_ key: String, _ value: Data, lease: Int64? = nil) throws -> Int64 {
        var body: [String: Any] = ["key": key.base64, "value": value.base64]
        if let lease { body["lease"] = String(lease) }
        return Self.revision(try call("/v3/kv/put", body, key: key))
    }

    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) throws -> Int64 {
        var body: [String: Any] = ["key": key.base64]
        if prefix { body["range_end"] = key.prefixEnd }
        return Self.revision(try call("/v3/kv/deleterange", body, key: key))
    }

    /// A transaction: `success` runs when every comparison holds, else `failure`.
    public func txn(_ compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) throws
        -> EtcdTxnResult
    {
        let body: [String: Any] = [
            "compare": compare.map(Self.compareBody), "success": success.map(Self.operationBody),
            "failure": failure.map(Self.operationBody),
        ]
        let keys = compare.map(\.key) + success.map(\.key)
        let answer = try call("/v3/kv/txn", body, key: keys.first)
        let responses = answer["responses"] as? [[String: Any]] ?? []
        let ranges = try responses.compactMap { $0["response_range"] as? [String: Any] }.map(Self.decodeRange)
        return EtcdTxnResult(
            succeeded: answer["succeeded"] as? Bool ?? false, revision: Self.revision(answer), ranges: ranges)
    }

    // MARK: leases

    /// A new lease of `ttl` seconds; returns its id.
    public func grantLease(ttl: Int) throws -> Int64 {
        let answer = try call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = Self.int64(answer["ID"]), id != 0 else {
            throw EtcdError(.badAnswer, "etcd granted no lease id")
        }
        return id
    }

    /// One keepalive; returns the TTL etcd gives the lease now. A lease that expired or was
    /// revoked is `leaseNotFound` (the gateway answers it with TTL 0 or no TTL).
    @discardableResult
    public func keepAlive(_ lease: Int64) throws -> Int64 {
        let answer = try call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = answer["result"] as? [String: Any] ?? answer
        guard let ttl = Self.int64(result["TTL"]), ttl > 0 else {
            throw EtcdError(.leaseNotFound, "the etcd lease \(String(lease, radix: 16)) has expired")
        }
        return ttl
    }

    /// The TTL `lease` was granted with; nil if it expired or was revoked.
    public func grantedTTL(_ lease: Int64) throws -> Int64? {
        let answer = try call("/v3/lease/timetolive", ["ID": String(lease)])
        guard let ttl = Self.int64(answer["TTL"]), ttl > 0 else { return nil }
        return Self.int64(answer["grantedTTL"])
    }

    public func revoke(_ lease: Int64) throws { _ = try call("/v3/lease/revoke", ["ID": String(lease)]) }

    // MARK: the request path

    /// POSTs `body` to `path` with the user's token; a token etcd no longer takes (a member
    /// restart, a password change) is renewed once and the call tried again.
    func call(_ path: String, _ body: [String: Any], key: String? = nil, authenticated: Bool = true) throws
        -> [String: Any]
    {
        guard authenticated, options.user != nil else { return try send(path, body, token: nil, key: key) }
        do {
            return try send(path, body, token: try token(), key: key)
        } catch let error as EtcdError where error.kind == .tokenRejected {
            dropToken()
            do {
                return try send(path, body, token: try token(), key: key)
            } catch let again as EtcdError where again.kind == .tokenRejected {
                throw refusal(code: again.code ?? 16, key: key)
            }
        }
    }

    /// POSTs `body` to `path` on the endpoints in turn; returns the decoded JSON object.
    private func send(_ path: String, _ body: [String: Any], token: String?, key: String?) throws -> [String: Any] {
        let data = try JSONSerialization.data(withJSONObject: body)
        var failures: [String] = []
        let start = lock.withLock { preferred }
        for offset in 0..<endpoints.count {
            let index = (start + offset) % endpoints.count
            let endpoint = endpoints[index]
            switch exchange(endpoint, path, data, token: token, key: key) {
            case .answer(let object):
                lock.withLock { preferred = index }
                return object
            case .next(let why):
                failures.append("\(endpoint.absoluteString): \(why)")
            case .fail(let error):
                lock.withLock { preferred = index }
                throw error
            }
        }
        throw EtcdError(
            .unavailable,
            "no etcd endpoint answered (\(failures.joined(separator: "; "))); check that the cluster is up and fleet-etcd lists its client URLs"
        )
    }

    private enum Outcome {
        case answer([String: Any])
        case next(String)
        case fail(EtcdError)
    }

    private func exchange(_ endpoint: URL, _ path: String, _ data: Data, token: String?, key: String?) -> Outcome {
        let url = endpoint.absoluteString.trimmingSuffix("/") + path
        let response: HTTPClient.Response
        do {
            var request = try HTTPClient.Request(url: url, method: .POST)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            if let token { request.headers.add(name: "Authorization", value: token) }
            request.body = .byteBuffer(ByteBuffer(bytes: data))
            response = try http.execute(request: request, deadline: .now() + requestTimeout).wait()
        } catch {
            if Self.isTLSFailure(error), let refused = diagnoseHandshake(endpoint) { return .fail(refused) }
            return .next(Self.connectionFailure(error))
        }
        let bytes = response.body.map { Data($0.readableBytesView) } ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any]
        guard response.status == .ok, let object else {
            guard let code = Self.int64(object?["code"]).map(Int.init) else {
                // etcd 3.4's gateway answers 400 in plain text, not as a gRPC error, to a client
                // certificate with a Common Name while authentication is on.
                if response.status == .badRequest, let cert = options.certFile {
                    return .fail(
                        EtcdError(
                            .accessRefused,
                            "\(endpoint.absoluteString) refused the request (HTTP 400, not a gateway error): etcd 3.4's gateway refuses, with authentication on, a client certificate that has a Common Name; make \(cert) without one (README, Fleet: openssl)"
                        ))
                }
                return .next("HTTP \(response.status.code) without a gateway error")
            }
            return classify(code: code, token: token, key: key)
        }
        return .answer(object)
    }

    /// gRPC status codes: 14 unavailable (no leader, stopping), 4 deadline exceeded: another
    /// member may do; 5 not found (a lease); 16, or 3 with a token (the auth store moved on):
    /// the token is renewed; anything else is etcd's refusal, named by `refusal`.
    private func classify(code: Int, token: String?, key: String?) -> Outcome {
        switch code {
        case 14, 4: return .next(code == 14 ? "unavailable (no leader?)" : "deadline exceeded")
        case 5: return .fail(EtcdError(.leaseNotFound, "the etcd lease has expired or was revoked"))
        case 16 where token != nil, 3 where token != nil:
            return .fail(EtcdError(.tokenRejected, "etcd did not take the auth token (gRPC code \(code))", code: code))
        default: return .fail(refusal(code: code, key: key))
        }
    }

    static func connectionFailure(_ error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            case .remoteConnectionClosed: return "closed the connection"
            default: return "HTTP client error"
            }
        }
        if error is ChannelError { return "connection refused or reset" }
        if let error = error as? IOError { return "connection failed (errno \(error.errnoCode))" }
        return "connection failed"
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
