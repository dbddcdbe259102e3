import Foundation

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
    public static var isStopping: Bool { lock.withLock { stoppingFlag || requested } }

    public static func request() { lock.withLock { requested = true } }

    public static func stop() { lock.withLock { stoppingFlag = true } }
}
