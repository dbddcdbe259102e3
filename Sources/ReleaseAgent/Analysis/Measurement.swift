import Foundation

/// One answer of Prometheus to one check, classified as the SPEC says.
public struct Measurement: Codable, Sendable, Equatable {
    public enum Result: String, Codable, Sendable, CaseIterable {
        case passed, failed
        /// An empty vector, NaN or an infinity: the query selected nothing to judge.
        case noData = "no data"
        /// Transport error, non-2xx, `status: error`, an answer that is not one number.
        case error
    }

    public var check: String
    public var time: Double
    public var result: Result
    public var value: Double?
    /// The bound, or what went wrong, as a line (escaped, at most 200 characters).
    public var detail: String

    public init(check: String, result: Result, value: Double?, detail: String) {
        self.check = check
        self.time = Date().timeIntervalSince1970
        self.result = result
        self.value = value
        self.detail = detail
    }

    /// Counted toward `analysis-count` (errors and no-data answers are not).
    public var counts: Bool { result == .passed || result == .failed }

    /// `errors = 0.51 (bound <= 0.05): failed`.
    public var text: String {
        // Exact (Swift's shortest round-trip form): a rounded value could contradict its verdict.
        let shown = value.map { "\(check) = \($0)" } ?? check
        return "\(shown): \(result.rawValue) (\(detail))"
    }
}

/// What a Prometheus query answered, before it is judged against a bound.
public enum QueryAnswer: Sendable, Equatable {
    case value(Double)
    case noData(String)
    case error(String)

    /// The answer of `/api/v1/query` (SPEC: one number, a scalar or a vector of one sample).
    public static func classify(status: Int, body: Data) -> QueryAnswer {
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        if let object, object["status"] as? String == "error" {
            let kind = object["errorType"] as? String ?? "error"
            return .error("Prometheus answered \(kind): \(clip(object["error"] as? String ?? "no reason given"))")
        }
        guard (200..<300).contains(status) else { return .error("Prometheus answered HTTP \(status)") }
        guard let object, object["status"] as? String == "success", let data = object["data"] as? [String: Any],
            let type = data["resultType"] as? String
        else { return .error("the answer is not Prometheus's query JSON") }
        switch type {
        case "scalar":
            return sample(data["result"])
        case "vector":
            guard let series = data["result"] as? [[String: Any]] else { return .error("a vector that cannot be read") }
            if series.isEmpty { return .noData("empty vector: the query selected no series") }
            guard series.count == 1 else {
                return .error("\(series.count) series; the query must select one (aggregate it, e.g. sum(...))")
            }
            return sample(series[0]["value"])
        default:
            return .error("a \(type) result; the query must answer one number (a scalar or one sample)")
        }
    }

    /// `[time, "1.5"]`; NaN and the infinities are no data.
    private static func sample(_ pair: Any?) -> QueryAnswer {
        guard let pair = pair as? [Any], pair.count == 2, let text = pair[1] as? String else {
            return .error("a sample that cannot be read")
        }
        switch text.lowercased() {
        case "nan": return .noData("NaN")
        case "+inf", "inf", "-inf": return .noData(text)
        default:
            // Prometheus writes decimal numbers; Swift would also take hex (`0x10`).
            guard text.allSatisfy({ "0123456789.eE+-".contains($0) }), let value = Double(text), value.isFinite
            else { return .error("a sample value '\(clip(text))'") }
            return .value(value)
        }
    }

    static func clip(_ text: String) -> String {
        let safe = text.terminalSafe
        return safe.count > 200 ? String(safe.prefix(200)) + "..." : safe
    }
}

/// Asks Prometheus one instant query; `release-agent-full` sets the implementation
/// (AsyncHTTPClient, in `Capabilities`), so the light binary links no HTTP stack.
public protocol MetricsQuerier: Sendable {
    func query(_ promql: String) -> QueryAnswer
}

extension AnalysisCheck {
    /// The query with `{sha}`, `{short_sha}`, `{host}` and `{port}` filled in.
    public func filled(sha: String, host: String, port: Int?) -> String {
        query.replacing("{sha}", with: sha).replacing("{short_sha}", with: String(sha.prefix(12)))
            .replacing("{host}", with: host).replacing("{port}", with: port.map(String.init) ?? "")
    }

    public func judge(_ answer: QueryAnswer) -> Measurement {
        switch answer {
        case .value(let value):
            let ok = holds(value)
            return Measurement(
                check: name, result: ok ? .passed : .failed, value: value,
                detail: "bound \(boundText)")
        case .noData(let why): return Measurement(check: name, result: .noData, value: nil, detail: why)
        case .error(let why): return Measurement(check: name, result: .error, value: nil, detail: why)
        }
    }
}
