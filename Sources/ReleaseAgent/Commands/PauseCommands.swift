import ArgumentParser
import Foundation

/// `pause [--reason TEXT]`: poll and webhooks deploy nothing until `resume`.
package struct PauseCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop poll and webhooks from deploying until resume (deploy and rollback still work).")

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Why, for status and /healthz.") var reason: String = "paused"

    package init() {}

    package func run() throws {
        let resolved = try settings.resolve()
        try resolved.layout.create()
        let user = ProcessInfo.processInfo.environment["SUDO_USER"] ?? NSUserName()
        let state = PauseState(reason: reason, time: Date().timeIntervalSince1970, user: user)
        try state.write(resolved.layout)
        print("paused: \(state.text); resume with: release-agent resume")
    }
}

/// `resume`: lifts the pause. With a pid-file that names this root's running `serve`, it gets
/// SIGHUP and deploys the newest head at once; otherwise the next poll does.
package struct ResumeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Lift a pause: the newest head is deployed at once by serve, else at the next poll.")

    @OptionGroup var settings: SettingsOptions

    package init() {}

    package func run() throws {
        let resolved = try settings.resolve()
        guard PauseState.remove(resolved.layout) else {
            print("not paused")
            return
        }
        guard let pidFile = resolved.pidFile else {
            print("resumed; the next poll deploys the newest head")
            return
        }
        // Only this root's serve is signalled: a stale pid-file may name any process now.
        switch ServeIdentity.find(pidFile: pidFile, layout: resolved.layout) {
        case .serve(let pid):
            if kill(pid, SIGHUP) == 0 {
                print("resumed; serve (pid \(pid)) deploys the newest head now")
            } else {
                print(
                    "resumed; serve (pid \(pid)) cannot be signalled (\(FileSystem.errnoText())): it deploys the newest head at its next poll; run resume as the user serve runs as"
                )
            }
        case .none(let why):
            print("resumed; no serve runs for this root (\(why)); the next poll deploys the newest head")
        }
    }
}

/// The subcommands both binaries run the same way (each adds its own deploy, poll and serve).
package enum SharedCommands {
    package static let all: [ParsableCommand.Type] = [
        RollbackCommand.self, StatusCommand.self, HistoryCommand.self, PruneCommand.self, PauseCommand.self,
        ResumeCommand.self, InitCommand.self,
    ]
}
