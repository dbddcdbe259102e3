import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ReleaseAgent

/// Instant queries to Prometheus's HTTP API (`POST /api/v1/query`, form-encoded, so a long
/// query never meets a URL length limit) over AsyncHTTPClient: https with the system's CAs,
/// a bearer token from `analysis-token-file`, no redirects, `AnalysisSettings.queryTimeout`
/// per query. Like the etcd client it blocks the calling thread: deploys run on their own
/// thread, never on an event loop.
public final class PrometheusQuerier: MetricsQuerier, @unchecked Sendable {
    let endpoint: String
    let token: String?
    let http: HTTPClient

    public init(settings: AnalysisSettings) {
        endpoint = settings.prometheus + "/api/v1/query"
        token = settings.token
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(
            connect: .seconds(3), read: .seconds(AnalysisSettings.queryTimeout.components.seconds))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? http.syncShutdown() }

    /// Makes `MetricsQueriers.make` build this client.
    public static func install() {
        MetricsQueriers.make = { settings in PrometheusQuerier(settings: settings) }
    }

    public func query(_ promql: String) -> QueryAnswer {
        let response: HTTPClient.Response
        do {
            var request = try HTTPClient.Request(url: endpoint, method: .POST)
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.headers.add(name: "Accept", value: "application/json")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.body = .string("query=" + Self.formEncoded(promql))
            let deadline = NIODeadline.now() + .seconds(AnalysisSettings.queryTimeout.components.seconds)
            response = try http.execute(request: request, deadline: deadline).wait()
        } catch {
            return .error("cannot reach \(endpoint): \(Self.describe(error))")
        }
        // The body is read whole by AsyncHTTPClient; an answer of a query that must be one
        // number is small, and one over 1 MiB is not Prometheus's.
        guard let body = response.body, body.readableBytes <= 1 << 20 else {
            return response.body == nil
                ? .error("Prometheus answered HTTP \(response.status.code) with no body")
                : .error("an answer over 1 MiB; the query must answer one number")
        }
        return QueryAnswer.classify(status: Int(response.status.code), body: Data(body.readableBytesView))
    }

    /// application/x-www-form-urlencoded: everything but the unreserved characters escaped.
    static func formEncoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// Transport errors by their kind, never a library's internal text.
    static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            case .remoteConnectionClosed: return "the connection closed"
            case .invalidURL, .emptyHost, .emptyScheme: return "not a URL it can ask"
            default: return "an HTTP client error"
            }
        }
        if error is ChannelError { return "connection refused or reset" }
        if let error = error as? IOError { return "connection failed (errno \(error.errnoCode))" }
        return "connection failed"
    }
}
