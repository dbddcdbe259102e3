import Crypto
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A blocking HTTP client for tests (URLSession underneath), bounded by a timeout.
public enum TestHTTP {
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
        public var headers: [String: String]
    }

    private final class Box: @unchecked Sendable {
        var reply: Reply?
        var error: String?
    }

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.connectionProxyDictionary = [:]
        return URLSession(configuration: configuration)
    }()

    public static func send(
        _ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, timeout: TimeInterval = 30
    ) throws -> Reply {
        guard let target = URL(string: url) else { throw FixtureError("bad URL \(url)") }
        var request = URLRequest(url: target, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: request) { data, response, error in
            defer { done.signal() }
            if let error {
                box.error = "\(error)"
                return
            }
            let http = response as? HTTPURLResponse
            var fields: [String: String] = [:]
            for (key, value) in http?.allHeaderFields ?? [:] { fields["\(key)".lowercased()] = "\(value)" }
            box.reply = Reply(
                status: http?.statusCode ?? 0, body: String(decoding: data ?? Data(), as: UTF8.self), headers: fields)
        }.resume()
        guard done.wait(timeout: .now() + timeout + 5) == .success else {
            throw FixtureError("\(method) \(url) timed out")
        }
        if let reply = box.reply { return reply }
        throw FixtureError("\(method) \(url) failed: \(box.error ?? "no reply")")
    }

    /// GitHub's `X-Hub-Signature-256` value for `body`.
    public static func githubSignature(_ body: Data, secret: String) -> String {
        "sha256=" + hmac(body, secret: secret)
    }

    public static func hmac(_ body: Data, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}

/// `release-agent serve` running on a free loopback port.
public final class ServeProcess: @unchecked Sendable {
    public let port: Int
    public let running: RunningCommand
    public var base: String { "http://127.0.0.1:\(port)" }

    public init(agent: Agent, arguments: [String]) throws {
        port = freePort()
        running = try agent.start("serve", ["--listen", "127.0.0.1:\(port)"] + arguments)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let reply = try? TestHTTP.send("GET", "http://127.0.0.1:\(port)/healthz", timeout: 2),
                reply.status == 200
            {
                return
            }
            if kill(running.pid, 0) != 0 { break }
            usleep(50_000)
        }
        kill(running.pid, SIGKILL)
        let result = try? running.wait(timeout: 5)
        throw FixtureError("serve did not become healthy: \(result?.stderr ?? "")")
    }

    /// SIGTERM, then the exit status (bounded).
    public func stop(timeout: TimeInterval = 60) throws -> CommandResult {
        kill(running.pid, SIGTERM)
        return try running.wait(timeout: timeout)
    }

    deinit {
        kill(running.pid, SIGKILL)
        _ = try? running.wait(timeout: 10)
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
public func eventually(timeout: TimeInterval = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
