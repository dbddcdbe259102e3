import ArgumentParser
import Foundation

public struct RootCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "release-agent",
        abstract: "Keeps a deploy root in step with one branch of a git repository.",
        subcommands: [
            DeployCommand.self, PollCommand.self, ServeLauncher.self, RollbackCommand.self, StatusCommand.self,
            HistoryCommand.self,
            PruneCommand.self,
        ]
    )

    public init() {}

    /// Parses and runs; prints `Error: ...` and exits with the SPEC's status on failure.
    /// `serve` is handed to the `release-agent-serve` binary before any parsing.
    public static func runMain() -> Never {
        CommandMain.prepareProcess()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == ServeLauncher.configuration.commandName {
            ServeLauncher.exec(Array(arguments.dropFirst()))
        }
        do {
            if let line = QuickLine.parse(arguments) {
                try line.run()
                Foundation.exit(0)
            }
            var command = try parseQuickly(arguments) ?? parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch {
            CommandMain.exit(for: error, root: RootCommand.self)
        }
    }
}

extension RootCommand {
    /// ArgumentParser reflects over every subcommand's options (7 x 35 here) to parse one
    /// command line; on a cron poll that was most of the parse time. The first word picks the
    /// subcommand, which is parsed alone. Any error or help request answers nil, and the
    /// caller parses through the whole tree, so every message is the one it always was.
    static func parseQuickly(_ arguments: [String]) -> ParsableCommand? {
        guard let name = arguments.first,
            let type = configuration.subcommands.first(where: { $0.configuration.commandName == name })
        else { return nil }
        return try? type.parseAsRoot(Array(arguments.dropFirst()))
    }
}

struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Fetch, build, check and activate the branch head (or --sha/--ref).")

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Deploy this commit (full id or unique prefix) from the branch's history.") var sha: String?
    @Option(help: "Deploy this branch or tag instead of the followed branch's head.") var ref: String?
    @Flag(help: "Deploy even when the target is live, quarantined, or a refused force push.") var force = false

    func validate() throws {
        if sha != nil && ref != nil { throw ValidationError("--sha and --ref cannot be used together") }
        if let sha, sha.count < 4 || sha.count > 40 || !sha.allSatisfy(\.isHexDigit) {
            throw ValidationError("--sha '\(sha)' is not a commit id: give 4 to 40 hex digits")
        }
    }

    func run() throws {
        let resolved = try settings.resolve()
        let target: DeployRequest.Target = sha.map { .sha($0) } ?? ref.map { .ref($0) } ?? .branchHead
        let operation = Operation(settings: resolved, output: Output(json: resolved.logFormat == "json"))
        let result = try Deploy(operation: operation).run(DeployRequest(target: target, force: force))
        switch result {
        case .deployed(let sha), .alreadyCurrent(let sha), .quarantined(let sha, _):
            print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
        }
    }
}

struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Switch current back to an earlier release, without a rebuild.")

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "Release to switch to (sha or unique prefix); default: the one live before the current one.")
    var target: String?

    func run() throws { try Self.run(settings.resolve(), target: target) }

    static func run(_ resolved: Settings, target: String?) throws {
        let sha = try Rollback(
            operation: Operation(settings: resolved, output: Output(json: resolved.logFormat == "json"))
        ).run(target: target)
        print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Current release, releases on disk, last outcome.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let resolved = try settings.resolve()
        let report = StatusReport(layout: resolved.layout)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
    }
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Past deploys, rollbacks and prunes, newest last.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(name: .short, help: "Show the last N events (default 20).") var n: Int = 20

    func validate() throws {
        if n < 1 { throw ValidationError("-n must be at least 1") }
    }

    func run() throws {
        let resolved = try settings.resolve()
        let events = Array(History(path: resolved.layout.history).read().suffix(n))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(events), as: UTF8.self))
        } else if events.isEmpty {
            print("no history yet in \(resolved.layout.history)")
        } else {
            events.forEach { print($0.text) }
        }
    }
}

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove old releases beyond keep-releases.")

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Ready releases to keep (default: keep-releases).") var keep: Int?

    func validate() throws {
        if let keep, keep < 1 { throw ValidationError("--keep must be at least 1") }
    }

    func run() throws {
        let resolved = try settings.resolve()
        let removed = try Prune(
            operation: Operation(settings: resolved, output: Output(json: resolved.logFormat == "json"))
        ).run(keep: keep)
        print(removed.isEmpty ? "nothing to prune" : "removed \(removed.count): \(removed.joined(separator: " "))")
    }
}

struct PollCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll",
        abstract: "One cron-friendly cycle: deploy the branch head if it changed; silent when nothing to do.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Deploy the head even if it is quarantined (failed, or rolled back from).") var force = false

    func run() throws { try Self.run(settings.resolve(), force: force) }

    static func run(_ resolved: Settings, force: Bool) throws {
        let output = Output(json: resolved.logFormat == "json")
        switch try Poll(operation: Operation(settings: resolved, output: output)).run(force: force) {
        case .nothingToDo, .quarantined:
            // Quarantine is reported by status; repeating it every cron cycle would mail the operator.
            break
        case .busy:
            output.line("poll     another operation holds the lock; this cycle skipped")
        case .deployed(let sha):
            print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
        }
    }
}
