import ArgumentParser
import Foundation
import ReleaseAgent

/// `deploy` in `release-agent-full` (`release-agent deploy` execs it).
public struct DeployCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "deploy", abstract: CommandText.deploy)

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Deploy this commit (full id or unique prefix) from the branch's history.") var sha: String?
    @Option(help: "Deploy this branch or tag instead of the followed branch's head.") var ref: String?
    @Flag(help: "Deploy even when the target is live, quarantined, or a refused force push.") var force = false
    @Flag(help: "Say what a deploy would do; change nothing but the bare cache.") var dryRun = false
    @Flag(help: "With --dry-run: print JSON.") var json = false

    public init() {}

    public func validate() throws {
        if sha != nil && ref != nil { throw ValidationError("--sha and --ref cannot be used together") }
        if let sha, sha.count < 4 || sha.count > 40 || !sha.allSatisfy(\.isHexDigit) {
            throw ValidationError("--sha '\(sha)' is not a commit id: give 4 to 40 hex digits")
        }
    }

    public func run() throws {
        let resolved = try settings.resolve()
        let target: DeployRequest.Target = sha.map { .sha($0) } ?? ref.map { .ref($0) } ?? .branchHead
        let operation = DeployContext(settings: resolved, output: Output(json: resolved.logFormat == .json))
        if dryRun {
            let plan = try Deploy(operation: operation).dryRun(DeployRequest(target: target, force: force))
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(plan), as: UTF8.self))
            } else {
                print(plan.text)
            }
            return
        }
        // SIGTERM ends a wait for the fleet, or a canary analysis, at its next look.
        if resolved.fleet != nil || resolved.analysis != nil { Cancellation.installCommandSignals() }
        let result = try Deploy(operation: operation).run(DeployRequest(target: target, force: force))
        switch result {
        case .deployed(let sha), .alreadyCurrent(let sha), .quarantined(let sha, _), .refusedAgain(let sha),
            .held(let sha, _):
            print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
        case .skipped:
            if let live = resolved.layout.currentSHA() {
                print("\(resolved.layout.current) -> \(resolved.layout.release(live))")
            }
        }
    }
}

/// `poll` in `release-agent-full`: asks the remote (over git when it is not a local path)
/// and deploys a new head.
public struct FullPollCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "poll", abstract: CommandText.poll)

    @OptionGroup var settings: SettingsOptions
    @Flag(help: CommandText.forceHelp) var force = false

    public init() {}

    public func run() throws {
        let resolved = try settings.resolve()
        let output = Output(json: resolved.logFormat == .json)
        if resolved.fleet != nil || resolved.analysis != nil { Cancellation.installCommandSignals() }
        let poll = Poll(operation: DeployContext(settings: resolved, output: output))
        switch try poll.run(force: force, shareWithFleet: true) {
        case .nothingToDo, .quarantined, .paused:
            // Quarantine is reported by status; repeating it every cron cycle would mail the operator.
            break
        case .busy:
            output.line("poll     another operation holds the lock; this cycle skipped")
        case .deployed(let sha):
            print("\(resolved.layout.current) -> \(resolved.layout.release(sha))")
        }
    }
}

/// `verify [--json] [--added]`: drift of the live release from its commit. Exit 1 when a
/// file differs.
public struct VerifyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "verify", abstract: CommandText.verify)

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "List the files the commit does not have (build output), not only count them.") var added = false

    public init() {}

    public func run() throws {
        let report = try Verify(settings: settings.resolve()).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text(listAdded: added))
        }
        if report.drifted { throw ExitCode(1) }
    }
}
