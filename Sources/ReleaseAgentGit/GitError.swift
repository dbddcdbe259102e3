import CLibGit2

/// A failed libgit2 call, read from `git_error_last()` right after the call.
public struct GitError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public let operation: String
    /// libgit2's error class (`GIT_ERROR_NET`, `GIT_ERROR_SSH`, ...), read with the message.
    public var klass: Int32 = 0

    public var description: String { "\(operation): \(message)" }

    /// Turns a libgit2 return code into a thrown `GitError` (negative codes only).
    @discardableResult
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
        guard code < 0 else { return code }
        var error = GitError(code: code, message: lastMessage(), operation: operation())
        error.klass = clibgit2_last_error_class()
        throw error
    }

    static func lastMessage() -> String {
        if let error = git_error_last(), let text = error.pointee.message {
            return String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return "unknown libgit2 error"
    }

    var isAuth: Bool { code == GIT_EAUTH.rawValue }

    /// Why reading the git cache failed, by libgit2's error class (never its text), and the fix.
    static func cacheReading(klass: Int32, code: Int32, cache: String) -> String {
        switch klass {
        case Int32(GIT_ERROR_ODB.rawValue), Int32(GIT_ERROR_OBJECT.rawValue), Int32(GIT_ERROR_ZLIB.rawValue),
            Int32(GIT_ERROR_TREE.rawValue):
            return
                "an object is missing or damaged in the git cache \(cache); delete that directory and deploy again (it is fetched anew)"
        case Int32(GIT_ERROR_REPOSITORY.rawValue):
            return
                "the git cache \(cache) is damaged (no longer a git repository); delete that directory and deploy again (it is fetched anew)"
        case Int32(GIT_ERROR_OS.rawValue):
            return "the git cache \(cache) could not be read (a system error); check its permissions and the disk"
        case Int32(GIT_ERROR_NOMEMORY.rawValue):
            return "out of memory reading the git cache; free memory and deploy again"
        default:
            return
                "libgit2 failed reading the git cache \(cache) (error class \(klass), code \(code)); delete that directory and deploy again"
        }
    }
}

/// Initializes libgit2 once per process.
enum LibGit2 {
    private static let initialized: Bool = {
        git_libgit2_init()
        // The cache lives under the deploy root, which the operator owns; a root run
        // over a deploy user's tree must not fail on safe.directory checks.
        _ = clibgit2_disable_owner_validation()
        return true
    }()

    static func ensureInitialized() { _ = initialized }
}
