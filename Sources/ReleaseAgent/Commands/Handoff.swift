import ArgumentParser
import Foundation

/// `release-agent` hands `deploy`, `serve`, and a `poll` that must fetch, to
/// `release-agent-full`, installed next to it. That binary links libgit2 (whose ~15 shared
/// libraries take ~4 ms to load, more than a whole no-op poll of a local remote) and the
/// server stack (SwiftNIO, Hummingbird, BoringSSL). `exec` keeps the process id, the
/// terminal and the environment, so systemd, signals and `pid-file` see one process.
public enum Handoff {
    public static let binaryName = "release-agent-full"
    static let commands: Set<String> = ["deploy", "serve", "verify", "fleet"]

    /// `deploy ...`, `serve ...`, and `help deploy` / `help serve`.
    static func isHandedOff(_ arguments: [String]) -> Bool {
        guard let first = arguments.first else { return false }
        if first == "help", arguments.count > 1 { return commands.contains(arguments[1]) }
        return commands.contains(first)
    }

    static var binaryPath: String {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().path + "/" + binaryName
    }

    /// Runs `release-agent-full` with `arguments` (everything after argv[0]).
    static func exec(_ arguments: [String]) -> Never {
        let path = binaryPath
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        let command = arguments.first == "help" ? arguments.dropFirst().first ?? "" : arguments.first ?? ""
        StandardStream.error(
            "Error: \(command) runs \(path), which cannot be started (\(reason)); install \(binaryName) next to release-agent (see the README)\n"
        )
        Foundation.exit(2)
    }
}

/// The abstracts both binaries show, so `release-agent --help` and the full binary agree.
public enum CommandText {
    public static let root = "Keeps a deploy root in step with one branch of a git repository."
    public static let deploy = "Fetch, build, check and activate the branch head (or --sha/--ref)."
    public static let poll = "One cron-friendly cycle: deploy the branch head if it changed; silent when nothing to do."
    public static let serve = "Run the webhook endpoint and the poll loop: deploy on every push to the branch."
    public static let fleet = "Fleet mode (fleet-etcd): the rollout across the hosts, from etcd."
    public static let verify = "Compare the live release's files with its commit (drift); exit 1 when some differ."
    public static let forceHelp: ArgumentHelp =
        "Deploy the head even if it is quarantined (failed, or rolled back from)."
}

/// `deploy` and `serve` in `release-agent --help`. A line naming either is handed off
/// before parsing, so these only show in the command list.
protocol HandedOffCommand: ParsableCommand {
    var arguments: [String] { get }
}

extension HandedOffCommand {
    static var handOffDiscussion: String {
        "Runs \(Handoff.binaryName), which must be installed next to release-agent."
    }

    func run() throws { Handoff.exec([Self.configuration.commandName ?? ""] + arguments) }
}

struct DeployLauncher: HandedOffCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: CommandText.deploy, discussion: handOffDiscussion)

    @Argument(parsing: .captureForPassthrough, help: "The options, as `release-agent help deploy` lists them.")
    var arguments: [String] = []
}

struct ServeLauncher: HandedOffCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: CommandText.serve, discussion: handOffDiscussion)

    @Argument(parsing: .captureForPassthrough, help: "The options, as `release-agent help serve` lists them.")
    var arguments: [String] = []
}

struct VerifyLauncher: HandedOffCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: CommandText.verify, discussion: handOffDiscussion)

    @Argument(parsing: .captureForPassthrough, help: "The options, as `release-agent help verify` lists them.")
    var arguments: [String] = []
}

struct FleetLauncher: HandedOffCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: CommandText.fleet, discussion: handOffDiscussion)

    @Argument(parsing: .captureForPassthrough, help: "The subcommand, as `release-agent help fleet` lists them.")
    var arguments: [String] = []
}

/// `poll` in `release-agent`: a local remote whose head is live (or quarantined) is settled
/// here, silently; anything else is handed to `release-agent-full poll`, which asks again
/// and deploys.
struct PollCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "poll", abstract: CommandText.poll)

    @OptionGroup var settings: SettingsOptions
    @Flag(help: CommandText.forceHelp) var force = false

    func run() throws { try Self.run(settings.resolve(), force: force) }

    static func run(_ resolved: Settings, force: Bool) throws {
        let check = PollCheck(
            operation: DeployContext(settings: resolved, output: Output(json: resolved.logFormat == .json)))
        // Fleet mode asks etcd (a fleet rollback may be pending): release-agent-full does that.
        if resolved.fleet == nil, let head = try check.remote().localHead {
            if !PauseState.isPaused(resolved.layout) {
                // As release-agent-full's poll records them: /metrics' last look at the remote.
                FetchState.record(ok: true, source: "poll", layout: resolved.layout)
                HeadSeen.sawHead(head.hex, source: "poll", layout: resolved.layout)
            }
            if check.verdict(head: head, force: force) != .new { return }
        }
        Handoff.exec(Array(CommandLine.arguments.dropFirst()))
    }
}
