import Crypto
import Foundation

/// What the endpoint decides about one webhook request, before any deploy.
public enum WebhookDecision: Equatable, Sendable {
    /// A push to the followed branch: queue a deploy.
    case deploy(delivery: String?, source: String)
    /// Answer 200/202 with a JSON body and do nothing else.
    case answer(status: Int, json: String, delivery: String?)
    /// Refuse: 400, 401, 405, 413.
    case reject(status: Int, reason: String)
}

/// Checks a webhook request from GitHub, GitLab or Gitea/Forgejo. Pure: no I/O, so every
/// status the SPEC lists can be tested without a server.
public struct WebhookVerifier: Sendable {
    public let secret: [UInt8]?
    public let branch: String
    public static let maxBody = 25 * 1024 * 1024

    public init(secret: [UInt8]?, branch: String) {
        self.secret = secret
        self.branch = branch
    }

    /// `headers` keys are lower case.
    public func decide(headers: [String: String], body: [UInt8]) -> WebhookDecision {
        if let event = headers["x-github-event"] {
            return github(event: event, headers: headers, body: body)
        }
        if let event = headers["x-gitea-event"] ?? headers["x-forgejo-event"] {
            return gitea(event: event, headers: headers, body: body)
        }
        if let event = headers["x-gitlab-event"] {
            return gitlab(event: event, headers: headers, body: body)
        }
        return .reject(status: 400, reason: "no X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event header")
    }

    private func github(event: String, headers: [String: String], body: [UInt8]) -> WebhookDecision {
        if let failure = checkHMAC(
            headers["x-hub-signature-256"], prefix: "sha256=", body: body, header: "X-Hub-Signature-256")
        {
            return failure
        }
        let delivery = headers["x-github-delivery"]
        switch event {
        case "ping": return .answer(status: 200, json: #"{"pong":true}"#, delivery: delivery)
        case "push": return push(body: body, delivery: delivery, source: "github")
        default: return .answer(status: 202, json: ignored("event \(event)"), delivery: delivery)
        }
    }

    private func gitea(event: String, headers: [String: String], body: [UInt8]) -> WebhookDecision {
        let signature = headers["x-gitea-signature"] ?? headers["x-forgejo-signature"]
        if let failure = checkHMAC(signature, prefix: "", body: body, header: "X-Gitea-Signature") { return failure }
        let delivery = headers["x-gitea-delivery"] ?? headers["x-forgejo-delivery"]
        guard event == "push" else { return .answer(status: 202, json: ignored("event \(event)"), delivery: delivery) }
        return push(body: body, delivery: delivery, source: "gitea")
    }

    private func gitlab(event: String, headers: [String: String], body: [UInt8]) -> WebhookDecision {
        if let secret {
            guard let token = headers["x-gitlab-token"] else {
                return .reject(status: 401, reason: "missing X-Gitlab-Token")
            }
            guard constantTimeEqual(Array(token.utf8), secret) else {
                return .reject(status: 401, reason: "X-Gitlab-Token does not match the secret")
            }
        }
        let delivery = headers["x-gitlab-event-uuid"] ?? headers["x-gitlab-webhook-uuid"]
        guard event == "Push Hook" else {
            return .answer(status: 202, json: ignored("event \(event)"), delivery: delivery)
        }
        return push(body: body, delivery: delivery, source: "gitlab")
    }

    /// Reads `ref` (and `deleted` / an all-zero `after`) from a push payload.
    private func push(body: [UInt8], delivery: String?, source: String) -> WebhookDecision {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .reject(status: 400, reason: "the body is not a JSON object")
        }
        guard let ref = object["ref"] as? String else {
            return .reject(status: 400, reason: "the push payload has no ref")
        }
        if object["deleted"] as? Bool == true
            || (object["after"] as? String).map({ $0.allSatisfy { $0 == "0" } && !$0.isEmpty }) == true
        {
            return .answer(status: 202, json: ignored("branch deleted"), delivery: delivery)
        }
        if ref.hasPrefix("refs/tags/") { return .answer(status: 202, json: ignored("tag \(ref)"), delivery: delivery) }
        guard ref == "refs/heads/\(branch)" else {
            return .answer(status: 202, json: ignored("ref \(ref) is not refs/heads/\(branch)"), delivery: delivery)
        }
        return .deploy(delivery: delivery, source: source)
    }

    private func checkHMAC(_ header: String?, prefix: String, body: [UInt8], header name: String) -> WebhookDecision? {
        guard let secret else { return nil }
        guard let header else { return .reject(status: 401, reason: "missing \(name)") }
        guard header.hasPrefix(prefix), let given = Self.hexBytes(String(header.dropFirst(prefix.count))) else {
            return .reject(status: 401, reason: "\(name) is not \(prefix)<hex>")
        }
        let key = SymmetricKey(data: secret)
        guard HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: body, using: key) else {
            return .reject(status: 401, reason: "\(name) does not match the body")
        }
        return nil
    }

    private func ignored(_ reason: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: ["ignored": reason])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    /// The GitHub signature header for `body` (used by tests and the benchmark).
    public static func signature(body: [UInt8], secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<a.count { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// Delivery ids already accepted, bounded: the oldest are forgotten first.
struct DeliveryMemory: Sendable {
    private var order: [String] = []
    private var seen: Set<String> = []
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    func contains(_ id: String) -> Bool { seen.contains(id) }

    mutating func remember(_ id: String) {
        guard seen.insert(id).inserted else { return }
        order.append(id)
        if order.count > capacity {
            seen.remove(order.removeFirst())
        }
    }
}
