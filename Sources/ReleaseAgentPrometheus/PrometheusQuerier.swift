import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
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

    public func query(_ promql: String) -> QueryAnswer {
        let response: HTTPClient.Response
        do {
            var request = try HTTPClient.Request(url: endpoint, method: .POST)
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.headers.add(name: "Accept", value: "application/json")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.body = .string("query=" + Self.formEncoded(promql))
            let deadline = NIODeadline.now() + .seconds(AnalysisSettings.queryTimeout.components.seconds)
            // An answer of a query that must be one number is small; one over 1 MiB is not
            // Prometheus's and is refused while it arrives.
            let task = http.execute(
                request: request, delegate: ResponseAccumulator(request: request, maxBodySize: 1 << 20),
                deadline: deadline)
            guard let result = Self.await(task) else { return .error("cut by shutdown") }
            response = try result.get()
        } catch is ResponseAccumulator.ResponseTooBigError {
            return .error("an answer over 1 MiB; the query must answer one number")
        } catch {
            return .error("cannot reach \(endpoint): \(Self.describe(error))")
        }
        let body = response.body.map { Data($0.readableBytesView) } ?? Data()
        return QueryAnswer.classify(status: Int(response.status.code), body: body)
    }

    /// The task's result; nil, with the request cancelled, when a shutdown begins first. The
    /// deploy runs synchronously on its own thread and `Cancellation` sends no notification,
    /// so this looks every 20 ms, within the request's deadline; a shutdown thus cuts a
    /// hanging query at once instead of after its timeout (the grace is often shorter).
    static func await(_ task: HTTPClient.Task<HTTPClient.Response>) -> Result<HTTPClient.Response, Error>? {
        let box = NIOLockedValueBox<Result<HTTPClient.Response, Error>?>(nil)
        task.futureResult.whenComplete { result in box.withLockedValue { $0 = result } }
        while true {
            if let result = box.withLockedValue({ $0 }) { return result }
            if Cancellation.isStopping {
                task.cancel()
                return nil
            }
            usleep(20_000)
        }
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
