import Foundation
import ReleaseAgentTestSupport
import Testing

private let secret = "hostile-secret"

/// One crafted request and the status it must get (nil: the connection is closed unanswered).
private struct Case {
    var name: String
    var bytes: [Data]
    var status: Int?
    var pause: TimeInterval = 0
    var closeWrite = false
    /// Extra check on the answer's body.
    var body: (@Sendable (String) -> Bool)? = nil
}

private func json(_ text: String) -> Data { Data(text.utf8) }

/// A GitHub-style request: `sign` signs the body with the secret (or `signature` given).
private func github(
    _ body: Data, event: String? = "push", signature: String? = nil, sign: Bool = true,
    extra: [(String, String)] = [], contentType: String? = "application/json"
) -> Data {
    var headers: [(String, String)] = [("X-GitHub-Delivery", UUID().uuidString)]
    if let event { headers.append(("X-GitHub-Event", event)) }
    if let contentType { headers.append(("Content-Type", contentType)) }
    if let signature {
        headers.append(("X-Hub-Signature-256", signature))
    } else if sign {
        headers.append(("X-Hub-Signature-256", TestHTTP.githubSignature(body, secret: secret)))
    }
    return RawHTTP.request(headers: headers + extra, body: body)
}

private func ref(_ name: String) -> Data {
    (try? JSONSerialization.data(withJSONObject: ["ref": name])) ?? Data()
}

private func cases() -> [Case] {
    let other = json(#"{"ref":"refs/heads/other"}"#)
    let good = json(#"{"ref":"refs/heads/main"}"#)
    let goodSignature = TestHTTP.githubSignature(good, secret: secret)
    let form = json("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fother%22%7D")
    let deep = json(
        #"{"ref":"refs/heads/other","x":"# + String(repeating: "[", count: 100_000)
            + String(repeating: "]", count: 100_000) + "}")
    let manyKeys = json(
        #"{"ref":"refs/heads/other","# + (0..<1_000_000).map { "\"k\($0)\":1" }.joined(separator: ",") + "}")
    let wide = json(
        #"{"ref":"refs/heads/other","a":["# + [String](repeating: "[]", count: 4_000_000).joined(separator: ",") + "]}")
    let short: @Sendable (String) -> Bool = { $0.utf8.count < 400 }
    let ignored: @Sendable (String) -> Bool = { $0.contains("\"ignored\"") && $0.utf8.count < 400 }
    var list: [Case] = [
        // Signatures.
        Case(name: "no signature", bytes: [github(good, sign: false)], status: 401),
        Case(name: "empty signature", bytes: [github(good, signature: "")], status: 401),
        Case(name: "sha256= and nothing", bytes: [github(good, signature: "sha256=")], status: 401),
        Case(
            name: "sha1 signature", bytes: [github(good, signature: "sha1=" + String(repeating: "a", count: 40))],
            status: 401),
        Case(
            name: "another secret",
            bytes: [github(good, signature: TestHTTP.githubSignature(good, secret: "not-the-secret"))], status: 401),
        Case(name: "63 hex digits", bytes: [github(good, signature: String(goodSignature.dropLast()))], status: 401),
        Case(
            name: "signature of another body",
            bytes: [github(good, signature: TestHTTP.githubSignature(other, secret: secret))], status: 401),
        Case(
            name: "upper-case prefix", bytes: [github(good, signature: "SHA256=" + goodSignature.dropFirst(7))],
            status: 401),
        Case(
            name: "duplicated good signature",
            bytes: [github(good, extra: [("X-Hub-Signature-256", goodSignature)])], status: 400),
        Case(
            name: "bad then good signature",
            bytes: [
                github(
                    good, signature: "sha256=" + String(repeating: "0", count: 64),
                    extra: [("X-Hub-Signature-256", goodSignature)])
            ], status: 400),
        Case(
            name: "body with one byte more", bytes: [github(good + json("\n"), signature: goodSignature)], status: 401),
        Case(
            name: "only the old sha1 header",
            bytes: [
                github(good, sign: false, extra: [("X-Hub-Signature", "sha1=" + String(repeating: "a", count: 40))])
            ],
            status: 401),
        // GitLab and Gitea.
        Case(
            name: "gitlab without token",
            bytes: [RawHTTP.request(headers: [("X-Gitlab-Event", "Push Hook")], body: good)], status: 401),
        Case(
            name: "gitlab wrong token",
            bytes: [
                RawHTTP.request(headers: [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "nope")], body: good)
            ],
            status: 401),
        Case(
            name: "gitlab token twice",
            bytes: [
                RawHTTP.request(
                    headers: [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", secret), ("X-Gitlab-Token", secret)],
                    body: good)
            ], status: 400),
        Case(
            name: "gitea without signature", bytes: [RawHTTP.request(headers: [("X-Gitea-Event", "push")], body: good)],
            status: 401),
        Case(
            name: "gitea with a sha256= prefix",
            bytes: [
                RawHTTP.request(
                    headers: [
                        ("X-Gitea-Event", "push"),
                        ("X-Gitea-Signature", "sha256=" + TestHTTP.hmac(good, secret: secret)),
                    ],
                    body: good)
            ], status: 401),
        // Event headers.
        Case(name: "no event header", bytes: [github(good, event: nil)], status: 400),
        Case(name: "empty event header", bytes: [github(good, event: "")], status: 400),
        Case(name: "event header twice", bytes: [github(good, extra: [("X-GitHub-Event", "push")])], status: 400),
        Case(name: "other event", bytes: [github(good, event: "issues")], status: 202, body: ignored),
        Case(
            name: "5000-character event", bytes: [github(good, event: String(repeating: "e", count: 5000))],
            status: 202, body: ignored),
        Case(name: "unicode event", bytes: [github(good, event: "püsh-☃")], status: 202, body: ignored),
        // Content types.
        Case(name: "text/plain", bytes: [github(good, contentType: "text/plain")], status: 415),
        Case(name: "multipart", bytes: [github(good, contentType: "multipart/form-data; boundary=x")], status: 415),
        Case(name: "xml", bytes: [github(good, contentType: "application/xml")], status: 415),
        Case(
            name: "content type twice", bytes: [github(good, extra: [("Content-Type", "application/json")])],
            status: 400),
        Case(
            name: "form without payload",
            bytes: [github(json("x=1"), contentType: "application/x-www-form-urlencoded")], status: 400),
        Case(
            name: "form, other branch", bytes: [github(form, contentType: "application/x-www-form-urlencoded")],
            status: 202, body: ignored),
        Case(
            name: "json with charset", bytes: [github(other, contentType: "application/json; charset=utf-8")],
            status: 202, body: ignored),
        // Bodies.
        Case(
            name: "truncated body",
            bytes: [RawHTTP.request(headers: [("X-GitHub-Event", "push")], body: json("{\"re"), contentLength: "200")],
            status: 400, closeWrite: true),
        Case(name: "empty body", bytes: [github(Data())], status: 400),
        Case(name: "truncated JSON", bytes: [github(json(#"{"ref":"refs/heads/ma"#))], status: 400),
        Case(name: "JSON array", bytes: [github(json("[]"))], status: 400),
        Case(name: "JSON null", bytes: [github(json("null"))], status: 400),
        Case(name: "ref is a number", bytes: [github(json(#"{"ref":42}"#))], status: 400),
        Case(name: "ref is null", bytes: [github(json(#"{"ref":null}"#))], status: 400),
        Case(
            name: "invalid UTF-8",
            bytes: [github(Data(#"{"ref":"refs/heads/"#.utf8) + Data([0xff, 0xfe]) + json("\"}"))], status: 400),
        Case(name: "lone surrogate", bytes: [github(json(#"{"ref":"refs/heads/\ud800"}"#))], status: 400),
        Case(name: "JSON bomb: 100,000 levels deep", bytes: [github(deep)], status: 400),
        Case(name: "JSON bomb: 1,000,000 keys", bytes: [github(manyKeys)], status: 202, body: ignored),
        Case(name: "JSON bomb: 4,000,000 empty arrays", bytes: [github(wide)], status: 202, body: ignored),
        Case(
            name: "declared 1 TB body",
            bytes: [RawHTTP.request(headers: [("X-GitHub-Event", "push")], contentLength: "1000000000000")], status: 413
        ),
        // Unicode and odd refs: all ignored, none deploys.
        Case(name: "refs/heads/mäin", bytes: [github(ref("refs/heads/mäin"))], status: 202, body: ignored),
        Case(name: "NUL after main", bytes: [github(ref("refs/heads/main\u{0}"))], status: 202, body: ignored),
        Case(
            name: "right-to-left override", bytes: [github(ref("refs/heads/\u{202E}niam"))], status: 202, body: ignored),
        Case(name: "dot-dot ref", bytes: [github(ref("refs/heads/../heads/main"))], status: 202, body: ignored),
        Case(name: "newline after main", bytes: [github(ref("refs/heads/main\n"))], status: 202, body: ignored),
        Case(name: "full-width main", bytes: [github(ref("refs/heads/ｍａｉｎ"))], status: 202, body: ignored),
        Case(
            name: "1 MB ref", bytes: [github(ref("refs/heads/" + String(repeating: "a", count: 1_000_000)))],
            status: 202, body: ignored),
        // Framing.
        Case(
            name: "100 KB header", bytes: [github(good, extra: [("X-Big", String(repeating: "a", count: 100_000))])],
            status: 431),
        Case(name: "2000 headers", bytes: [github(good, extra: (0..<2000).map { ("X-H\($0)", "a") })], status: 431),
        Case(name: "not HTTP", bytes: [Data([0, 1, 2]) + json("garbage\r\n\r\n")], status: 400),
        Case(
            name: "Content-Length and chunked",
            bytes: [
                json(
                    "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                )
            ],
            status: 400),
        Case(
            name: "negative Content-Length",
            bytes: [RawHTTP.request(headers: [("X-GitHub-Event", "push")], contentLength: "-1")], status: 400),
        Case(
            name: "bad chunk size",
            bytes: [json("POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n")],
            status: 400),
        Case(name: "unknown path", bytes: [RawHTTP.request(path: "/webhooks", headers: [])], status: 404),
        Case(name: "GET /webhook", bytes: [RawHTTP.request("GET", headers: [])], status: 405),
        Case(name: "DELETE /webhook", bytes: [RawHTTP.request("DELETE", headers: [])], status: 405),
        Case(name: "POST /healthz", bytes: [RawHTTP.request(path: "/healthz", headers: [])], status: 405),
    ]
    // Short answers: nothing echoed back at length.
    for index in list.indices where list[index].body == nil && list[index].status != nil {
        list[index].body = short
    }
    return list
}

@Suite("torture: hostile webhook requests")
struct HostileWebhookTests {
    @Test("60 crafted requests: each gets its status, none deploys, the daemon stays up; then a real push deploys")
    func crafted() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try secret.write(toFile: scratch.sub("secret"), atomically: true, encoding: .utf8)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let b = try repo.commit("b")
        let serve = try ServeProcess(
            agent: agent, arguments: ["--webhook-secret-file", scratch.sub("secret"), "--poll-interval", "0"])

        // The two slow ones run beside the rest: a body at 2 bytes a second, headers likewise.
        final class SlowResults: @unchecked Sendable {
            var body: RawHTTP.Reply?
            var headers: RawHTTP.Reply?
            var headerSeconds: TimeInterval = 0
        }
        let slow = SlowResults()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            let head = RawHTTP.request(headers: [("X-GitHub-Event", "push")], contentLength: "200")
            slow.body = try? RawHTTP.exchange(
                port: serve.port, [head] + Array(repeating: json("a"), count: 120), pause: 0.5, timeout: 60)
        }
        DispatchQueue.global().async(group: group) {
            let start = Date()
            let head =
                Array("POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
                + Array(repeating: UInt8(ascii: "a"), count: 200)
            slow.headers = try? RawHTTP.exchange(port: serve.port, head.map { Data([$0]) }, pause: 0.5, timeout: 60)
            slow.headerSeconds = Date().timeIntervalSince(start)
        }

        let all = cases()
        #expect(all.count + 2 >= 60)
        for item in all {
            let reply = try RawHTTP.exchange(
                port: serve.port, item.bytes, pause: item.pause, closeWrite: item.closeWrite)
            #expect(reply.status == item.status, "\(item.name): \(reply.raw.prefix(300))")
            if let check = item.body {
                #expect(check(reply.body), "\(item.name): \(reply.body.prefix(300))")
            }
        }
        #expect(group.wait(timeout: .now() + 90) == .success)
        #expect(slow.body?.status == 408, "slow body: \(slow.body?.raw.prefix(200) ?? "no reply")")
        #expect(slow.headers?.status == nil, "slow headers were answered: \(slow.headers?.raw.prefix(200) ?? "")")
        #expect(slow.headerSeconds < 45, "slow headers held the connection \(slow.headerSeconds) s")

        // Nothing deployed, the daemon is up, and a real push still works.
        #expect(agent.currentSHA == a, "a crafted request deployed")
        #expect(try agent.historyEvents().count == 1)
        #expect(try TestHTTP.send("GET", serve.base + "/healthz").status == 200)
        let good = json(#"{"ref":"refs/heads/main"}"#)
        let push = try RawHTTP.exchange(port: serve.port, [github(good)])
        #expect(push.status == 202, "\(push.raw)")
        #expect(eventually { agent.currentSHA == b })
        #expect(try serve.stop().status == 0)
    }
}
