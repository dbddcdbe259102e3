import Foundation
import Hummingbird
import Logging
import NIOCore
import ReleaseAgent

/// The HTTP endpoint of `serve`: /webhook, /healthz, /metrics.
struct WebhookServer {
    let verifier: WebhookVerifier
    let queue: DeployQueue
    let metrics: ServeMetrics
    let deliveries: DeliveryBook
    let settings: Settings
    let logger: Logger

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MethodGuard(metrics: metrics))
        router.post("/webhook") { request, _ in try await webhook(request) }
        router.get("/healthz") { request, _ in await healthz(request) }
        router.head("/healthz") { request, _ in
            let answer = await healthz(request)
            return Response(status: answer.status, headers: answer.headers)
        }
        router.get("/metrics") { request, _ in await metricsResponse(request) }
        router.head("/metrics") { request, _ in
            let answer = await metricsResponse(request)
            return Response(status: answer.status, headers: answer.headers)
        }
        return router
    }

    private func webhook(_ request: Request) async throws -> Response {
        let response = await handleWebhook(request)
        metrics.webhook(status: Int(response.status.code))
        logger.debug(
            "webhook",
            metadata: [
                "status": "\(response.status.code)", "event": "\(request.headers[.init("X-GitHub-Event")!] ?? "")",
            ])
        return response
    }

    private func handleWebhook(_ request: Request) async -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > WebhookVerifier.maxBody {
            return Self.json(.contentTooLarge, #"{"error":"body over 25 MiB"}"#)
        }
        let buffer: ByteBuffer
        switch await Self.readBody(request, limit: WebhookVerifier.maxBody, within: Self.bodyDeadline) {
        case .body(let body): buffer = body
        case .tooLarge: return Self.json(.contentTooLarge, #"{"error":"body over 25 MiB"}"#)
        case .unreadable: return Self.json(.badRequest, #"{"error":"the body could not be read"}"#)
        case .timedOut:
            return Self.json(
                .requestTimeout, #"{"error":"the body did not arrive within \#(Self.bodyDeadline.short)"}"#,
                extra: [.connection: "close"])
        }
        let fields = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        let decision = verifier.decide(fields: fields, body: Array(buffer.readableBytesView))
        switch decision {
        case .reject(let status, let reason):
            let body = (try? JSONSerialization.data(withJSONObject: ["error": reason])) ?? Data()
            return Self.json(HTTPResponse.Status(code: status), String(decoding: body, as: UTF8.self))
        case .answer(let status, let json, let delivery):
            if let delivery, await deliveries.seen(delivery) {
                return Self.json(.ok, #"{"duplicate":true}"#)
            }
            return Self.json(HTTPResponse.Status(code: status), json)
        case .deploy(let delivery, let source):
            if let delivery, await deliveries.seen(delivery) {
                return Self.json(.ok, #"{"duplicate":true}"#)
            }
            await queue.webhook(source)
            if let pause = PauseState.read(settings.layout) {
                // Remembered by the queue: `resume` deploys the newest head at once.
                let body =
                    (try? JSONSerialization.data(withJSONObject: ["ignored": "paused: \(pause.reason)"])) ?? Data()
                return Self.json(.accepted, String(decoding: body, as: UTF8.self))
            }
            return Self.json(.accepted, #"{"queued":true}"#)
        }
    }

    /// A request body must arrive within this; a slower one is answered 408 and closed. Slow
    /// headers are bounded by the connection idle timeout (`idleTimeout`, same length).
    static let bodyDeadline = Duration.seconds(15)
    static let idleTimeout = Duration.seconds(15)

    enum BodyRead {
        case body(ByteBuffer)
        case tooLarge
        case unreadable
        case timedOut
    }

    /// Collects the body, checking a deadline as each piece arrives: a client that trickles
    /// bytes is answered 408 at the first piece after it. A client that stops sending
    /// altogether is closed by the connection idle timeout. No timer or task per request.
    static func readBody(_ request: Request, limit: Int, within deadline: Duration) async -> BodyRead {
        let end = ContinuousClock.now + deadline
        var collected = ByteBuffer()
        do {
            for try await piece in request.body {
                guard collected.readableBytes + piece.readableBytes <= limit else { return .tooLarge }
                collected.writeImmutableBuffer(piece)
                if ContinuousClock.now > end { return .timedOut }
            }
        } catch {
            return .unreadable
        }
        return .body(collected)
    }

    private func healthz(_ request: Request) async -> Response {
        guard authorized(request, token: settings.healthToken) else {
            return Self.json(.unauthorized, #"{"error":"health-token required"}"#)
        }
        let state = await queue.state
        guard state.ready else { return Self.json(.serviceUnavailable, #"{"ready":false}"#) }
        let pause = PauseState.read(settings.layout)
        let fleet = FleetLocalState.read(settings.layout)
        let fleetObject: Any =
            fleet.map { ["state": $0.phase.rawValue, "sha": $0.sha ?? NSNull(), "detail": $0.detail] as [String: Any] }
            ?? NSNull()
        let analysis = AnalysisState.read(settings.layout)
        let analysisObject: Any =
            analysis.map { state -> [String: Any] in
                let last: Any =
                    state.measurements.last.map { measurement -> [String: Any] in
                        [
                            "check": measurement.check, "result": measurement.result.rawValue,
                            "value": measurement.value ?? NSNull(), "detail": measurement.detail,
                        ]
                    } ?? NSNull()
                return [
                    "sha": state.sha, "running": state.running, "outcome": state.outcome?.rawValue ?? NSNull(),
                    "reason": state.reason ?? NSNull(), "measurements": state.measurements.count, "last": last,
                ]
            } ?? NSNull()
        let object: [String: Any] = [
            "analysis": analysisObject,
            "fleet": fleetObject,
            "current": state.current ?? NSNull(), "deploying": state.deploying,
            "last_result": state.lastResult ?? NSNull(), "paused": pause != nil,
            "paused_reason": pause?.reason ?? NSNull(),
        ]
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Self.json(.ok, String(decoding: body, as: UTF8.self))
    }

    private func metricsResponse(_ request: Request) async -> Response {
        guard authorized(request, token: settings.metricsToken) else {
            return Self.json(.unauthorized, #"{"error":"metrics-token required"}"#)
        }
        let state = await queue.state
        let snapshot = MetricsSnapshot(layout: settings.layout, deploying: state.deploying)
        let influx = request.uri.queryParameters.get("format") == "influx"
        let text = influx ? metrics.influx(snapshot) : metrics.prometheus(snapshot)
        var headers = HTTPFields()
        headers[.contentType] = influx ? "text/plain; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A token given as `?token=` or `Authorization: Bearer`, compared in constant time.
    private func authorized(_ request: Request, token: String?) -> Bool {
        guard let token else { return true }
        let expected = Array(token.utf8)
        if let given = request.uri.queryParameters.get("token"), constantTimeEqual(Array(given.utf8), expected) {
            return true
        }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            constantTimeEqual(Array(header.dropFirst(7).utf8), expected)
        {
            return true
        }
        return false
    }

    static func json(_ status: HTTPResponse.Status, _ body: String, extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }
}

/// The methods each path takes, and its `Allow` header.
private let allowedMethods: [String: (Set<HTTPRequest.Method>, String)] = [
    "/webhook": ([.post], "POST"), "/healthz": ([.get, .head], "GET, HEAD"), "/metrics": ([.get, .head], "GET, HEAD"),
]

/// Any method a path does not take gets 405 with `Allow`, whatever the method (TRACE,
/// QUERY, ...), before routing; unknown paths stay 404.
struct MethodGuard<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        // One rule for a path whatever the method: `//webhook/` is `/webhook`, as the router sees it.
        let path = "/" + request.uri.path.split(separator: "/").joined(separator: "/")
        if let (methods, allow) = allowedMethods[path], !methods.contains(request.method) {
            if path == "/webhook" { metrics.webhook(status: 405) }
            return WebhookServer.json(
                .methodNotAllowed, #"{"error":"use \#(allow)"}"#, extra: [.allow: allow])
        }
        return try await next(request, context)
    }
}

/// Accepted delivery ids, remembered in bounded memory; a refused one is never remembered,
/// so its redelivery is still taken.
actor DeliveryBook {
    private var memory = DeliveryMemory()

    /// True when `id` was accepted before; otherwise remembers it and returns false.
    func seen(_ id: String) -> Bool {
        if memory.contains(id) { return true }
        memory.remember(id)
        return false
    }
}
