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
            StandardStream.error("Error: \(error.message.terminalSafe)\n")
            Foundation.exit(error.exitCode)
        case let error as OneLineFailure:
            StandardStream.error("Error: \(error.message.terminalSafe)\n")
            Foundation.exit(error.exitCode)
        case let error as ExitCode:
            Foundation.exit(error.rawValue)
        default:
            let code = root.exitCode(for: error)
            if code == .success {
                print(root.fullMessage(for: error))
                Foundation.exit(0)
            }
            StandardStream.error(oneLine(root.fullMessage(for: error)) + "\n")
            Foundation.exit(code == .validationFailure || code.rawValue == 64 ? 2 : code.rawValue)
        }
    }

    /// ArgumentParser's usage error (error, help of the option, usage, a pointer to --help)
    /// as the one line every failure is: its first line and the pointer.
    static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = lines.first else { return message }
        guard let see = lines.last(where: { $0.hasPrefix("See '") }) else { return first }
        return first + "; s" + see.dropFirst()
    }
}
