import Foundation

/// `.release-agent/fetch.json`: whether the last look at the remote (a deploy's fetch, a
/// poll's ls-remote, `status --fetch`) worked, for `release_agent_last_fetch_failed`: a
/// server that silently stopped seeing pushes is what operators alert on.
public struct FetchState: TimedStatusFile, Sendable {
    public static let fileName = "fetch.json"

    public var time: Double
    public var ok: Bool
    public var source: String
    /// The one-line error when it failed.
    public var error: String?

    /// Best effort, like head.json: a state file that cannot be written loses only a metric.
    public static func record(ok: Bool, source: String, error: String? = nil, layout: Layout) {
        FetchState(time: Date().timeIntervalSince1970, ok: ok, source: source, error: error).record(layout)
    }

    /// Runs `body` (a look at the remote) and records how it went.
    public static func recording<T>(trigger: String, layout: Layout, _ body: () throws -> T) throws -> T {
        do {
            let result = try body()
            record(ok: true, source: trigger, layout: layout)
            return result
        } catch {
            let message = (error as? AgentError)?.message ?? "\(error)"
            record(ok: false, source: trigger, error: message, layout: layout)
            throw error
        }
    }
}
