import Foundation
import ReleaseAgent
import ReleaseAgentServe
import Testing

@Suite("webhook verification")
struct WebhookVerifierTests {
    let secret = Array("topsecret".utf8)
    var verifier: WebhookVerifier { WebhookVerifier(secret: secret, branch: "main") }

    func body(_ ref: String, deleted: Bool = false) -> [UInt8] {
        Array(#"{"ref":"\#(ref)","deleted":\#(deleted)}"#.utf8)
    }

    func github(_ event: String, _ body: [UInt8], delivery: String = "d") -> [String: String] {
        [
            "x-github-event": event, "x-github-delivery": delivery,
            "x-hub-signature-256": WebhookVerifier.signature(body: body, secret: secret),
        ]
    }

    @Test("a signed push to the branch deploys; to another ref, a tag or a deleted branch it is ignored")
    func pushes() {
        #expect(
            verifier.decide(headers: github("push", body("refs/heads/main")), body: body("refs/heads/main"))
                == .deploy(delivery: "d", source: "github"))
        for payload in [body("refs/heads/dev"), body("refs/tags/v1"), body("refs/heads/main", deleted: true)] {
            guard case .answer(202, let json, "d") = verifier.decide(headers: github("push", payload), body: payload)
            else {
                Issue.record("expected 202 ignored")
                continue
            }
            #expect(json.contains("ignored"))
        }
    }

    @Test("signatures: missing, wrong, for another body, or malformed are 401; HMAC over the raw bytes")
    func signatures() {
        let payload = body("refs/heads/main")
        var headers = github("push", payload)
        headers["x-hub-signature-256"] = nil
        #expect(
            verifier.decide(headers: headers, body: payload)
                == .reject(status: 401, reason: "missing X-Hub-Signature-256"))
        headers["x-hub-signature-256"] = WebhookVerifier.signature(body: payload + [0x20], secret: secret)
        #expect(
            verifier.decide(headers: headers, body: payload)
                == .reject(status: 401, reason: "X-Hub-Signature-256 does not match the body"))
        headers["x-hub-signature-256"] = "sha1=abc"
        if case .reject(401, _) = verifier.decide(headers: headers, body: payload) {
        } else {
            Issue.record("sha1 accepted")
        }
        // Unsigned mode takes anything well formed.
        let open = WebhookVerifier(secret: nil, branch: "main")
        #expect(
            open.decide(headers: ["x-github-event": "push"], body: payload) == .deploy(delivery: nil, source: "github"))
    }

    @Test("missing event headers and malformed JSON are 400; ping is 200")
    func malformed() {
        #expect(verifier.decide(headers: [:], body: []).isReject(400))
        let bad = Array("{nope".utf8)
        #expect(verifier.decide(headers: github("push", bad), body: bad).isReject(400))
        let list = Array("[1,2]".utf8)
        #expect(verifier.decide(headers: github("push", list), body: list).isReject(400))
        let empty = Array("{}".utf8)
        guard case .answer(200, _, _) = verifier.decide(headers: github("ping", empty), body: empty) else {
            Issue.record("ping not 200")
            return
        }
        #expect(verifier.decide(headers: github("ping", []), body: []).isReject(400))
    }

    @Test("a deciding header given twice is 400; other content types 415; form-encoded payloads are read")
    func headersAndContentTypes() {
        let payload = body("refs/heads/main")
        let signed = github("push", payload)
        var fields = signed.map { (name: $0.key, value: $0.value) }
        #expect(verifier.decide(fields: fields, body: payload) == .deploy(delivery: "d", source: "github"))
        fields.append((name: "X-Hub-Signature-256", value: signed["x-hub-signature-256"]!))
        #expect(verifier.decide(fields: fields, body: payload).isReject(400))

        var text = signed
        text["content-type"] = "text/plain"
        #expect(verifier.decide(headers: text, body: payload).isReject(415))
        let form = Array("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D".utf8)
        var formHeaders = github("push", form)
        formHeaders["content-type"] = "application/x-www-form-urlencoded"
        #expect(verifier.decide(headers: formHeaders, body: form) == .deploy(delivery: "d", source: "github"))

        var emptyDelivery = signed
        emptyDelivery["x-github-delivery"] = ""
        #expect(verifier.decide(headers: emptyDelivery, body: payload) == .deploy(delivery: nil, source: "github"))
    }

    @Test("GitLab token and Gitea signature use the same secret")
    func otherForges() {
        let payload = body("refs/heads/main")
        #expect(
            verifier.decide(headers: ["x-gitlab-event": "Push Hook", "x-gitlab-token": "topsecret"], body: payload)
                == .deploy(delivery: nil, source: "gitlab"))
        #expect(
            verifier.decide(headers: ["x-gitlab-event": "Push Hook", "x-gitlab-token": "topsecreT"], body: payload)
                .isReject(401))
        let hex = String(WebhookVerifier.signature(body: payload, secret: secret).dropFirst(7))
        #expect(
            verifier.decide(
                headers: ["x-gitea-event": "push", "x-gitea-signature": hex, "x-gitea-delivery": "g"], body: payload)
                == .deploy(delivery: "g", source: "gitea"))
        #expect(
            verifier.decide(headers: ["x-gitea-event": "push", "x-gitea-signature": "sha256=" + hex], body: payload)
                .isReject(401))
    }
}

extension WebhookDecision {
    func isReject(_ status: Int) -> Bool {
        if case .reject(status, _) = self { return true }
        return false
    }
}
