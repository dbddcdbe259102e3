import Foundation

/// Every setting the SPEC names; `Settings` gives each its type.
public enum SettingNames {
    /// Named once, by the options of `SettingsOptions`.
    public static var all: Set<String> { SettingsOptions.names }

    /// `keep-releases` -> `RELEASE_AGENT_KEEP_RELEASES`.
    public static func environmentName(_ name: String) -> String {
        "RELEASE_AGENT_" + name.uppercased().replacing("-", with: "_")
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
