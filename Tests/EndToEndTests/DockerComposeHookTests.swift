import Foundation
import ReleaseAgentTestSupport
import Testing

/// A `docker` stand-in (no Docker engine on these machines): records each call with $PORT,
/// and plays the engine's part for `compose up` (starts the release's app on $PORT) and
/// `compose down` (stops it), so the health checks and the switch are real.
private let dockerStandIn = """
    #!/bin/sh
    set -eu
    echo "PORT=${PORT:-} $*" >> "$DOCKER_LOG"
    [ "$1" = compose ] || exit 1
    shift
    project=""; dir=""; action=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --project-name) project=$2; shift 2 ;;
        --project-directory) dir=$2; shift 2 ;;
        --file) [ -f "$2" ] || { echo "no compose file $2" >&2; exit 1; }; shift 2 ;;
        up|down) action=$1; shift ;;
        *) shift ;;
      esac
    done
    pidfile="$DOCKER_STATE/$project.pid"
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
      sleep 0.2
    fi
    if [ "$action" = up ]; then
      PORT=$PORT nohup python3 "$dir/app.py" > /dev/null 2>&1 < /dev/null &
      echo $! > "$pidfile"
    fi

    """

@Suite("seed: docker compose blue/green hooks (Traefik file provider), shellcheck on every hook", .serialized)
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
                if ["#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env sh", "#!/usr/bin/env bash"].contains(shebang) {
                    scripts.append(path)
                }
            }
        }
        scripts.append(packageRoot + "/releases.example/demo.sh")
        #expect(scripts.count >= 14, "found only \(scripts)")
        let result = try ShellCommand.run([binary] + scripts)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }

    @Test(
        "blue, green, blue: compose up on the slot's port, Traefik switched, the old colour down; a sick candidate only stopped"
    )
    func blueGreen() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let bin = scratch.sub("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.sub("docker"), withIntermediateDirectories: true)
        try dockerStandIn.write(toFile: bin + "/docker", atomically: true, encoding: .utf8)
        chmod(bin + "/docker", 0o755)
        defer {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: scratch.sub("docker"))) ?? [] {
                if let text = try? String(contentsOfFile: scratch.sub("docker/" + name), encoding: .utf8),
                    let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
                {
                    kill(pid, SIGKILL)
                }
            }
        }
        let blue = freePort()
        let green = freePort()
        let log = scratch.sub("docker.log")
        let traefik = scratch.sub("traefik.yml")
        agent.environment["PATH"] = bin + ":" + (agent.environment["PATH"] ?? "/usr/bin:/bin")
        agent.environment["DOCKER_LOG"] = log
        agent.environment["DOCKER_STATE"] = scratch.sub("docker")
        agent.environment["BLUE_PORT"] = String(blue)
        agent.environment["COMPOSE_PROJECT"] = "shop"
        agent.environment["TRAEFIK_DYNAMIC_FILE"] = traefik
        let arguments = [
            "--strategy", "blue-green", "--slots", "\(blue),\(green)",
            "--hooks-dir", packageRoot + "/hooks/docker-compose",
            "--health-url", "http://127.0.0.1:{port}/health", "--health-timeout", "10s",
        ]
        let compose = "services:\n  web:\n    build: .\n    ports: [\"127.0.0.1:${PORT}:8080\"]\n"
        func calls() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func routed() -> String { (try? String(contentsOfFile: traefik, encoding: .utf8)) ?? "" }

        let a = try repo.commit("a", files: ["app.py": DemoService.app, "compose.yaml": compose])
        var result = try agent.run("deploy", arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(calls().count == 1)
        #expect(calls().first?.hasPrefix("PORT=\(blue) compose --project-name shop-blue --project-directory ") == true)
        #expect(calls().first?.hasSuffix("/compose.yaml up --detach --remove-orphans") == true, "\(calls())")
        #expect(routed().contains("url: \"http://127.0.0.1:\(blue)\""), "\(routed())")
        #expect(DemoService.get(port: blue)?.body == "ok \(a)")

        let b = try repo.commit("b")
        result = try agent.run("deploy", arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(calls().count == 3, "\(calls())")
        #expect(calls()[1].hasPrefix("PORT=\(green) compose --project-name shop-green "))
        #expect(calls()[2].hasSuffix("compose --project-name shop-blue down --remove-orphans"), "\(calls())")
        #expect(routed().contains("url: \"http://127.0.0.1:\(green)\""))
        #expect(routed().contains("rule: \"PathPrefix(`/`)\""))
        #expect(DemoService.get(port: green)?.body == "ok \(b)")
        #expect(eventually(timeout: 10) { !portAcceptsConnections(blue) }, "the old colour still runs")

        // A candidate that fails its check never gets Traefik: it is taken down, green stays.
        try repo.commit("sick", files: ["UNHEALTHY": "1"])
        result = try agent.run("deploy", arguments)
        #expect(result.status == 1)
        #expect(calls().count == 5, "\(calls())")
        #expect(calls()[3].hasPrefix("PORT=\(blue) compose --project-name shop-blue "))
        #expect(calls()[4].hasSuffix("compose --project-name shop-blue down --remove-orphans"))
        #expect(routed().contains("url: \"http://127.0.0.1:\(green)\""))
        #expect(agent.currentSHA == b)

        let c = try repo.commit("c", remove: ["UNHEALTHY"])
        result = try agent.run("deploy", arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(calls()[5].hasPrefix("PORT=\(blue) compose --project-name shop-blue "))
        #expect(calls()[6].hasSuffix("compose --project-name shop-green down --remove-orphans"))
        #expect(routed().contains("url: \"http://127.0.0.1:\(blue)\""))
        #expect(DemoService.get(port: blue)?.body == "ok \(c)")
    }
}
