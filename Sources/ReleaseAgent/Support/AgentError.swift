import Foundation

/// Every failure the CLI reports: one line that names the cause and the remedy,
/// and the exit status the SPEC gives it.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// Bad usage or configuration: exit 2, nothing on disk changed.
        case usage
        /// The deploy or rollback failed; `current` is on a good release: exit 1.
        case failed
        /// Another operation holds the lock: exit 75.
        case busy
        /// A shutdown stopped the deploy before the swap: nobody's fault, nothing recorded; exit 1.
        case cancelled
    }

    public let kind: Kind
    public let message: String
    /// The machine's fault, not the commit's (a full disk, an I/O error): a failed release
    /// is not quarantined, so the next trigger tries it again.
    public let isEnvironmental: Bool
    /// What the message was made from, kept for code that must act on it (a `GitError`'s
    /// class and code, an `EtcdError`'s kind, a `POSIXError`'s errno), as NIOFS's
    /// `FileSystemError` keeps its cause. Never printed: the message says it.
    public let cause: (any Error)?

    public init(_ kind: Kind, _ message: String, environmental: Bool = false, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.isEnvironmental = environmental
        self.cause = cause
    }

    /// A failed system call: errno read at once, its text handed to `message`, and kept as
    /// the cause.
    public static func system(environmental: Bool = false, _ message: (String) -> String) -> AgentError {
        let code = errno
        return AgentError(
            .failed, message(String(cString: strerror(code))), environmental: environmental, cause: posix(code))
    }

    /// The errno of a failed system call, as a cause.
    public static func posix(_ code: Int32) -> POSIXError? { POSIXErrorCode(rawValue: code).map { POSIXError($0) } }

    public static func usage(_ message: String) -> AgentError { AgentError(.usage, message) }
    public static func failed(_ message: String) -> AgentError { AgentError(.failed, message) }
    public static func cancelled(_ message: String) -> AgentError { AgentError(.cancelled, message) }
    /// A failure of the disk or the machine: exit 1, and no quarantine of the commit.
    public static func environment(_ message: String) -> AgentError {
        AgentError(.failed, message, environmental: true)
    }

    public var exitCode: Int32 {
        switch kind {
        case .usage: return 2
        case .failed: return 1
        case .busy: return 75
        case .cancelled: return 1
        }
    }

    public var description: String { message }
}
