import ArgumentParser
import Foundation
import ReleaseAgent
import ReleaseAgentFleet
import ReleaseAgentGit
import ReleaseAgentPrometheus

/// `release-agent-full`: every command, the daemon, and the git code. `release-agent` execs
/// it for deploy, serve and a poll that must fetch; run on its own it is the whole tool.
public struct FullRootCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "release-agent",
        abstract: CommandText.root,
        version: ReleaseAgentVersion.string,
        subcommands: [
            DeployCommand.self, FullPollCommand.self, ServeCommand.self, VerifyCommand.self, FleetCommand.self,
        ]
            + SharedCommands.all
    )

    public init() {}

    public static func runMain() async -> Never {
        CommandMain.prepareProcess()
        Capabilities.process = Capabilities(
            openSource: { path, url, credentials in try GitCache(path: path, remoteURL: url, credentials: credentials)
            },
            remoteHead: { url, branch, credentials in
                try GitCache.remoteHead(url: url, branch: branch, credentials: credentials)
            },
            fleetGate: EtcdFleetGate.maker(session: nil),
            metrics: { settings in PrometheusQuerier(settings: settings) },
            fetchHead: { settings in try GitCache.recordRemoteHead(settings) })
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch {
            CommandMain.exit(for: error, root: FullRootCommand.self)
        }
    }
}
