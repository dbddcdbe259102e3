import Foundation

/// `flock(2)` on the deploy root's lock file. The descriptor is close-on-exec, so no
/// build or hook inherits it; the kernel drops the lock when the process dies.
public final class FileLock {
    private let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Takes the lock at once, or waits up to `wait` for it; nil when it stays busy.
    public static func acquire(_ path: String, wait: Duration?) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AgentError.system { "cannot open the lock file \(path): \($0); check permissions" }
        }
        let deadline = ContinuousClock.now + (wait ?? .zero)
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(fd: fd, path: path) }
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = FileSystem.errnoText()
                close(fd)
                throw AgentError.failed("cannot lock \(path): \(reason)")
            }
            if ContinuousClock.now >= deadline {
                close(fd)
                return nil
            }
            usleep(20_000)
        }
    }
}
