import Foundation
import ReleaseAgentTestSupport
import Testing

/// Seed 001's setup with a real Docker engine: `hooks/docker-compose` blue/green, each slot a
/// compose project (`<base>-<port>`) whose container runs the demo app on the host's network,
/// a private nginx in front switched by `PROXY=nginx`, and a client loop through nginx.
@Suite(
    "seed 001 for real: docker compose blue/green on a Docker engine, nginx in front", .serialized,
    .enabled(
        if: DockerEngine.runnable && TestTools.runnable("docker-compose", "nginx"),
        "needs a Docker engine (docker.io), docker-compose and nginx"))
struct DockerComposeEngineTests {
    @Test(
        "6 compose deploys, a refused candidate (3 of them through the `docker compose` form) and a rollback under a client loop through nginx: 0 failed, the old colour's container gone after each switch"
    )
    func blueGreenThroughNginx() throws {
        let seed = try ComposeSeed()
        defer { seed.cleanUp() }
        var live = seed.slots.0
        let v0 = try seed.repo.commit(
            "v0", files: ["app.py": DemoService.app, "compose.yaml": ComposeSeed.composeFile])
        try seed.expectSwitched(seed.deploy(), to: v0, live: live, old: nil)

        // A project the earlier hooks named by colour: the next switch's `stop` removes it.
        let legacy = try seed.startLegacyProject()

        let loop = try LoadLoop(port: seed.front, directory: seed.scratch.path, maxSeconds: 240)
        seed.loop = loop
        var timings: [Double] = []
        for n in 1...5 {
            // Deploys 3 and 4, and the refused candidate after 3, go through `docker compose` (a
            // shim that runs docker-compose with the plugin's arguments): both forms the hooks
            // choose from meet the real engine.
            seed.usePluginShim(n == 3 || n == 4)
            let sha = try seed.repo.commit("v\(n)", files: ["VERSION": "\(n)"])
            let started = Date()
            let result = try seed.deploy()
            timings.append(Date().timeIntervalSince(started))
            let old = live
            live = live == seed.slots.0 ? seed.slots.1 : seed.slots.0
            try seed.expectSwitched(result, to: sha, live: live, old: old)
            if n == 1 { #expect(try DockerEngine.containers(project: legacy).isEmpty, "\(legacy) runs on") }
            if n == 3 { try refuseSickCandidate(seed, live: live, good: sha) }
        }
        try rollBack(seed, from: live)
        let report = try loop.finish()
        let calls = seed.shimCalls()
        #expect(calls.filter { $0.hasSuffix("up --detach --remove-orphans") }.count == 3, "\(calls)")
        #expect(calls.contains("compose version"), "the hooks did not look for the plugin: \(calls)")
        let mean = timings.reduce(0, +) / Double(timings.count)
        print(
            "compose blue-green (real engine): \(report.total) requests through nginx, \(report.failed) failed; "
                + "5 deploys and a rollback under load + 1 refused; one deploy "
                + String(format: "%.1f s mean (min %.1f, max %.1f)", mean, timings.min() ?? 0, timings.max() ?? 0))
        #expect(report.total > 100, "the client loop barely ran")
        #expect(report.failed == 0, "failed requests: \(report.firstErrors)")
    }

    /// `rollback` goes the same way: the previous release started on the idle slot, the proxy
    /// moved, the slot that was live taken down.
    private func rollBack(_ seed: ComposeSeed, from live: Int) throws {
        let previous = try seed.repo.git("rev-parse", "HEAD~1").trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try seed.agent.run("rollback", seed.settings, timeout: 180)
        let idle = live == seed.slots.0 ? seed.slots.1 : seed.slots.0
        try seed.expectSwitched(result, to: previous, live: idle, old: live)
    }

    /// A candidate that never becomes healthy: refused, its container gone, current and the live
    /// container as they were, nginx still on the live slot.
    private func refuseSickCandidate(_ seed: ComposeSeed, live: Int, good: String) throws {
        let sick = try seed.repo.commit("sick", files: ["UNHEALTHY": "1"])
        let candidate = live == seed.slots.0 ? seed.slots.1 : seed.slots.0
        let result = try seed.deploy()
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("the candidate on port \(candidate) is unhealthy"), "\(result.stderr)")
        #expect(seed.agent.currentSHA == good)
        #expect(seed.agent.recordState(sick) == "failed")
        #expect(try DockerEngine.containers(project: seed.project(candidate)).isEmpty, "the refused candidate runs on")
        #expect(try DockerEngine.containers(project: seed.project(live), running: true).count == 1)
        #expect(DemoService.get(port: seed.front)?.body == "ok \(good)")
        try seed.repo.commit("healthy again", remove: ["UNHEALTHY"])
    }
}

/// One deploy root, repository, nginx and set of compose projects for the engine test; every
/// container and project it made is removed by `cleanUp`, also when the test failed half-way.
final class ComposeSeed: @unchecked Sendable {
    /// The app runs from the release dir, mounted read-only: the release on disk (the agent's
    /// unit of deploy, kept for an instant rollback, checked by `verify`) is what runs, and no
    /// image is built per deploy (no registry here, and a build per deploy costs minutes on
    /// small machines). `init: true`: as PID 1, python would ignore SIGTERM and every `stop`
    /// would wait docker's 10 s before SIGKILL.
    static let composeFile = """
        services:
          web:
            image: ${BASE_IMAGE}
            network_mode: host
            init: true
            environment:
              PORT: ${PORT}
            volumes:
              - .:/app:ro
            working_dir: /app
            command: ["python3", "app.py"]

        """

    let scratch = Scratch()
    let repo: GitFixture
    var agent: Agent
    let nginx: PrivateNginx
    let slots: (Int, Int)
    let front: Int
    /// Unique per run, so a run killed earlier (its containers left) cannot collide with this one.
    let base = "ra-test-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let settings: [String]
    let shimDir: String
    var loop: LoadLoop?
    private let path: String

    init() throws {
        let docker = try DockerEngine.require()
        _ = try TestTools.require("docker-compose", package: "docker-compose")
        let image = try DockerEngine.baseImage()
        repo = try GitFixture(at: scratch.sub("repo"))
        agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        slots = (freePort(), freePort())
        front = freePort()
        nginx = try PrivateNginx(prefix: scratch.sub("nginx"), port: front, initialUpstreamPort: slots.0)
        shimDir = scratch.sub("shim")
        try FileManager.default.createDirectory(atPath: shimDir, withIntermediateDirectories: true)
        try ComposeSeed.shim.write(toFile: shimDir + "/docker", atomically: true, encoding: .utf8)
        chmod(shimDir + "/docker", 0o755)
        path = agent.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        agent.environment.merge(nginx.hookEnvironment) { $1 }
        agent.environment.merge([
            "PROXY": "nginx", "COMPOSE_PROJECT": base, "BASE_IMAGE": image, "STOP_DRAIN": "1",
            // Earlier hooks named the projects by colour from BLUE_PORT; one that is neither slot
            // made both slots one project. It is ignored now.
            "BLUE_PORT": "5001",
            "REAL_DOCKER": docker, "COMPOSE_SHIM_LOG": scratch.sub("shim.log"),
        ]) { $1 }
        settings = [
            "--strategy", "blue-green", "--slots", "\(slots.0),\(slots.1)",
            "--hooks-dir", packageRoot + "/hooks/docker-compose",
            "--health-url", "http://127.0.0.1:{port}/health", "--health-timeout", "8s", "--health-interval", "100ms",
        ]
    }

    /// `docker` with the compose plugin's form (`docker compose ...`), run by Debian's
    /// docker-compose 1.29, which takes the same arguments; everything else goes to the real CLI.
    static let shim = """
        #!/bin/sh
        if [ "$1" = compose ]; then
          shift
          echo "compose $*" >> "$COMPOSE_SHIM_LOG"
          if [ "$1" = version ]; then echo "Docker Compose version v2 (test shim)"; exit 0; fi
          exec docker-compose "$@"
        fi
        exec "$REAL_DOCKER" "$@"

        """

    func usePluginShim(_ on: Bool) { agent.environment["PATH"] = on ? shimDir + ":" + path : path }

    func shimCalls() -> [String] {
        ((try? String(contentsOfFile: scratch.sub("shim.log"), encoding: .utf8)) ?? "").split(separator: "\n")
            .map(String.init)
    }

    func project(_ port: Int) -> String { "\(base)-\(port)" }

    /// A container labelled as `<base>-green`, as the hooks before the port names made it.
    func startLegacyProject() throws -> String {
        let name = base + "-green"
        let result = try ShellCommand.run(
            [
                DockerEngine.require(), "run", "--detach", "--init", "--network", "host",
                "--label", "com.docker.compose.project=\(name)", agent.environment["BASE_IMAGE"] ?? "", "sleep", "600",
            ], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try DockerEngine.containers(project: name, running: true).count == 1)
        return name
    }

    func deploy() throws -> CommandResult { try agent.run("deploy", settings, timeout: 180) }

    /// After a deploy of `sha` that switched to `live`: current, nginx and the containers agree.
    func expectSwitched(_ result: CommandResult, to sha: String, live: Int, old: Int?) throws {
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == sha)
        #expect(DemoService.get(port: front)?.body == "ok \(sha)", "nginx does not serve the new release")
        #expect(try DockerEngine.containers(project: project(live), running: true).count == 1)
        if let old {
            #expect(try DockerEngine.containers(project: project(old)).isEmpty, "the old colour's container runs on")
        }
        #expect(try DockerEngine.networks(project: project(live)).isEmpty, "compose made a network")
    }

    func cleanUp() {
        _ = try? loop?.finish()
        nginx.stop()
        DockerEngine.removeProjects(prefix: base + "-")
    }
}
