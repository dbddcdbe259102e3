import Foundation

/// The machine's Docker engine for the compose seed test: the CLI, a check that the engine
/// answers, and a base image imported once per machine from the Debian tree (there is no
/// registry to pull from). `.ci/run` starts the engine as
/// `dockerd --bridge=none --iptables=false --ip-masq=false`: containers use the host's network
/// only, and nothing here ever creates a bridge network.
public enum DockerEngine {
    /// The image's repository; its tag is the Debian tree's key, so a new tree is a new image.
    public static let imageRepository = "release-agent-test-base"

    /// For `.enabled(if:)`: true under CI (then a missing engine fails the test) or when an
    /// engine answers here.
    public static var runnable: Bool { TestTools.inCI || (try? require()) != nil }

    /// The docker CLI, once the engine has answered; otherwise an error that says how to start one.
    public static func require() throws -> String {
        let docker = try TestTools.require("docker", package: "docker.io")
        let result = try ShellCommand.run([docker, "version", "--format", "{{.Server.Version}}"], timeout: 30)
        guard result.status == 0 else {
            let said = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(result.status)"
            throw FixtureError(
                "no Docker engine answers (\(said)); .ci/run starts one: dockerd --bridge=none --iptables=false --ip-masq=false"
            )
        }
        return docker
    }

    /// The base image's name (`release-agent-test-base:bookworm-<key>`), imported now from
    /// `DebianTree.ensure()` unless an earlier run did; under an flock, so two suites import once.
    public static func baseImage() throws -> String {
        let docker = try require()
        let tree = try DebianTree.ensure()
        let tag = (tree as NSString).lastPathComponent.replacingOccurrences(of: "debian-", with: "")
        let name = "\(imageRepository):\(tag)"
        let lock = open("\(DebianTree.cacheRoot)/docker-image.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            throw FixtureError("cannot open \(DebianTree.cacheRoot)/docker-image.lock: errno \(errno)")
        }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw FixtureError("cannot lock docker-image.lock") }
        if try ShellCommand.run([docker, "image", "inspect", name], timeout: 30).status == 0 { return name }
        // The tree may be booted by the systemd seed test meanwhile: its /run and /tmp are not
        // part of an image, and a file that changes while tar reads it is no reason to fail.
        let script = """
            tar -C "$1" --exclude='./run/*' --exclude='./tmp/*' --exclude='./proc/*' --exclude='./sys/*' \
              --warning=no-file-changed --warning=no-file-ignored -c . | "$2" import - "$3"
            """
        let result = try ShellCommand.run(["/bin/sh", "-c", script, "sh", tree, docker, name], timeout: 600)
        guard result.status == 0, try ShellCommand.run([docker, "image", "inspect", name], timeout: 30).status == 0
        else {
            throw FixtureError(
                "docker import of \(tree) as \(name) failed (exit \(result.status)): \(result.stderr.suffix(1500))")
        }
        return name
    }

    /// The ids of the containers labelled as compose project `project`: running ones, or in any state.
    public static func containers(project: String, running: Bool = false) throws -> [String] {
        try lines(
            [require(), "ps", "--quiet", "--filter", "label=com.docker.compose.project=\(project)"]
                + (running ? [] : ["--all"]))
    }

    /// The ids of the networks labelled as compose project `project` (there must be none: host network only).
    public static func networks(project: String) throws -> [String] {
        try lines([
            require(), "network", "ls", "--quiet", "--filter", "label=com.docker.compose.project=\(project)",
        ])
    }

    /// Removes every container and network whose compose project starts with `prefix`, whatever
    /// its state: a test's cleanup, run even when the test failed half-way.
    public static func removeProjects(prefix: String) {
        guard let docker = try? require(),
            let listed = try? lines([
                docker, "ps", "--all", "--format", "{{.ID}} {{.Label \"com.docker.compose.project\"}}",
            ])
        else { return }
        let ids = listed.map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
            .filter { $0.count == 2 && $0[1].hasPrefix(prefix) }.map { $0[0] }
        if !ids.isEmpty { _ = try? ShellCommand.run([docker, "rm", "--force"] + ids, timeout: 120) }
        let nets =
            (try? lines([docker, "network", "ls", "--format", "{{.ID}} {{.Label \"com.docker.compose.project\"}}"]))
            ?? []
        let netIDs = nets.map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
            .filter { $0.count == 2 && $0[1].hasPrefix(prefix) }.map { $0[0] }
        if !netIDs.isEmpty { _ = try? ShellCommand.run([docker, "network", "rm"] + netIDs, timeout: 60) }
    }

    private static func lines(_ arguments: [String]) throws -> [String] {
        let result = try ShellCommand.run(arguments, timeout: 60)
        guard result.status == 0 else {
            throw FixtureError("\(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}
