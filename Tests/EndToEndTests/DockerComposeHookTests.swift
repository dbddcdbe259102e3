import Foundation
import ReleaseAgentTestSupport
import Testing

/// The docker-compose hooks' own checks and their proxy choice, no Docker engine needed (the
/// deploys themselves run against a real engine in DockerComposeEngineTests), and shellcheck
/// on every sample hook.
@Suite("seed: docker compose hooks: refusals, the proxy route (traefik, nginx, caddy), shellcheck", .serialized)
struct DockerComposeHookTests {
    @Test("every sample hook is shellcheck-clean", .enabled(if: TestTools.runnable("shellcheck")))
    func shellcheck() throws {
        let binary = try TestTools.require("shellcheck", package: "shellcheck")
        var scripts: [String] = []
        for dir in ["hooks", "releases.example/hooks", "releases.example/app"] {
            for name in try FileManager.default.subpathsOfDirectory(atPath: packageRoot + "/" + dir).sorted() {
                let path = packageRoot + "/" + dir + "/" + name
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                let shebang = text.split(separator: "\n", maxSplits: 1).first ?? ""
                if ["#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env sh", "#!/usr/bin/env bash"].contains(shebang)
                    || shebang.hasPrefix("# shellcheck shell=")
                {
                    scripts.append(path)
                }
            }
        }
        scripts.append(packageRoot + "/releases.example/demo.sh")
        #expect(scripts.count >= 15, "found only \(scripts)")
        #expect(scripts.contains(packageRoot + "/hooks/docker-compose/lib.sh"))
        let result = try ShellCommand.run([binary] + scripts)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }

    @Test(
        "start refuses a project name compose would change, a release without a compose file, a COMPOSE_BIN that is not there, before any docker call"
    )
    func startRefusals() throws {
        let hook = HookRun()
        var result = try hook.run("start", ["COMPOSE_PROJECT": "my app"])
        #expect(result.status == 1)
        #expect(
            result.stderr
                == "docker-compose/start: COMPOSE_PROJECT='my app' is not a compose project name: use lower-case letters, digits, '-' and '_', starting with a letter or digit\n"
        )
        result = try hook.run("start", ["COMPOSE_PROJECT": "Shop"])
        #expect(result.status == 1 && result.stderr.contains("COMPOSE_PROJECT='Shop'"), "\(result.stderr)")
        result = try hook.run("start", [:])
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix("docker-compose/start: no compose file in \(hook.release) (looked for compose.yaml")
        )
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        result = try hook.run("start", ["COMPOSE_FILE_NAME": "deploy/compose.yaml"])
        #expect(result.stderr.contains("(looked for deploy/compose.yaml; set COMPOSE_FILE_NAME)"), "\(result.stderr)")
        try "services: {}\n".write(toFile: hook.release + "/compose.yaml", atomically: true, encoding: .utf8)
        result = try hook.run("start", ["COMPOSE_BIN": "podman-compose --podman-path x"])
        #expect(
            result.stderr
                == "docker-compose/start: COMPOSE_BIN='podman-compose --podman-path x': podman-compose is not a command here\n"
        )
        #expect(hook.dockerCalls().isEmpty, "\(hook.dockerCalls())")
    }

    @Test("start refuses a slot port that something else listens on: it would answer the health check")
    func portInUse() throws {
        let hook = HookRun()
        try "services: {}\n".write(toFile: hook.release + "/compose.yaml", atomically: true, encoding: .utf8)
        let squatter = try TCPListener()
        let result = try hook.run("start", ["RELEASE_PORT": String(squatter.port)])
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix(
                "docker-compose/start: port \(squatter.port) is in use, not by project app-\(squatter.port)"),
            "\(result.stderr)")
        #expect(!hook.dockerCalls().contains { $0.contains(" up ") }, "\(hook.dockerCalls())")
    }

    @Test("start and stop say in one line that no engine answers")
    func engineDown() throws {
        let hook = HookRun()
        try "services: {}\n".write(toFile: hook.release + "/compose.yaml", atomically: true, encoding: .utf8)
        for event in ["start", "stop"] {
            let result = try hook.run(event, ["DOCKER_STANDIN_DOWN": "1"])
            #expect(result.status == 1)
            #expect(
                result.stderr.hasPrefix("docker-compose/\(event): the Docker engine does not answer (Cannot connect"),
                "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
        #expect(!hook.dockerCalls().contains { $0.contains(" up ") || $0.hasPrefix("rm") })
    }

    @Test(
        "activate: Traefik's file route by default; PROXY=nginx runs the nginx hook beside it, also through a symlink")
    func activateRoutes() throws {
        let hook = HookRun()
        var result = try hook.run("activate", ["COMPOSE_PROJECT": "shop"])
        #expect(result.status == 0, "\(result.stderr)")
        let route = (try? String(contentsOfFile: hook.scratch.sub("traefik.yml"), encoding: .utf8)) ?? ""
        #expect(route.contains("url: \"http://127.0.0.1:\(hook.port)\""), "\(route)")
        #expect(route.contains("rule: \"PathPrefix(`/`)\"") && route.contains("    shop:\n"), "\(route)")

        // The operator links the packaged hook into ROOT/hooks: the nginx hook is found beside the original.
        let linked = hook.scratch.sub("linked")
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: linked + "/activate", withDestinationPath: packageRoot + "/hooks/docker-compose/activate")
        let upstream = hook.scratch.sub("upstream.conf")
        result = try hook.run(
            linked + "/activate", ["PROXY": "nginx", "NGINX_BIN": "/bin/true", "NGINX_UPSTREAM_FILE": upstream])
        #expect(result.status == 0, "\(result.stderr)")
        let text = (try? String(contentsOfFile: upstream, encoding: .utf8)) ?? ""
        #expect(text.contains("server 127.0.0.1:\(hook.port);"), "\(text)")
    }

    @Test(
        "activate: one line for a PROXY it does not know, a strategy without slots, a hook copied without the nginx one"
    )
    func activateRefusals() throws {
        let hook = HookRun()
        var result = try hook.run("activate", ["PROXY": "haproxy"])
        #expect(result.status == 1)
        #expect(result.stderr == "docker-compose/activate: PROXY='haproxy' is not traefik, nginx or caddy\n")
        result = try hook.run("activate", ["RELEASE_PORT": ""])
        #expect(
            result.stderr
                == "docker-compose/activate: RELEASE_PORT is not set: these hooks are for strategy = blue-green, with two slots\n"
        )
        let copied = hook.scratch.sub("copied")
        try FileManager.default.createDirectory(atPath: copied, withIntermediateDirectories: true)
        for name in ["activate", "lib.sh"] {
            try FileManager.default.copyItem(
                atPath: packageRoot + "/hooks/docker-compose/" + name, toPath: copied + "/" + name)
        }
        result = try hook.run(copied + "/activate", ["PROXY": "nginx"])
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix(
                "docker-compose/activate: PROXY=nginx runs \(copied)/../nginx-blue-green/activate, which is not there"))
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        try FileManager.default.removeItem(atPath: copied + "/lib.sh")
        result = try hook.run(copied + "/activate", [:])
        #expect(result.status == 1 && result.stderr.contains("lib.sh is missing"), "\(result.stderr)")
    }
}

extension DockerComposeHookTests {
    @Test(
        "activate: PROXY=caddy moves a real Caddy's upstream through its admin API",
        .enabled(if: TestTools.runnable("caddy")))
    func activateCaddy() throws {
        let caddy = try TestTools.require("caddy", package: "caddy")
        let hook = HookRun()
        let (front, admin, other) = (freePort(), freePort(), freePort())
        var apps: [TestServer] = []
        for (port, name) in [(other, "old"), (hook.port, "new")] {
            let dir = hook.scratch.sub(name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try DemoService.app.write(toFile: dir + "/app.py", atomically: true, encoding: .utf8)
            try "\(name)\n".write(toFile: dir + "/REVISION", atomically: true, encoding: .utf8)
            apps.append(
                try TestServer(
                    ["python3", dir + "/app.py"], port: port, log: dir + "/log",
                    environment: ["PORT": String(port), "PATH": "/usr/bin:/bin"]))
        }
        let config = """
            {"admin": {"listen": "127.0.0.1:\(admin)"},
             "apps": {"http": {"servers": {"front": {"listen": ["127.0.0.1:\(front)"], "routes": [{"handle": [
               {"handler": "reverse_proxy", "@id": "release-agent-upstream", "upstreams": [{"dial": "127.0.0.1:\(other)"}]}
             ]}]}}}}}
            """
        try config.write(toFile: hook.scratch.sub("caddy.json"), atomically: true, encoding: .utf8)
        let server = try TestServer(
            [caddy, "run", "--config", hook.scratch.sub("caddy.json")], port: front, log: hook.scratch.sub("caddy.log"),
            environment: [
                "HOME": hook.scratch.sub("home"), "XDG_DATA_HOME": hook.scratch.sub("data"),
                "XDG_CONFIG_HOME": hook.scratch.sub("config"), "PATH": "/usr/bin:/bin",
            ])
        defer { server.stop() }
        #expect(DemoService.get(port: front)?.body == "ok old")
        let result = try hook.run("activate", ["PROXY": "caddy", "CADDY_ADMIN": "http://127.0.0.1:\(admin)"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(DemoService.get(port: front)?.body == "ok new")
        _ = apps
    }
}

/// One hook run outside the agent, with the environment the agent gives it, and a `docker`
/// stand-in on PATH that records its calls (and answers like a stopped engine when asked to).
struct HookRun {
    let scratch = Scratch()
    let port = freePort()
    var release: String { scratch.sub("releases/" + String(repeating: "a", count: 40)) }

    static let docker = """
        #!/bin/sh
        echo "$*" >> "$DOCKER_LOG"
        if [ -n "${DOCKER_STANDIN_DOWN:-}" ] && [ "$1" != compose ]; then
          echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
          exit 1
        fi
        exit 0

        """

    init() {
        try? FileManager.default.createDirectory(atPath: scratch.sub("bin"), withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: release, withIntermediateDirectories: true)
        try? HookRun.docker.write(toFile: scratch.sub("bin/docker"), atomically: true, encoding: .utf8)
        chmod(scratch.sub("bin/docker"), 0o755)
    }

    /// Runs `hook` (an event name in hooks/docker-compose, or a path) as the agent would.
    func run(_ hook: String, _ extra: [String: String]) throws -> CommandResult {
        let path = hook.hasPrefix("/") ? hook : packageRoot + "/hooks/docker-compose/" + hook
        var environment = [
            "PATH": scratch.sub("bin") + ":/usr/bin:/bin", "DOCKER_LOG": scratch.sub("docker.log"),
            "RELEASE_DIR": release, "DEPLOY_ROOT": scratch.path, "RELEASE_PORT": String(port),
            "STOP_PORT": String(port), "STOP_DIR": release, "TRAEFIK_DYNAMIC_FILE": scratch.sub("traefik.yml"),
        ]
        environment.merge(extra) { $1 }
        return try ShellCommand.run([path], environment: environment, directory: release, timeout: 60)
    }

    func dockerCalls() -> [String] {
        ((try? String(contentsOfFile: scratch.sub("docker.log"), encoding: .utf8)) ?? "").split(separator: "\n")
            .map(String.init)
    }
}
