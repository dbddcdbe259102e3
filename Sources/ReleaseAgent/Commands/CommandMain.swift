import ArgumentParser
import Foundation

/// What both binaries' `main` share: signal dispositions, and one `Error: ...` line with the
/// SPEC's exit status for every failure.
public enum CommandMain {
    public static func prepareProcess() {
        signal(SIGPIPE, SIG_IGN)
        // A file-size limit (`ulimit -f`) then fails the write with EFBIG: a clear error, not a kill.
        signal(SIGXFSZ, SIG_IGN)
    }

    public static func exit(for error: Error, root: any ParsableCommand.Type) -> Never {
        switch error {
        case let error as AgentError:
            FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
            Foundation.exit(error.exitCode)
        case let error as ExitCode:
            Foundation.exit(error.rawValue)
        default:
            let code = root.exitCode(for: error)
            if code == .success {
                print(root.fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((root.fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure || code.rawValue == 64 ? 2 : code.rawValue)
        }
    }
}

/// `release-agent serve` runs `release-agent-serve`, installed next to `release-agent`: the
/// daemon carries the HTTP server stack (NIO, BoringSSL), the CLI does not, so the commands
/// cron and operators run start in about half the time. `exec` keeps the process id, so
/// systemd, signals and the pid file see one process, as before.
struct ServeLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the webhook endpoint and the poll loop: deploy on every push to the branch.",
        discussion: "Runs release-agent-serve, which must be installed next to release-agent.")

    @Argument(parsing: .captureForPassthrough, help: "The settings, as for the other commands.")
    var arguments: [String] = []

    func run() throws { Self.exec(arguments) }

    static var binaryPath: String {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().path + "/release-agent-serve"
    }

    static func exec(_ arguments: [String]) -> Never {
        let path = binaryPath
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(
            Data(
                "Error: serve runs \(path), which cannot be started (\(reason)); install release-agent-serve next to release-agent (see the README)\n"
                    .utf8))
        Foundation.exit(2)
    }
}
