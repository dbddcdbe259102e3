/// `health-url`, parsed once by `Settings`: host, port (or `{port}`, the blue-green slot's,
/// filled in per check) and path. The probe gets the parsed target; no later stage parses it.
public struct HealthURL: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    let host: String
    let port: HostPort.Port
    let path: String

    /// Nil when `text` is not an `http://` URL, or has `{port}` anywhere but as its port.
    public static func parse(_ text: String) -> HealthURL? {
        let usesSlot = text.contains(":{port}")
        let probe = text.replacingOccurrences(of: ":{port}", with: ":1")
        guard !probe.contains("{port}"), let target = HTTPProbe.parse(probe) else { return nil }
        return HealthURL(
            text: text, host: target.host, port: usesSlot ? .slot : .number(target.port), path: target.path)
    }

    /// True when the URL has `{port}` (only blue-green fills it in).
    public var usesSlot: Bool { port == .slot }

    func target(slot: Int?) -> HTTPProbe.Target {
        let number: Int
        switch port {
        case .number(let value): number = value
        case .slot: number = slot ?? 0
        }
        return HTTPProbe.Target(host: host, port: number, path: path)
    }

    public var description: String { text }
}
