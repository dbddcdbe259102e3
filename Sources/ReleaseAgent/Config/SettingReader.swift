import Foundation

/// Reads one typed value at a time from the merged raw settings.
struct SettingReader {
    let raw: [String: RawSetting]

    func origin(_ name: String) -> String { raw[name]?.origin ?? "--\(name)" }

    private func bad(_ name: String, _ text: String, _ expected: String) -> AgentError {
        AgentError.usage("\(name) '\(text)' from \(origin(name)) is not \(expected)")
    }

    func string(_ name: String) throws -> String? {
        guard let setting = raw[name] else { return nil }
        switch setting.value {
        case .scalar(let text): return text
        case .list: throw AgentError.usage("\(name) from \(setting.origin) must be a single value, not a list")
        }
    }

    func list(_ name: String) throws -> [String] { raw[name]?.value.items ?? [] }

    /// A value `parse` turns into its type, or a usage error that names it once: its text, its
    /// origin and `problem` ("is not ...; write it like ...").
    func parsed<T>(_ name: String, _ problem: String, _ parse: (String) -> T?) throws -> T? {
        guard let text = try string(name) else { return nil }
        guard let value = parse(text) else {
            throw AgentError.usage("\(name) '\(text.terminalSafe)' (\(origin(name))) \(problem)")
        }
        return value
    }

    /// A token: an empty one would let every request in by a blank bearer.
    func token(_ name: String) throws -> String? {
        guard let text = try string(name) else { return nil }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw bad(name, text, "a non-empty token") }
        return text
    }

    /// A token given inline (`name`) or in a file (`fileName`, its trailing newline ignored),
    /// not both; the file is read once, here.
    func token(_ name: String, orFile fileName: String) throws -> String? {
        guard let file = try path(fileName) else { return try token(name) }
        guard raw[name] == nil else {
            throw AgentError.usage(
                "\(name) (\(origin(name))) and \(fileName) (\(origin(fileName))) both give the token; keep one")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AgentError.usage(
                "\(fileName) \(file) (\(origin(fileName))) cannot be read; check the path and its mode")
        }
        var text = String(decoding: data, as: UTF8.self)
        while text.last?.isNewline == true { text.removeLast() }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw AgentError.usage("\(fileName) \(file) (\(origin(fileName))) is empty; write the token there")
        }
        return text
    }

    func path(_ name: String) throws -> String? {
        guard let text = try string(name), let setting = raw[name] else { return nil }
        guard !text.isEmpty else { throw bad(name, text, "a path") }
        let absolute = text.hasPrefix("/") ? text : setting.baseDirectory + "/" + text
        return (absolute as NSString).standardizingPath
    }

    /// A local repository path is made absolute against its source; URLs stay as given.
    func remote(_ text: String, _ name: String) throws -> String {
        guard !text.isEmpty else { throw bad(name, text, "a repository path or URL") }
        if text.contains("://") && !text.hasPrefix("file://") {
            let schemes = ["http://", "https://", "ssh://", "git://"]
            guard schemes.contains(where: text.hasPrefix) else {
                throw bad(name, text, "a path or an http(s)://, ssh:// or git:// URL")
            }
        }
        if text.contains("://") && !text.hasPrefix("file://") { return text }
        if RemoteURL.isSCPLike(text) { return text }
        let path = text.hasPrefix("file://") ? String(text.dropFirst(7)) : text
        let base = raw[name]?.baseDirectory ?? FileManager.default.currentDirectoryPath
        return ((path.hasPrefix("/") ? path : base + "/" + path) as NSString).standardizingPath
    }

    func integer(_ name: String, minimum: Int) throws -> Int? {
        guard let text = try string(name) else { return nil }
        guard let value = Int(text), value >= minimum else { throw bad(name, text, "a whole number >= \(minimum)") }
        return value
    }

    func duration(_ name: String) throws -> Duration? {
        guard let text = try string(name) else { return nil }
        guard let value = DurationParser.parse(text) else {
            throw bad(name, text, "a duration such as 500ms, 30s, 10m or 1h, of at most 8784h (366 days)")
        }
        return value
    }

    func bool(_ name: String) throws -> Bool? {
        guard let text = try string(name) else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw bad(name, text, "true or false")
        }
    }

    /// `500M`, `2G`, `1024`: bytes.
    func size(_ name: String) throws -> UInt64? {
        guard let text = try string(name) else { return nil }
        let units: [(String, UInt64)] = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)]
        var number = text.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        var scale: UInt64 = 1
        for (suffix, factor) in units where number.hasSuffix(suffix) {
            number.removeLast()
            scale = factor
        }
        guard let value = UInt64(number.trimmingCharacters(in: .whitespaces)) else {
            throw bad(name, text, "a size such as 500M or 2G")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow, bytes <= 1 << 60 else { throw bad(name, text, "a size of at most 1048576T") }
        return bytes
    }
}
