import Foundation

/// An HTTP/1.1 GET over a plain socket: the health check talks to a release on this host, so
/// no TLS, and no libcurl (URLSession) loaded into every run of the CLI. Redirects are not
/// followed (a 3xx is not healthy); a chunked body is decoded before `health-expect` is looked for.
public enum HTTPProbe {
    public struct Target: Equatable, Sendable {
        var host: String
        var port: Int
        /// Path and query, starting with `/`.
        var path: String

        public var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }
    }

    /// `http://host[:port][/path][?query]`; hosts may be `[v6]`.
    static func parse(_ text: String) -> Target? {
        guard text.lowercased().hasPrefix("http://") else { return nil }
        let rest = text.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = String(rest[..<slash])
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        var host = authority
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()) else { return nil }
                port = number
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let number = Int(authority[authority.index(after: colon)...]) else { return nil }
            host = String(authority[..<colon])
            port = number
        }
        guard !host.isEmpty, (1...65535).contains(port), !path.contains(where: { $0 == " " || $0.isNewline }) else {
            return nil
        }
        return Target(host: host, port: port, path: path)
    }

    /// nil when healthy, else why not.
    static func get(_ target: Target, expect: String?, timeout: Duration) -> String? {
        guard (1...65535).contains(target.port) else { return "\(target.url) has no port to check" }
        let deadline = ContinuousClock.now + timeout
        let fd: Int32
        switch TCPProbe.open(host: target.host, port: target.port, timeout: timeout) {
        case .connected(let socket): fd = socket
        case .failed(let reason): return reason
        }
        defer { close(fd) }
        let hostHeader = target.host.contains(":") ? "[\(target.host)]:\(target.port)" : "\(target.host):\(target.port)"
        let request = Array(
            ("GET \(target.path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: release-agent health check\r\n"
                + "Accept: */*\r\nConnection: close\r\n\r\n").utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else {
            return "the connection was closed before the request was sent"
        }
        guard let raw = receive(fd, until: deadline, needBody: expect != nil) else {
            return "no answer within \(timeout.short)"
        }
        return judge(raw, expect: expect)
    }

    /// Reads until the answer is complete (a server may ignore `Connection: close`), the
    /// server closes, 1 MiB, or the deadline; nil on the deadline with nothing read.
    private static func receive(_ fd: Int32, until deadline: ContinuousClock.Instant, needBody: Bool) -> [UInt8]? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while data.count < 1 << 20 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return data.isEmpty ? nil : data }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(1, left.seconds * 1000)))
            if ready == 0 { return data.isEmpty ? nil : data }
            if ready < 0 { if errno == EINTR { continue } else { break } }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            if isComplete(data, needBody: needBody) { break }
        }
        return data
    }

    /// The head of an answer: its lines (status line first) and where the body starts.
    struct Head {
        var lines: [String]
        var bodyStart: Int

        init?(_ raw: [UInt8]) {
            guard let split = raw.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
            lines = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            bodyStart = split.upperBound
        }

        /// The value of the first header `name` (lower case), trimmed.
        func field(_ name: String) -> String? {
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name else { continue }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return nil
        }

        var isChunked: Bool { field("transfer-encoding")?.lowercased().contains("chunked") == true }
    }

    /// True when `data` holds the whole head and, if `needBody`, the whole body
    /// (Content-Length, or the last chunk of a chunked body).
    static func isComplete(_ data: [UInt8], needBody: Bool) -> Bool {
        guard let head = Head(data) else { return false }
        guard needBody else { return true }
        if let length = head.field("content-length").flatMap(Int.init) { return data.count - head.bodyStart >= length }
        return head.isChunked && data.suffix(5).elementsEqual(Array("0\r\n\r\n".utf8))
    }

    /// nil when `raw` is a 2xx answer whose body holds `expect`.
    static func judge(_ raw: [UInt8], expect: String?) -> String? {
        guard let head = Head(raw) else {
            return raw.isEmpty ? "the connection was closed before an answer" : "not an HTTP answer"
        }
        let status = head.lines[0].split(separator: " ")
        guard status.count >= 2, status[0].hasPrefix("HTTP/1."), let code = Int(status[1]) else {
            return "not an HTTP answer"
        }
        guard (200..<300).contains(code) else { return "HTTP \(code)" }
        guard let expect else { return nil }
        var body = Array(raw[head.bodyStart...])
        if head.isChunked { body = dechunk(body) }
        return String(decoding: body, as: UTF8.self).contains(expect)
            ? nil : "HTTP \(code) but the body lacks \"\(expect)\""
    }

    /// The data of a chunked body (as much as arrived).
    static func dechunk(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < body.count {
            guard let end = body[index...].firstRange(of: Array("\r\n".utf8)) else { break }
            let sizeText = String(decoding: body[index..<end.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = end.upperBound
            out.append(contentsOf: body[start..<min(body.count, start + size)])
            index = start + size + 2
        }
        return out
    }
}
