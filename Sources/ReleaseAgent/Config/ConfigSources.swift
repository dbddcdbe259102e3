import Foundation
import TOMLKit

/// Reads settings from flags, the environment and the TOML file, in that order of precedence.
public enum ConfigSources {
    /// Merges the three sources; the first that names a setting wins.
    public static func merge(
        flags: [String: RawValue], configFlag: String?, environment: [String: String], cwd: String,
        readFile: Bool = true
    ) throws -> [String: RawSetting] {
        var merged: [String: RawSetting] = [:]
        if readFile, let file = try configFile(flag: configFlag, environment: environment, cwd: cwd) {
            let lines = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            for (name, entry) in try loadTOML(file) {
                let line = keyLine(entry.key, in: lines).map { ":\($0)" } ?? ""
                merged[name] = RawSetting(
                    value: entry.value, origin: "\(file)\(line) (\(entry.key))",
                    baseDirectory: (file as NSString).deletingLastPathComponent)
            }
        }
        for name in SettingNames.all {
            let variable = SettingNames.environmentName(name)
            if let value = environment[variable] {
                merged[name] = RawSetting(value: .scalar(value), origin: "$\(variable)", baseDirectory: cwd)
            }
        }
        for (name, value) in flags {
            merged[name] = RawSetting(value: value, origin: "--\(name)", baseDirectory: cwd)
        }
        return merged
    }

    /// `--config FILE`, else `$RELEASE_AGENT_CONFIG`, else `./release-agent.toml` when it exists.
    static func configFile(flag: String?, environment: [String: String], cwd: String) throws -> String? {
        if let named = flag ?? environment["RELEASE_AGENT_CONFIG"] {
            let path = named.hasPrefix("/") ? named : cwd + "/" + named
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw AgentError.usage("the config file \(named) cannot be read; check the path given to --config")
            }
            return path
        }
        let local = cwd + "/release-agent.toml"
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }

    /// Top-level keys use `_` for `-`; a table groups keys: `[health] url` is `health-url`,
    /// and `[build] command` is `build`.
    public static func loadTOML(_ path: String) throws -> [String: (key: String, value: RawValue)] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw AgentError.usage("the config file \(path) cannot be read as UTF-8 text; fix its encoding")
        }
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw AgentError.usage(
                "the config file \(path) is not valid TOML at line \(error.source.begin.line): \(error.description)")
        }
        var result: [String: (key: String, value: RawValue)] = [:]
        for (key, value) in table {
            let name = key.replacing("_", with: "-")
            if let group = value.table {
                for (innerKey, innerValue) in group {
                    let inner = innerKey.replacing("_", with: "-")
                    let full = inner == "command" ? name : "\(name)-\(inner)"
                    let label = "[\(key)] \(innerKey)"
                    result[full] = (label, try convert(innerValue, name: full, file: path, key: label))
                }
            } else {
                result[name] = (key, try convert(value, name: name, file: path, key: key))
            }
        }
        return result
    }

    /// The line (1-based) where `key` (`name` or `[table] name`) is set in the TOML text, for
    /// error messages; nil when it cannot be told (dotted or quoted keys, inline tables).
    static func keyLine(_ key: String, in text: String) -> Int? {
        var table: String?
        var name = key
        if key.hasPrefix("["), let close = key.firstIndex(of: "]") {
            table = String(key[key.index(after: key.startIndex)..<close])
            name = key[key.index(after: close)...].trimmingCharacters(in: .whitespaces)
        }
        var section: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
                section = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == table, line.hasPrefix(name) else { continue }
            let rest = line.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix("=") { return index + 1 }
        }
        return nil
    }

    /// `{name, query, max}` or `{name, query, min}` of `[[analysis]]`, as the one-line form the
    /// flag takes (`NAME: QUERY <= NUMBER`), which `AnalysisSettings` parses and checks.
    private static func analysisCheck(_ table: TOMLTable, file: String, key: String) throws -> String {
        let known: Set<String> = ["name", "query", "max", "min"]
        let named = table["name"]?.string.map { " '\($0.terminalSafe)'" } ?? ""
        let bad = { (why: String) in
            AgentError.usage(
                "the analysis check\(named) in \(file) ([[\(key)]]) \(why); write it as {name = \"errors\", query = \"...\", max = 0.05} (or min)"
            )
        }
        if let stray = table.keys.first(where: { !known.contains($0) }) { throw bad("has an unknown key '\(stray)'") }
        guard let name = table["name"]?.string, let query = table["query"]?.string else {
            throw bad("needs name and query as strings")
        }
        guard AnalysisCheck.isName(name) else { throw bad("has a name that is not letters, digits, _ and -") }
        guard !query.contains(where: \.isNewline) else { throw bad("has a query over several lines") }
        func number(_ key: String) -> Double? { table[key]?.double ?? table[key]?.int.map(Double.init) }
        switch (number("max"), number("min")) {
        case (let max?, nil) where max.isFinite: return "\(name): \(query) <= \(max)"
        case (nil, let min?) where min.isFinite: return "\(name): \(query) >= \(min)"
        default: throw bad("needs exactly one of max and min, a finite number")
        }
    }

    private static func convert(_ value: TOMLValueConvertible, name: String, file: String, key: String) throws
        -> RawValue
    {
        guard SettingNames.all.contains(name) else {
            throw AgentError.usage(
                "unknown setting '\(key)' in \(file); see releases.example/release-agent.toml for the known ones")
        }
        if let array = value.array {
            var items: [String] = []
            for element in array {
                if name == "analysis", let table = element.table {
                    items.append(try analysisCheck(table, file: file, key: key))
                } else if let text = element.string {
                    items.append(text)
                } else if let number = element.int {
                    items.append(String(number))
                } else {
                    throw AgentError.usage("'\(key)' in \(file) must be a list of strings or numbers")
                }
            }
            return .list(items)
        }
        if let text = value.string { return .scalar(text) }
        if let flag = value.bool { return .scalar(flag ? "true" : "false") }
        if let number = value.int { return .scalar(String(number)) }
        if let number = value.double { return .scalar(String(number)) }
        throw AgentError.usage("'\(key)' in \(file) has a type release-agent does not take; use a string")
    }
}
