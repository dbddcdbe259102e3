import Foundation

/// Fleet mode's settings, typed once: present only with `fleet-etcd`.
public struct FleetSettings: Sendable, Equatable {
    /// A count of hosts, or a percentage of the registered ones (at least 1).
    public enum Share: Sendable, Equatable {
        case count(Int)
        case percent(Int)

        public func of(_ hosts: Int) -> Int {
            switch self {
            case .count(let count): return max(1, count)
            case .percent(let percent): return max(1, hosts * percent / 100)
            }
        }
    }

    /// Which hosts activate a new sha first.
    public enum Canary: Sendable, Equatable {
        /// The first N hosts that claim a canary seat for the sha.
        case count(Int)
        /// These host ids.
        case hosts([String])
    }

    public enum Offline: String, Sendable {
        /// Serve the current release, activate nothing until etcd answers.
        case hold
        /// Deploy uncoordinated, as one host.
        case alone
    }

    public var endpoints: [URL]
    public var name: String
    public var hostID: String
    public var maxParallel = Share.count(1)
    public var canary = Canary.count(0)
    public var canarySoak: Duration = .zero
    /// A host that waits longer than this for the canaries stops waiting (recorded, not live).
    public var canaryTimeout: Duration = .seconds(1800)
    public var maxFailures = 1
    public var leaseTTL: Duration = .seconds(10)
    /// serve's registration: renewed every third of it, the one request of an idle host.
    public var presenceTTL: Duration = .seconds(180)
    public var offline = Offline.hold
    public var caFile: String?
    /// A client certificate and its key (PEM), both or neither.
    public var certFile: String?
    public var keyFile: String?
    /// An etcd user and the file holding its password, both or neither.
    public var user: String?
    public var passwordFile: String?
    /// When a rollout halts, the hosts that run the halted sha roll back (Nomad's auto_revert).
    public var autoRevert = false

    /// The keys' prefix: `/release-agent/<fleet>/`.
    public var prefix: String { "/release-agent/\(name)/" }

    public var canaryCount: Int {
        switch canary {
        case .count(let count): return count
        case .hosts(let ids): return ids.count
        }
    }

    public func isCanary(_ host: String) -> Bool {
        if case .hosts(let ids) = canary { return ids.contains(host) }
        return false
    }

    static func read(_ reader: SettingReader) throws -> FleetSettings? {
        guard let endpoints = try endpoints(reader) else { return nil }
        let (name, host) = try identity(reader)
        var fleet = FleetSettings(endpoints: endpoints, name: name, hostID: host)
        try fleet.readCanaries(reader)
        try fleet.readTimes(reader)
        try fleet.readAccess(reader)
        fleet.autoRevert = try reader.bool("fleet-auto-revert") ?? false
        return fleet
    }

    /// fleet-etcd's URLs; nil (fleet mode off) when it is not set and no other fleet setting is.
    private static func endpoints(_ reader: SettingReader) throws -> [URL]? {
        let names = SettingsOptions.names.filter { $0.hasPrefix("fleet-") || $0 == "fleet" || $0 == "host-id" }
        guard let list = reader.raw["fleet-etcd"] else {
            if let stray = names.sorted().first(where: { reader.raw[$0] != nil }) {
                throw AgentError.usage(
                    "\(stray) (\(reader.origin(stray))) is a fleet setting, but fleet-etcd is not set; set fleet-etcd to the etcd client URLs, or remove it"
                )
            }
            return nil
        }
        let endpoints = try list.value.items.map { text -> URL in
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false,
                let port = url.port, (1...65535).contains(port), url.query == nil, url.user == nil,
                (url.path.isEmpty || url.path == "/")
            else {
                throw AgentError.usage(
                    "fleet-etcd item '\(text.terminalSafe)' (\(reader.origin("fleet-etcd"))) is not an etcd client URL like http://10.0.0.5:2379"
                )
            }
            return url
        }
        guard !endpoints.isEmpty else {
            throw AgentError.usage(
                "fleet-etcd (\(reader.origin("fleet-etcd"))) lists no endpoint; give the etcd client URLs")
        }
        return endpoints
    }

    /// The fleet's name and this host's id, both parts of etcd keys.
    private static func identity(_ reader: SettingReader) throws -> (name: String, host: String) {
        guard let name = try reader.string("fleet") else {
            throw AgentError.usage(
                "fleet-etcd needs fleet, the fleet's name (its keys live under /release-agent/NAME/)")
        }
        guard Self.isKeyPart(name), name.contains(where: { $0.isLetter || $0.isNumber }) else {
            throw AgentError.usage(
                "fleet '\(name.terminalSafe)' (\(reader.origin("fleet"))) must be letters, digits, '.', '_' or '-'")
        }
        let host = try reader.string("host-id") ?? ProcessInfo.processInfo.hostName
        guard Self.isKeyPart(host) else {
            throw AgentError.usage(
                "host-id '\(host.terminalSafe)' (\(reader.origin("host-id"))) must be letters, digits, '.', '_' or '-'; set host-id"
            )
        }
        return (name, host)
    }

    /// fleet-max-parallel and the canaries.
    private mutating func readCanaries(_ reader: SettingReader) throws {
        if let text = try reader.string("fleet-max-parallel") {
            maxParallel = try Self.share(text, reader)
        }
        let canaries = try reader.list("fleet-canary")
        if canaries.count == 1, Int(canaries[0]) != nil || canaries[0].allSatisfy(\.isNumber) {
            guard let count = Int(canaries[0]), count >= 0, count <= 10_000 else {
                throw Self.bad("fleet-canary", canaries[0], reader, "a count from 0 to 10000, or host ids")
            }
            canary = .count(count)
        } else if !canaries.isEmpty {
            for id in canaries where !Self.isKeyPart(id) {
                throw Self.bad("fleet-canary", id, reader, "a count >= 0 or host ids")
            }
            if let twice = canaries.first(where: { id in canaries.filter { $0 == id }.count > 1 }) {
                throw Self.bad("fleet-canary", twice, reader, "listed once (it is listed twice)")
            }
            canary = .hosts(canaries)
        }
    }

    /// How long canaries soak and are waited for, the failures that halt, the leases.
    private mutating func readTimes(_ reader: SettingReader) throws {
        canarySoak = try reader.duration("fleet-canary-soak") ?? canarySoak
        canaryTimeout = try reader.duration("fleet-canary-timeout") ?? canaryTimeout
        guard canaryTimeout > .zero else {
            throw Self.bad("fleet-canary-timeout", try reader.string("fleet-canary-timeout") ?? "", reader, "above 0s")
        }
        maxFailures = try reader.integer("fleet-max-failures", minimum: 1) ?? maxFailures
        leaseTTL = try reader.duration("fleet-lease-ttl") ?? leaseTTL
        guard leaseTTL >= .seconds(2) else {
            throw Self.bad("fleet-lease-ttl", try reader.string("fleet-lease-ttl") ?? "", reader, "at least 2s")
        }
        presenceTTL = try reader.duration("fleet-presence-ttl") ?? presenceTTL
        guard presenceTTL >= .seconds(3), presenceTTL <= .seconds(86400) else {
            throw Self.bad(
                "fleet-presence-ttl", try reader.string("fleet-presence-ttl") ?? "", reader, "between 3s and 24h")
        }
        if let text = try reader.string("fleet-offline") {
            guard let value = Offline(rawValue: text) else {
                throw Self.bad("fleet-offline", text, reader, "hold or alone")
            }
            offline = value
        }
    }

    /// TLS and the etcd user.
    private mutating func readAccess(_ reader: SettingReader) throws {
        caFile = try reader.path("fleet-ca-file")
        certFile = try reader.path("fleet-cert-file")
        keyFile = try reader.path("fleet-key-file")
        user = try reader.string("fleet-user")
        passwordFile = try reader.path("fleet-password-file")
        if !endpoints.contains(where: { $0.scheme == "https" }) {
            for name in ["fleet-ca-file", "fleet-cert-file"] where reader.raw[name] != nil {
                throw AgentError.usage(
                    "\(name) (\(reader.origin(name))) is for https:// endpoints, but fleet-etcd lists none; use https:// in fleet-etcd, or remove it"
                )
            }
        }
        try Self.pair("fleet-cert-file", "fleet-key-file", reader)
        try Self.pair("fleet-user", "fleet-password-file", reader)
        if let user = user, user.isEmpty || user.contains(where: \.isNewline) {
            throw Self.bad("fleet-user", user, reader, "an etcd user name")
        }
    }

    /// Settings that only work together: one without the other is a usage error.
    private static func pair(_ first: String, _ second: String, _ reader: SettingReader) throws {
        switch (reader.raw[first], reader.raw[second]) {
        case (.some, nil):
            throw AgentError.usage("\(first) (\(reader.origin(first))) needs \(second) too; set both, or neither")
        case (nil, .some):
            throw AgentError.usage("\(second) (\(reader.origin(second))) needs \(first) too; set both, or neither")
        default: return
        }
    }

    private static func share(_ text: String, _ reader: SettingReader) throws -> Share {
        if text.hasSuffix("%"), let percent = Int(text.dropLast()), (1...100).contains(percent) {
            return .percent(percent)
        }
        guard let count = Int(text), count >= 1 else {
            throw bad("fleet-max-parallel", text, reader, "a count >= 1 or a percentage like 25%")
        }
        return .count(count)
    }

    private static func bad(_ name: String, _ text: String, _ reader: SettingReader, _ expected: String) -> AgentError {
        AgentError.usage("\(name) '\(text.terminalSafe)' from \(reader.origin(name)) is not \(expected)")
    }

    static func isKeyPart(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128
            && text.unicodeScalars.allSatisfy {
                CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0)
            }
    }
}
