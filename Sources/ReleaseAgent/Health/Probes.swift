import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// HTTP GET through Foundation's URLSession (libcurl underneath), redirects refused.
enum HTTPProbe {
    private final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }

    private final class Outcome: @unchecked Sendable {
        var result: String?
    }

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        configuration.urlCache = nil
        configuration.connectionProxyDictionary = [:]
        return URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
    }()

    static func describe(_ error: Error, timeout: Duration) -> String {
        guard let code = (error as? URLError)?.code else { return "\(error)" }
        switch code {
        case .timedOut: return "no answer within \(timeout.short)"
        case .cannotConnectToHost: return "Connection refused"
        case .networkConnectionLost: return "the connection was closed before an answer"
        case .cannotFindHost: return "unknown host"
        case .badServerResponse: return "not an HTTP answer"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate:
            return "TLS failed (\(code.rawValue))"
        default: return "URL error \(code.rawValue)"
        }
    }

    static func get(_ text: String, expect: String?, timeout: Duration) -> String? {
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
            return "health-url \(text) is not an http(s) URL"
        }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData)
        request.timeoutInterval = timeout.seconds
        request.setValue("release-agent health check", forHTTPHeaderField: "User-Agent")
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: request) { data, response, error in
            defer { done.signal() }
            if let error {
                outcome.result = describe(error, timeout: timeout)
                return
            }
            guard let http = response as? HTTPURLResponse else {
                outcome.result = "no HTTP response"
                return
            }
            guard (200..<300).contains(http.statusCode) else {
                outcome.result = "HTTP \(http.statusCode)"
                return
            }
            if let expect, !(String(data: data ?? Data(), encoding: .utf8) ?? "").contains(expect) {
                outcome.result = "HTTP \(http.statusCode) but the body lacks \"\(expect)\""
            }
        }
        task.resume()
        if done.wait(timeout: .now() + timeout.seconds + 1) == .timedOut {
            task.cancel()
            return "no answer within \(timeout.short)"
        }
        return outcome.result
    }
}

/// A TCP connect with a timeout.
enum TCPProbe {
    static func connect(host: String, port: Int, timeout: Duration) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { return "cannot resolve \(host): \(String(cString: gai_strerror(rc)))" }
        defer { freeaddrinfo(list) }
        var last = "no address for \(host)"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else {
                last = "connect to \(host):\(port): \(String(cString: strerror(errno)))"
                continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, Int32(timeout.seconds * 1000)) == 1 else {
                last = "connect to \(host):\(port) timed out after \(timeout.short)"
                continue
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error == 0 { return nil }
            last = "connect to \(host):\(port): \(String(cString: strerror(error)))"
        }
        return last
    }
}
