import Foundation
import Synchronization

/// Two moments of `serve`'s shutdown (and of SIGTERM to `deploy`/`poll` in fleet mode):
/// `stopping` at once, when nothing new may start and every fleet wait gives up its wait and
/// its slot; `isRequested` when the grace period is over, when a running build or hook is
/// killed at once and its incomplete release removed (current is never touched by that).
public enum Cancellation {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var requested = false
    nonisolated(unsafe) private static var stoppingFlag = false

    public static var isRequested: Bool { lock.withLock { requested } }

    /// A shutdown has begun: waits end now, running work goes on to its safe point.
    public static var isStopping: Bool {
        lock.withLock { stoppingFlag || requested } || commandStop.load(ordering: .relaxed)
    }

    public static func request() { lock.withLock { requested = true } }

    public static func stop() { lock.withLock { stoppingFlag = true } }

    // MARK: SIGTERM and SIGINT to a `deploy` or `poll` in fleet mode

    /// Set by the signal handler while the command waits for the fleet.
    fileprivate static let commandStop = Atomic<Bool>(false)
    fileprivate static let commandWaiting = Atomic<Bool>(false)

    /// For `deploy` and `poll` in fleet mode: SIGTERM or SIGINT during a wait for the fleet
    /// (`interruptible`) ends the wait and gives its slot up, as in serve; at any other moment
    /// it does what it always did (the default action: the next operation recovers).
    public static func installCommandSignals() {
        signal(SIGTERM, commandSignal)
        signal(SIGINT, commandSignal)
        // A dropped ssh session: the wait (or the analysis) ends as on SIGTERM, not the process.
        signal(SIGHUP, commandSignal)
    }

    /// Runs a wait that a SIGTERM or SIGINT to the command ends (through `isStopping`).
    public static func interruptible<T>(_ body: () throws -> T) rethrows -> T {
        commandWaiting.store(true, ordering: .sequentiallyConsistent)
        defer { commandWaiting.store(false, ordering: .sequentiallyConsistent) }
        return try body()
    }
}

/// Async-signal-safe: atomics, signal(2) and raise(2) only.
private func commandSignal(_ number: Int32) {
    if Cancellation.commandWaiting.load(ordering: .sequentiallyConsistent) {
        Cancellation.commandStop.store(true, ordering: .sequentiallyConsistent)
    } else {
        signal(number, SIG_DFL)
        raise(number)
    }
}
