import Foundation

/// A temporary directory removed when the value is released; on tmpfs when there is one.
public final class Scratch: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "ra") {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        path = "\(base)/\(label)-\(UUID().uuidString.prefix(13))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        // Tests may leave read-only dirs; make everything writable, then remove.
        _ = try? ShellCommand.run(["/bin/chmod", "-R", "u+rwx", path])
        try? FileManager.default.removeItem(atPath: path)
    }

    public func sub(_ name: String) -> String { path + "/" + name }
}

/// A git repository made with the git CLI (tests only; the product never runs git).
public struct GitFixture: Sendable {
    public let path: String

    public init(at path: String, branch: String = "main") throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try git("init", "-q", "-b", branch)
        try git("config", "commit.gpgsign", "false")
    }

    @discardableResult
    public func git(_ arguments: String...) throws -> String {
        try gitArgs(arguments)
    }

    @discardableResult
    public func gitArgs(_ arguments: [String]) throws -> String {
        var env = ProcessInfo.processInfo.environment
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        env["GIT_CONFIG_GLOBAL"] = "/dev/null"
        env["GIT_AUTHOR_NAME"] = "Test Author"
        env["GIT_AUTHOR_EMAIL"] = "author@example.invalid"
        env["GIT_COMMITTER_NAME"] = "Test Author"
        env["GIT_COMMITTER_EMAIL"] = "author@example.invalid"
        let result = try ShellCommand.run(["/usr/bin/env", "git", "-C", path] + arguments, environment: env)
        guard result.status == 0 else {
            throw FixtureError("git \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes `files` (path -> content; mode 0755 when the content starts with `#!`), commits, returns the sha.
    @discardableResult
    public func commit(_ message: String, files: [String: String] = [:], remove: [String] = []) throws -> String {
        for (name, content) in files {
            let full = path + "/" + name
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: full, atomically: true, encoding: .utf8)
            if content.hasPrefix("#!") { chmod(full, 0o755) }
        }
        for name in remove { try git("rm", "-q", name) }
        try git("add", "-A")
        try git("commit", "-q", "--allow-empty", "-m", message)
        return try git("rev-parse", "HEAD")
    }

    /// Writes a tree object as given, unchecked (`hash-object --literally`): the only way to
    /// get names git itself refuses, like `..`. `entries` are (mode, name, object id).
    public func rawTree(_ entries: [(mode: String, name: String, id: String)]) throws -> String {
        var bytes = Data()
        for entry in entries {
            bytes.append(Data("\(entry.mode) \(entry.name)\u{0}".utf8))
            var hex = Substring(entry.id)
            while !hex.isEmpty {
                bytes.append(UInt8(hex.prefix(2), radix: 16)!)
                hex = hex.dropFirst(2)
            }
        }
        let file = path + "/.git/raw-tree-\(UUID().uuidString)"
        try bytes.write(to: URL(fileURLWithPath: file))
        defer { unlink(file) }
        return try git("hash-object", "-t", "tree", "--literally", "-w", file)
    }

    /// Commits `tree` on top of HEAD and moves the current branch there.
    @discardableResult
    public func commitTree(_ tree: String, message: String) throws -> String {
        let sha = try git("commit-tree", "-m", message, "-p", "HEAD", tree)
        try git("update-ref", "HEAD", sha)
        return sha
    }

    /// A blob with `content`, written to the object store only.
    public func blob(_ content: String) throws -> String {
        let file = path + "/.git/raw-blob-\(UUID().uuidString)"
        try content.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        return try git("hash-object", "-w", file)
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
