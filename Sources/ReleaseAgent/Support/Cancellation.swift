import Foundation

/// Set when `serve` shuts down and its grace period is over: a running build or hook is
/// killed at once and its incomplete release removed (current is never touched by that).
public enum Cancellation {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var requested = false

    public static var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }

    public static func request() {
        lock.lock()
        requested = true
        lock.unlock()
    }
}
