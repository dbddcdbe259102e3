import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ReleaseAgent
import ServiceLifecycle
import Synchronization

/// The HTTP server of `serve`, assembled from Hummingbird's router and HTTP/1 channel without
/// its `Application`: Application runs a timer that formats the Date header every second,
/// which kept an idle daemon waking up. Here the header is formatted when a response needs
/// it, at most once a second, so an idle `serve` uses no CPU.
enum HTTPService {
    static func make(
        router: Router<BasicRequestContext>, host: String, port: Int, idleTimeout: Duration, logger: Logger,
        onRunning: @escaping @Sendable (any Channel) async -> Void
    ) throws -> any Service {
        let responder = router.buildResponder()
        let dates = HTTPDateHeader()
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [HTTPEdgeInstaller()], idleTimeout: .init(idleTimeout),
            httpDecoderConfiguration: HTTPEdgeHandler.decoderLimits)
        return try HTTPServerBuilder.http1(configuration: configuration).buildServer(
            configuration: .init(address: .hostname(host, port: port), serverName: "release-agent"),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger,
            responder: { request, writer, channel in
                let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
                var response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPResponseError {
                    response = try error.response(from: request, context: context)
                } catch {
                    logger.debug("handler error", metadata: ["error": "\(error)"])
                    response = Response(status: .internalServerError)
                }
                response.headers[.date] = dates.now()
                response.headers[.server] = "release-agent"
                try await writer.write(response: response.head, body: response.body)
            },
            onServerRunning: onRunning)
    }
}

/// RFC 9110 date for the Date header, reformatted only when the second changes.
final class HTTPDateHeader: Sendable {
    private let cache = Mutex<(second: Int, text: String)>((-1, ""))

    func now() -> String {
        let second = Int(Date().timeIntervalSince1970)
        return cache.withLock { cached in
            if cached.second != second { cached = (second, Self.format(second)) }
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
