import ArgumentParser
import Foundation

/// `release-agent`: runs rollback, status, history, prune and a no-op poll itself; deploy,
/// serve and a poll that must fetch are handed to `release-agent-full` (see `Handoff`).
public struct RootCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "release-agent",
        abstract: CommandText.root,
        version: ReleaseAgentVersion.string,
        subcommands: [
            DeployLauncher.self, PollCommand.self, ServeLauncher.self, VerifyLauncher.self, FleetLauncher.self,
        ]
            + SharedCommands.all
    )

    public init() {}

    /// Parses and runs; prints `Error: ...` and exits with the SPEC's status on failure.
    public static func runMain() -> Never {
        CommandMain.prepareProcess()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if Handoff.isHandedOff(arguments) { Handoff.exec(arguments) }
        do {
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
        // A help request goes through the whole tree, so its usage line names the tool
        // (`release-agent rollback`), as the full binary's does.
        let helpWords: Set<String> = ["-h", "--help", "--help-hidden", "--experimental-dump-help"]
        guard let name = arguments.first, !arguments.contains(where: helpWords.contains),
            let type = configuration.subcommands.first(where: { $0.configuration.commandName == name })
        else { return nil }
        return try? type.parseAsRoot(Array(arguments.dropFirst()))
    }
}

package struct RollbackCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Switch current back to an earlier release, without a rebuild.")

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "Release to switch to (sha or unique prefix); default: the one live before the current one.")
    var target: String?

    package init() {}

    package func run() throws { try Self.run(settings.resolve(), target: target) }

    static func run(_ resolved: Settings, target: String?) throws {
        let sha = try Rollback(
            operation: DeployContext(settings: resolved, output: Output(json: resolved.logFormat == .json))
        ).run(target: target)
        print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
    }
}

package struct StatusCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Current release, releases on disk, last outcome.")

    package init() {}

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Fetch the branch now (waiting briefly for the lock) to count the commits live is behind.")
    var fetch = false

    package func run() throws {
        let resolved = try settings.resolve()
        if fetch {
            // `release-agent` cannot ask the remote (no libgit2): it hands `status --fetch` over.
            guard let fetchHead = Capabilities.process.fetchHead else {
                Handoff.exec(Array(CommandLine.arguments.dropFirst()))
            }
            try fetchHead(resolved)
        }
        let report = StatusReport(layout: resolved.layout, branch: resolved.branch)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
    }
}

package struct HistoryCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Past deploys, rollbacks and prunes, newest last.")

    package init() {}

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(name: .short, help: "Show the last N events (default 20).") var n: Int = 20

    package func validate() throws {
        if n < 1 { throw ValidationError("-n must be at least 1") }
    }

    package func run() throws {
        let resolved = try settings.resolve()
        let events = History(path: resolved.layout.history).tail(n)
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

package struct PruneCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove old releases beyond keep-releases.")

    package init() {}

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Ready releases to keep (default: keep-releases).") var keep: Int?

    package func validate() throws {
        if let keep, keep < 1 { throw ValidationError("--keep must be at least 1") }
    }

    package func run() throws {
        let resolved = try settings.resolve()
        let removed = try Prune(
            operation: DeployContext(settings: resolved, output: Output(json: resolved.logFormat == .json))
        ).run(keep: keep)
        print(removed.isEmpty ? "nothing to prune" : "removed \(removed.count): \(removed.joined(separator: " "))")
    }
}
