import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 18, item 3: HTTP edges of `serve`, over a raw socket.
@Suite("serve: HTTP edges over a raw socket", .serialized)
struct HTTPEdgeTests {
    private func raw(_ text: String) -> Data { Data(text.utf8) }

    @Test("each edge gets the answer RFC 9110/9112 gives it, and the daemon keeps serving")
    func edges() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        let serve = try ServeProcess(agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0"])
        let port = serve.port
        let close = "Host: 127.0.0.1\r\nConnection: close\r\n"
        // One rule for a path whatever the method.
        for method in ["GET", "PUT", "DELETE"] {
            let reply = try RawHTTP.exchange(port: port, [raw("\(method) //webhook HTTP/1.1\r\n\(close)\r\n")])
            #expect(reply.status == 405, "\(method) //webhook: \(reply.raw.prefix(200))")
            #expect(reply.raw.contains("Allow: POST"))
        }
        let slashes = try RawHTTP.exchange(
            port: port, [raw("POST //webhook HTTP/1.1\r\n\(close)X-GitHub-Event: ping\r\nContent-Length: 2\r\n\r\n{}")])
        #expect(slashes.status == 200, "\(slashes.raw.prefix(200))")
        // HTTP/1.0 without keep-alive: a 1.0 answer, and the connection closes at once.
        // (Our read gives up after 10 s, before serve's 15 s idle timeout would close it.)
        let old = try RawHTTP.exchange(port: port, [raw("GET /healthz HTTP/1.0\r\n\r\n")], timeout: 10)
        #expect(old.raw.hasPrefix("HTTP/1.0 200"), "\(old.raw.prefix(200))")
        #expect(old.closedByServer, "the 1.0 connection stayed open")
        // A transfer coding the server does not implement.
        let gzip = try RawHTTP.exchange(
            port: port,
            [
                raw(
                    "POST /webhook HTTP/1.1\r\n\(close)X-GitHub-Event: ping\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
                )
            ])
        #expect(gzip.status == 501, "\(gzip.raw.prefix(200))")
        // HTTP/1.1 without Host.
        let noHost = try RawHTTP.exchange(port: port, [raw("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")])
        #expect(noHost.status == 400, "\(noHost.raw.prefix(200))")
        // HEAD where GET works.
        let head = try RawHTTP.exchange(port: port, [raw("HEAD /metrics HTTP/1.1\r\n\(close)\r\n")])
        #expect(head.status == 200, "\(head.raw.prefix(200))")
        #expect(head.body.isEmpty)
        // Too long a target, too many header fields.
        let long = try RawHTTP.exchange(
            port: port, [raw("GET /\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\n\(close)\r\n")])
        #expect(long.status == 414, "\(long.raw.prefix(200))")
        let fields = (0..<2000).map { "X-Field-\($0): y\r\n" }.joined()
        let many = try RawHTTP.exchange(port: port, [raw("GET /healthz HTTP/1.1\r\n\(close)\(fields)\r\n")])
        #expect(many.status == 431, "\(many.raw.prefix(200))")
        // Expect: 100-continue gets its 100 before the body is sent.
        let continued = try expectContinue(port: port)
        #expect(continued.hasPrefix("HTTP/1.1 100 Continue"), "\(continued.prefix(200))")
        #expect(continued.contains("HTTP/1.1 200 OK"), "\(continued.prefix(300))")
        // Still serving.
        #expect(try TestHTTP.send("GET", serve.base + "/healthz").status == 200)
        #expect(try serve.stop().status == 0)
    }

    /// Sends the head with `Expect: 100-continue`, waits (bounded) for the 100, then the body.
    private func expectContinue(port: Int) throws -> String {
        let fd = try RawHTTP.connect(port: port, timeout: 5)
        defer { close(fd) }
        func sendText(_ text: String) { _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }
        func receive() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
        sendText(
            "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-GitHub-Event: ping\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        let first = receive()
        sendText("{}")
        var rest = ""
        for _ in 0..<10 {
            let more = receive()
            if more.isEmpty { break }
            rest += more
        }
        return first + rest
    }
}
