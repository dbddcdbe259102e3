import Foundation

/// Every setting the SPEC names, with the kind of value it takes.
public enum SettingKind: Sendable {
    case string, path, integer, duration, bool, list, size
}

public enum SettingNames {
    public static let all: [String: SettingKind] = [
        "root": .path, "repo": .string, "branch": .string, "keep-releases": .integer,
        "build": .string, "build-timeout": .duration, "shared": .list,
        "health-url": .string, "health-tcp": .string, "health-timeout": .duration,
        "health-interval": .duration, "health-expect": .string, "health-successes": .integer,
        "strategy": .string, "slots": .list, "hooks-dir": .path, "hook-timeout": .duration,
        "listen": .string, "webhook-secret-file": .path, "poll-interval": .duration,
        "ssh-key": .path, "token-file": .path, "pin": .list, "wait": .duration,
        "allow-unsigned": .bool, "shutdown-grace": .duration, "health-token": .string,
        "metrics-token": .string, "refuse-force-push": .bool, "min-free-space": .size,
        "log-format": .string, "pid-file": .path,
    ]

    /// `keep-releases` -> `RELEASE_AGENT_KEEP_RELEASES`.
    public static func environmentName(_ name: String) -> String {
        "RELEASE_AGENT_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// A value as a source gave it, before it is checked.
public enum RawValue: Equatable, Sendable {
    case scalar(String)
    case list([String])

    var items: [String] {
        switch self {
        case .scalar(let text):
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .list(let items): return items
        }
    }
}

/// Where a value came from, so an error can say which one to fix.
public struct RawSetting: Sendable {
    public var value: RawValue
    public var origin: String
    /// Relative paths are taken from here (the config file's folder, or the cwd).
    public var baseDirectory: String
}
