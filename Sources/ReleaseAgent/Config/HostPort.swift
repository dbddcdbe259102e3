/// `host:port`, the one parser of it: `listen` and `health-tcp` are read into this once, by
/// `Settings`, and nothing later parses them again. `[::1]:9000` for IPv6.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public enum Port: Sendable, Equatable {
        case number(Int)
        /// `{port}`: the blue-green slot's port, filled in per check.
        case slot
    }

    public var host: String
    public var port: Port

    public init(host: String, port: Port) {
        self.host = host
        self.port = port
    }

    /// What each setting allows beyond `host:1-65535`.
    public struct Rules: Sendable {
        /// `:9000` means 127.0.0.1 (listen).
        var emptyHostIsLoopback = false
        /// Port 0: any free port (listen, for tests).
        var zeroPort = false
        /// `{port}` (health-tcp under blue-green).
        var slotPort = false

        public static let listen = Rules(emptyHostIsLoopback: true, zeroPort: true)
        public static let healthTCP = Rules(slotPort: true)
    }

    /// Nil when `text` is not `host:port` by `rules`.
    public static func parse(_ text: String, _ rules: Rules) -> HostPort? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let portText = text[text.index(after: colon)...]
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty {
            guard rules.emptyHostIsLoopback else { return nil }
            host = "127.0.0.1"
        }
        guard !host.contains("{"), !host.contains("/"), !host.contains(" ") else { return nil }
        if portText == "{port}" { return rules.slotPort ? HostPort(host: host, port: .slot) : nil }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let number = Int(portText), (rules.zeroPort ? 0 : 1)...65535 ~= number
        else { return nil }
        return HostPort(host: host, port: .number(number))
    }

    /// The port, with `{port}` filled in by `slot` (0 when there is none: the check fails).
    public func port(slot: Int?) -> Int {
        switch port {
        case .number(let number): return number
        case .slot: return slot ?? 0
        }
    }

    public var description: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        switch port {
        case .number(let number): return "\(shown):\(number)"
        case .slot: return "\(shown):{port}"
        }
    }
}
