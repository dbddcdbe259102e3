import Crypto
import Foundation
import ReleaseAgent

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

    /// Headers whose value decides what happens: given twice, the request is ambiguous.
    static let singleHeaders: Set<String> = [
        "content-type", "x-github-event", "x-github-delivery", "x-hub-signature-256", "x-gitlab-event",
        "x-gitlab-token", "x-gitlab-event-uuid", "x-gitea-event", "x-gitea-signature", "x-gitea-delivery",
        "x-forgejo-event", "x-forgejo-signature", "x-forgejo-delivery",
    ]

    /// The request's header fields as they came (any case, repeats kept).
    public func decide(fields: [(name: String, value: String)], body: [UInt8]) -> WebhookDecision {
        var headers: [String: String] = [:]
        for field in fields {
            let name = field.name.lowercased()
            if headers[name] != nil, Self.singleHeaders.contains(name) {
                return .reject(status: 400, reason: "the header \(field.name) is given more than once; send it once")
            }
            headers[name] = field.value
        }
        return decide(headers: headers, body: body)
    }

    /// `headers` keys are lower case.
    public func decide(headers: [String: String], body: [UInt8]) -> WebhookDecision {
        for name in ["x-github-event", "x-gitea-event", "x-forgejo-event", "x-gitlab-event"]
        where headers[name]?.trimmingCharacters(in: .whitespaces).isEmpty == true {
            return .reject(status: 400, reason: "the \(name) header is empty")
        }
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
        let kind: Event = event == "ping" ? .ping : event == "push" ? .push : .other(event)
        return handle(kind, headers: headers, body: body, delivery: headers["x-github-delivery"], source: "github")
    }

    private func gitea(event: String, headers: [String: String], body: [UInt8]) -> WebhookDecision {
        let signature = headers["x-gitea-signature"] ?? headers["x-forgejo-signature"]
        if let failure = checkHMAC(signature, prefix: "", body: body, header: "X-Gitea-Signature") { return failure }
        let delivery = headers["x-gitea-delivery"] ?? headers["x-forgejo-delivery"]
        return handle(
            event == "push" ? .push : .other(event), headers: headers, body: body, delivery: delivery, source: "gitea")
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
        return handle(
            event == "Push Hook" ? .push : .other(event), headers: headers, body: body, delivery: delivery,
            source: "gitlab")
    }

    private enum Event {
        case ping
        case push
        case other(String)
    }

    /// After authentication: every event's body must be a JSON object; then ping, push or ignore.
    private func handle(_ event: Event, headers: [String: String], body: [UInt8], delivery: String?, source: String)
        -> WebhookDecision
    {
        // An empty delivery id is no id: it must not make later requests look like repeats.
        let delivery = delivery.flatMap { $0.isEmpty ? nil : $0 }
        guard !body.isEmpty else { return .reject(status: 400, reason: "the body is empty; send the JSON payload") }
        let json: Data
        switch Self.payloadJSON(body: body, contentType: headers["content-type"]) {
        case .json(let data): json = data
        case .refused(let refusal): return refusal
        }
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            return .reject(status: 400, reason: "the body is not a JSON object")
        }
        switch event {
        case .ping: return .answer(status: 200, json: #"{"pong":true}"#, delivery: delivery)
        case .other(let name): return .answer(status: 202, json: ignored("event \(name)"), delivery: delivery)
        case .push: return push(object, delivery: delivery, source: source)
        }
    }

    enum Payload {
        case json(Data)
        case refused(WebhookDecision)
    }

    /// The JSON of a payload: the body itself, or GitHub's form encoding (`payload=<json>`).
    static func payloadJSON(body: [UInt8], contentType: String?) -> Payload {
        let media = (contentType ?? "application/json").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        switch media ?? "" {
        case "application/json", "": return .json(Data(body))
        case let type where type.hasPrefix("application/") && type.hasSuffix("+json"): return .json(Data(body))
        case "application/x-www-form-urlencoded":
            for pair in body.split(separator: UInt8(ascii: "&")) where pair.starts(with: Array("payload=".utf8)) {
                let value = String(decoding: pair.dropFirst(8), as: UTF8.self).replacingOccurrences(of: "+", with: " ")
                guard let json = value.removingPercentEncoding else {
                    return .refused(.reject(status: 400, reason: "the payload field is not valid percent-encoding"))
                }
                return .json(Data(json.utf8))
            }
            // No payload field: a JSON body sent with the form type (curl -d does that).
            return .json(Data(body))
        default:
            let shown = String((contentType ?? "").prefix(100))
            return .refused(
                .reject(
                    status: 415,
                    reason:
                        "Content-Type \(shown) is not supported; send application/json or application/x-www-form-urlencoded"
                ))
        }
    }

    /// Reads `ref` (and `deleted` / an all-zero `after`) from a push payload.
    private func push(_ object: [String: Any], delivery: String?, source: String) -> WebhookDecision {
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

    /// `{"ignored": reason}`; a reason that echoes a ref or event is cut to 200 characters.
    private func ignored(_ reason: String) -> String {
        let reason = reason.count > 200 ? String(reason.prefix(200)) + "..." : reason
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
