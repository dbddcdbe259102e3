import Foundation

/// The result of a finished command.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a command to completion, with a bounded wait, capturing its output through files
/// (so a child left in the background cannot hold a pipe open).
public enum ShellCommand {
    public static func run(
        _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        timeout: TimeInterval = 120
    ) throws -> CommandResult {
        let running = try start(arguments, environment: environment, directory: directory)
        return try running.wait(timeout: timeout)
    }

    public static func start(_ arguments: [String], environment: [String: String]? = nil, directory: String? = nil)
        throws -> RunningCommand
    {
        try RunningCommand(arguments, environment: environment, directory: directory)
    }
}

/// A command running in the background.
public final class RunningCommand: @unchecked Sendable {
    public let process = Process()
    private let outPath: String
    private let errPath: String

    init(_ arguments: [String], environment: [String: String]?, directory: String?) throws {
        let id = UUID().uuidString
        outPath = NSTemporaryDirectory() + "/ra-out-\(id)"
        errPath = NSTemporaryDirectory() + "/ra-err-\(id)"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    /// Waits at most `timeout` seconds; a command still running then is killed and reported.
    public func wait(timeout: TimeInterval = 120) throws -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw FixtureError(
                "\(process.executableURL?.path ?? "") did not finish within \(timeout)s: \(read(errPath))")
        }
        process.waitUntilExit()
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        return CommandResult(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }

    private func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }
}
