import HummingbirdCore
import NIOCore
import NIOHTTP1

/// The HTTP/1 rules Hummingbird's HTTP-types layer cannot apply, because it never sees the
/// request's version, its `Connection` and `Transfer-Encoding` headers, or a head the
/// decoder refused. It sits right after NIO's request decoder:
/// - an HTTP/1.0 request is answered `HTTP/1.0`, and without keep-alive the connection is
///   closed after the answer (a 1.0 client reads to EOF);
/// - `Expect: 100-continue` gets its `100 Continue` at once;
/// - refused before routing, with one JSON line and the connection closed: a request
///   target over 8 KiB (414), more than 100 header fields or 64 KiB of them (431), an
///   HTTP/1.1 request without exactly one `Host` (400), a transfer coding other than
///   `chunked` (501), an HTTP version other than 1.0 and 1.1 (505), and a head the
///   decoder could not parse (400; 431 when it overflowed).
final class HTTPEdgeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxTarget = 8 * 1024
    static let maxFields = 100
    static let maxFieldBytes = 64 * 1024
    /// The decoder's own limits sit above ours, so our answer (414, 431) is the one given.
    static let decoderLimits = HTTP1Channel.Configuration.DecoderConfiguration(
        maxHeaderFieldSize: 256 * 1024, maxHeaderListSize: 512 * 1024, maxHeaderFieldCount: 4000)

    private var version: HTTPVersion = .http1_1
    private var keepAlive = true
    /// A refused request: its body and end are dropped, and the connection closes.
    private var refusing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let (status, reason) = Self.refusal(head) {
                refusing = true
                refuse(context: context, status: status, reason: reason, version: head.version)
                return
            }
            version = head.version
            keepAlive = head.isKeepAlive
            if head.version == .http1_1,
                head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
            context.fireChannelRead(data)
        case .body, .end:
            if !refusing { context.fireChannelRead(data) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError, !refusing else {
            context.fireErrorCaught(error)
            return
        }
        refusing = true
        if case .headerOverflow = parserError {
            refuse(
                context: context, status: .requestHeaderFieldsTooLarge, reason: "request head too large",
                version: version)
        } else {
            refuse(context: context, status: .badRequest, reason: "malformed HTTP request", version: version)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200 && version == .http1_0:
            head.version = .http1_0
            head.headers.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where version == .http1_0 && !keepAlive:
            let written = promise ?? context.eventLoop.makePromise()
            context.write(data, promise: written)
            written.futureResult.whenComplete { _ in context.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }

    static func refusal(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String)? {
        guard head.version == .http1_1 || head.version == .http1_0 else {
            return (.httpVersionNotSupported, "HTTP/1.0 and HTTP/1.1 only")
        }
        if head.uri.utf8.count > maxTarget { return (.uriTooLong, "request target over \(maxTarget) bytes") }
        let fieldBytes = head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        if head.headers.count > maxFields || fieldBytes > maxFieldBytes {
            return (.requestHeaderFieldsTooLarge, "over \(maxFields) header fields or \(maxFieldBytes) bytes of them")
        }
        if head.version == .http1_1 && head.headers["host"].count != 1 {
            return (.badRequest, "an HTTP/1.1 request needs exactly one Host header")
        }
        let codings = head.headers["transfer-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if !codings.isEmpty && codings != ["chunked"] {
            return (
                .notImplemented,
                "transfer coding \(codings.joined(separator: ", ")) is not implemented; send chunked or a Content-Length"
            )
        }
        return nil
    }

    private func refuse(
        context: ChannelHandlerContext, status: HTTPResponseStatus, reason: String, version: HTTPVersion
    ) {
        let body = ByteBuffer(string: "{\"error\":\"\(reason)\"}\n")
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "connection", value: "close")
        headers.add(name: "server", value: "release-agent")
        let answer = version == .http1_0 ? HTTPVersion.http1_0 : .http1_1
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: answer, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}

/// Added by Hummingbird after its HTTP-types codec; puts `HTTPEdgeHandler` where it can see
/// NIO's own request parts: right after the request decoder.
final class HTTPEdgeInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        guard let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) else { return }
        try? pipeline.addHandler(HTTPEdgeHandler(), position: .after(decoder))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }
}
