/// The command lines cron and a hurried operator send most, `poll` and `rollback` with
/// settings as `--name value` or `--name=value`, read without ArgumentParser. Its
/// reflection over the 35 setting options (and the runtime's first generic-metadata and
/// conformance lookups it triggers) was most of a no-op poll's time.
///
/// Anything else answers nil and ArgumentParser parses the line: help, an unknown or
/// repeated option, a missing or empty value or one that starts with `-`, `--`, a flag given
/// a value. So every message, and every error, is ArgumentParser's own; QuickLineTests
/// checks that both readings agree on every setting and on a corpus of lines.
struct QuickLine: Equatable {
    enum Command: Equatable {
        case poll(force: Bool)
        case rollback(target: String?)
    }

    var command: Command
    var flags: [String: RawValue] = [:]
    var config: String?

    /// Settings that are flags (`--name`, `--no-name`); every other setting takes a value.
    static let flagSettings: Set<String> = ["allow-unsigned", "refuse-force-push"]

    static func parse(_ arguments: [String]) -> QuickLine? {
        guard let first = arguments.first else { return nil }
        var line: QuickLine
        switch first {
        case "poll": line = QuickLine(command: .poll(force: false))
        case "rollback": line = QuickLine(command: .rollback(target: nil))
        default: return nil
        }
        var seen: Set<String> = []
        var index = 1
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            guard word.hasPrefix("--") else {
                // The one positional: rollback's target.
                guard !word.hasPrefix("-"), word != "help", case .rollback(nil) = line.command else { return nil }
                line.command = .rollback(target: word)
                continue
            }
            var name = String(word.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            let negated = name.hasPrefix("no-") && flagSettings.contains(String(name.dropFirst(3)))
            let key = negated ? String(name.dropFirst(3)) : name
            guard !key.isEmpty, seen.insert(key).inserted else { return nil }
            if key == "force", case .poll = line.command {
                guard value == nil, !negated else { return nil }
                line.command = .poll(force: true)
            } else if flagSettings.contains(key) {
                guard value == nil else { return nil }
                line.flags[key] = .scalar(negated ? "false" : "true")
            } else if key == "config" || SettingNames.all.contains(key) {
                if value == nil {
                    guard index < arguments.count, !arguments[index].hasPrefix("-") else { return nil }
                    value = arguments[index]
                    index += 1
                }
                guard value?.isEmpty == false else { return nil }  // ArgumentParser refuses `--name=`
                if key == "config" { line.config = value } else { line.flags[key] = value.map(RawValue.scalar) }
            } else {
                return nil
            }
        }
        return line
    }

    func run() throws {
        let settings = try SettingsOptions.resolve(flags: flags, configFlag: config)
        switch command {
        case .poll(let force): try PollCommand.run(settings, force: force)
        case .rollback(let target): try RollbackCommand.run(settings, target: target)
        }
    }
}
