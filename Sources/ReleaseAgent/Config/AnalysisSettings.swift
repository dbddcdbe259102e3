import Foundation

/// One analysis check: a PromQL query that must answer one number within a bound.
public struct AnalysisCheck: Sendable, Equatable, Codable {
    public enum Bound: Sendable, Equatable, Codable {
        case max(Double)
        case min(Double)
    }

    public var name: String
    public var query: String
    public var bound: Bound

    public init(name: String, query: String, bound: Bound) {
        self.name = name
        self.query = query
        self.bound = bound
    }

    public func holds(_ value: Double) -> Bool {
        switch bound {
        case .max(let limit): return value <= limit
        case .min(let limit): return value >= limit
        }
    }

    /// `<= 0.05`, as the check was written.
    public var boundText: String {
        switch bound {
        case .max(let limit): return "<= \(Self.number(limit))"
        case .min(let limit): return ">= \(Self.number(limit))"
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// `NAME: QUERY <= NUMBER` (or `>=`): the name up to the first `:`, the bound after the
    /// last `<=`/`>=` (a query may hold comparisons and commas of its own); nil when malformed.
    static func parse(_ text: String) -> AnalysisCheck? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let name = text[..<colon].trimmingCharacters(in: .whitespaces)
        let rest = text[text.index(after: colon)...]
        let max = rest.range(of: "<=", options: .backwards)
        let min = rest.range(of: ">=", options: .backwards)
        guard let operatorRange = [max, min].compactMap({ $0 }).max(by: { $0.lowerBound < $1.lowerBound }) else {
            return nil
        }
        let query = rest[..<operatorRange.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        let numberText = rest[operatorRange.upperBound...].trimmingCharacters(in: .whitespaces)
        guard isName(name), !query.isEmpty, let limit = Double(numberText), limit.isFinite,
            numberText.allSatisfy({ "0123456789.-+eE".contains($0) })
        else { return nil }
        return AnalysisCheck(
            name: name, query: query, bound: rest[operatorRange] == "<=" ? .max(limit) : .min(limit))
    }

    static func isName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
                    || $0 == "-"
            }
    }
}

/// Canary analysis (SPEC "Canary analysis (Prometheus)"), typed once: present only when
/// `analysis-prometheus` and `analysis` are both set.
public struct AnalysisSettings: Sendable, Equatable {
    /// The Prometheus base URL, without a trailing `/`.
    public var prometheus: String
    public var checks: [AnalysisCheck]
    public var interval: Duration = .seconds(30)
    public var count = 4
    public var initialDelay: Duration = .seconds(60)
    public var failureLimit = 0
    public var errorLimit = 4
    public var token: String?
    /// One query's time limit: a Prometheus that hangs is an error, not a stalled deploy.
    public static let queryTimeout: Duration = .seconds(10)

    /// The longest an analysis can take: every round of every check a timed-out query, and
    /// as many rounds as `error-limit - 1` uncounted answers before each counted one allow.
    public var longest: Duration {
        let rounds = count * max(1, errorLimit)
        return initialDelay + (interval + Self.queryTimeout * checks.count) * rounds
    }

    static let names = [
        "analysis-prometheus", "analysis", "analysis-interval", "analysis-count", "analysis-initial-delay",
        "analysis-failure-limit", "analysis-error-limit", "analysis-token-file",
    ]

    static func read(_ reader: SettingReader, strategy: Strategy) throws -> AnalysisSettings? {
        let base = try reader.string("analysis-prometheus")
        let texts: [String]
        switch reader.raw["analysis"]?.value {
        case .none: texts = []
        case .list(let items): texts = items
        // The environment gives one check per line: a query is never split at its commas.
        case .scalar(let text):
            texts = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        guard let base else {
            if let stray = names.first(where: { reader.raw[$0] != nil }) {
                throw AgentError.usage(
                    "\(stray) (\(reader.origin(stray))) is an analysis setting, but analysis-prometheus is not set; set it to the Prometheus URL (http://127.0.0.1:9090), or remove \(stray)"
                )
            }
            return nil
        }
        guard !texts.isEmpty else {
            throw AgentError.usage(
                "analysis-prometheus (\(reader.origin("analysis-prometheus"))) is set but no analysis check is: add one like --analysis 'errors: sum(rate(http_requests_total{code=~\"5..\",sha=\"{sha}\"}[1m])) <= 0.1', or remove analysis-prometheus"
            )
        }
        var settings = AnalysisSettings(prometheus: try prometheusURL(base, reader), checks: [])
        settings.checks = try checks(texts, reader, strategy: strategy)
        settings.interval = try positive(reader, "analysis-interval") ?? settings.interval
        settings.initialDelay = try reader.duration("analysis-initial-delay") ?? settings.initialDelay
        settings.count = try reader.integer("analysis-count", minimum: 1) ?? settings.count
        settings.failureLimit = try reader.integer("analysis-failure-limit", minimum: 0) ?? settings.failureLimit
        settings.errorLimit = try reader.integer("analysis-error-limit", minimum: 1) ?? settings.errorLimit
        for name in ["analysis-count", "analysis-failure-limit", "analysis-error-limit"] {
            if let text = try reader.string(name), let value = Int(text), value > 1000 {
                throw AgentError.usage("\(name) '\(text)' from \(reader.origin(name)) is not a whole number <= 1000")
            }
        }
        if settings.failureLimit >= settings.count {
            throw AgentError.usage(
                "analysis-failure-limit \(settings.failureLimit) (\(reader.origin("analysis-failure-limit"))) tolerates every one of the \(settings.count) measurements (analysis-count), so no analysis could fail; make it smaller than analysis-count"
            )
        }
        settings.token = try reader.token("analysis-token", orFile: "analysis-token-file")
        // Sent as a header: visible ASCII, one line, no spaces around it.
        if let token = settings.token, !token.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) {
            throw AgentError.usage(
                "analysis-token-file (\(reader.origin("analysis-token-file"))) holds spaces, several lines or control characters; write the bearer token alone on one line"
            )
        }
        return settings
    }

    /// The `analysis` checks, each parsed once, named once, `{port}` only under blue-green.
    private static func checks(_ texts: [String], _ reader: SettingReader, strategy: Strategy) throws
        -> [AnalysisCheck]
    {
        var checks: [AnalysisCheck] = []
        for text in texts {
            guard let check = AnalysisCheck.parse(text) else {
                throw AgentError.usage(
                    "analysis '\(text.terminalSafe)' (\(reader.origin("analysis"))) is not NAME: QUERY <= NUMBER (or >= NUMBER); NAME is letters, digits, _ and -; write it like 'errors: rate(x[1m]) <= 0.05'"
                )
            }
            guard !checks.contains(where: { $0.name == check.name }) else {
                throw AgentError.usage(
                    "analysis names the check '\(check.name)' twice (\(reader.origin("analysis"))); give each check its own name"
                )
            }
            if check.query.contains("{port}") && strategy != .blueGreen {
                throw AgentError.usage(
                    "analysis '\(check.name)' (\(reader.origin("analysis"))) has {port}, which only strategy blue-green fills in (the release's slot); select the release by {sha} instead"
                )
            }
            checks.append(check)
        }
        return checks
    }

    private static func positive(_ reader: SettingReader, _ name: String) throws -> Duration? {
        guard let value = try reader.duration(name) else { return nil }
        guard value > .zero else {
            throw AgentError.usage("\(name) from \(reader.origin(name)) must be longer than 0s, e.g. 30s")
        }
        return value
    }

    /// The port as written (`http://h:PORT/...`, `http://[v6]:PORT`), nil when none: checked
    /// by its digits, as Foundation gives no port at all for one beyond Int's range.
    static func portText(_ url: String) -> Substring? {
        guard let scheme = url.range(of: "://") else { return nil }
        let authority = url[scheme.upperBound...].prefix { $0 != "/" }
        let afterHost = authority.lastIndex(of: "]").map { authority[authority.index(after: $0)...] } ?? authority
        guard let colon = afterHost.lastIndex(of: ":") else { return nil }
        return afterHost[afterHost.index(after: colon)...]
    }

    /// `http://` or `https://`, a host, no query, fragment or user info (use the token file).
    private static func prometheusURL(_ text: String, _ reader: SettingReader) throws -> String {
        // Visible ASCII only (no control characters to print, nothing to percent-encode), and
        // a port the HTTP client can take: nothing a setting holds may fail a later stage.
        guard text.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }),
            let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme), url.host?.isEmpty == false, url.query == nil, url.fragment == nil,
            url.user == nil, url.password == nil, url.port.map({ (1...65535).contains($0) }) ?? true,
            Self.portText(text).map({ $0.count <= 5 && Int($0).map { (1...65535).contains($0) } == true }) ?? true
        else {
            throw AgentError.usage(
                "analysis-prometheus '\(text.terminalSafe)' (\(reader.origin("analysis-prometheus"))) is not an http:// or https:// URL of Prometheus without query or credentials; write it like http://127.0.0.1:9090 (a token goes in analysis-token-file)"
            )
        }
        var base = text
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }
}
