import Foundation

/// HTTP over a plain loopback socket, for requests no client library would send: truncated
/// bodies, huge headers, bytes sent slowly. Every read and write is bounded in time.
public enum RawHTTP {
    public struct Reply: Sendable {
        /// The status code, or nil when the server closed without an answer.
        public var status: Int?
        public var raw: String
        /// The server closed the connection (not our read timeout).
        public var closedByServer = false
        public var body: String {
            raw.range(of: "\r\n\r\n").map { String(raw[$0.upperBound...]) } ?? ""
        }
    }

    /// Sends `parts` in order, pausing `pause` seconds between them; then, if `closeWrite`,
    /// half-closes the socket. Reads until the server closes or `timeout` passes.
    public static func exchange(
        port: Int, _ parts: [Data], pause: TimeInterval = 0, closeWrite: Bool = false, timeout: TimeInterval = 30
    ) throws -> Reply {
        let fd = try connect(port: port, timeout: timeout)
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(timeout)
        for (index, part) in parts.enumerated() {
            if index > 0 && pause > 0 { Thread.sleep(forTimeInterval: pause) }
            // A server may answer and close before the whole request is sent: stop writing
            // then, or the reset that more bytes cause could discard its answer.
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 0) > 0 { break }
            guard send(fd, part) else { break }
            if Date() > deadline { break }
        }
        if closeWrite { shutdown(fd, Int32(SHUT_WR)) }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var closed = false
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { closed = true }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        let raw = String(decoding: received, as: UTF8.self)
        var status: Int?
        if raw.hasPrefix("HTTP/1."), raw.count >= 12 {
            status = Int(raw.dropFirst(9).prefix(3))
        }
        return Reply(status: status, raw: raw, closedByServer: closed)
    }

    /// A connected socket to 127.0.0.1:port whose reads and writes time out after `timeout`.
    public static func connect(port: Int, timeout: TimeInterval) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(errno)") }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw FixtureError("connect to 127.0.0.1:\(port) failed: \(errno)")
        }
        return fd
    }

    private static func send(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// A request with `Connection: close` and a Content-Length matching `body` unless given.
    public static func request(
        _ method: String = "POST", path: String = "/webhook", headers: [(String, String)], body: Data = Data(),
        contentLength: String? = nil
    ) -> Data {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(contentLength ?? String(body.count))\r\n\r\n"
        return Data(text.utf8) + body
    }
}
