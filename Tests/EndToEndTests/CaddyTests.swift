import Foundation
import ReleaseAgentTestSupport
import Testing

/// An app that drains on SIGTERM: stops accepting, answers what the kernel already took
/// (the listen backlog, so nothing queued there is reset), then exits.
private let drainingApp = """
    import http.server, os, signal, threading, time
    HERE = os.path.dirname(os.path.abspath(__file__))
    PORT = int(os.environ["PORT"])
    REVISION = open(os.path.join(HERE, "REVISION")).read().strip()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.01)
            body = ("ok " + REVISION + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = False
        block_on_close = True
    server = S(("127.0.0.1", PORT), H)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever(poll_interval=0.05)
    server.socket.setblocking(False)
    while True:
        try:
            conn, addr = server.socket.accept()
        except BlockingIOError:
            break
        conn.setblocking(True)
        server.process_request(conn, addr)
    server.server_close()

    """

/// A stand-in for `systemctl`, as hooks/systemd/activate calls it (`$SYSTEMCTL restart -- UNIT`):
/// SIGTERM, wait for the app to exit, start it again from ROOT/current, the way systemd
/// restarts a unit.
private let systemctl = """
    #!/bin/sh
    set -eu
    [ "$1" = restart ] || exit 2
    run="$DEPLOY_ROOT/run"; mkdir -p "$run"
    pidfile="$run/app.pid"
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill -TERM "$pid" 2>/dev/null || true
      i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.02; i=$((i+1)); done
    fi
    cd "$DEPLOY_ROOT/current"
    PORT=$APP_PORT nohup python3 app.py >> "$run/app.log" 2>&1 &
    echo $! > "$pidfile"
    echo "restarted $3 (pid $!)"

    """

@Suite("seed: Caddy holds requests while a restart deploy switches over", .serialized)
struct CaddyTests {
    @Test(
        "10 restart deploys behind Debian's caddy with lb_try_duration, 4 clients sending GETs: 0 failed",
        .enabled(if: TestTools.runnable("caddy")))
    func restartBehindCaddy() throws {
        let caddy = try TestTools.require("caddy", package: "caddy")
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        var agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let hooks = scratch.sub("hooks")
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: packageRoot + "/hooks/systemd/activate", toPath: hooks + "/activate")
        try systemctl.write(toFile: scratch.sub("systemctl"), atomically: true, encoding: .utf8)
        chmod(scratch.sub("systemctl"), 0o755)
        let appPort = freePort()
        agent.environment["SYSTEMCTL"] = scratch.sub("systemctl")
        agent.environment["SYSTEMD_UNIT"] = "demo.service"
        agent.environment["APP_PORT"] = String(appPort)
        let arguments = [
            "--strategy", "restart", "--hooks-dir", hooks, "--health-url", "http://127.0.0.1:\(appPort)/",
            "--health-timeout", "20s",
        ]
        try repo.commit("app", files: ["app.py": drainingApp])
        let first = try agent.run("deploy", arguments)
        #expect(first.status == 0, "\(first.stderr)")
        defer { DemoService.stopAll(root: agent.root) }

        let port = freePort()
        let environment = [
            "SITE_ADDRESS": "http://127.0.0.1:\(port)", "CADDY_BIND": "127.0.0.1",
            "CADDY_ADMIN": "127.0.0.1:\(freePort())", "APP_UPSTREAM": "127.0.0.1:\(appPort)",
            "HOME": scratch.sub("caddy-home"), "XDG_DATA_HOME": scratch.sub("caddy-data"),
            "XDG_CONFIG_HOME": scratch.sub("caddy-config"), "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "",
        ]
        let server = try TestServer(
            [caddy, "run", "--config", packageRoot + "/hooks/caddy/Caddyfile", "--adapter", "caddyfile"],
            port: port, log: scratch.sub("caddy.log"), environment: environment)
        #expect(DemoService.get(port: port)?.body.hasPrefix("ok ") == true)

        let loops = try (0..<4).map { index -> LoadLoop in
            let dir = scratch.sub("loop\(index)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return try LoadLoop(port: port, directory: dir, maxSeconds: 240)
        }
        var deployed: [String] = []
        for index in 1...10 {
            let sha = try repo.commit("release \(index)", files: ["VERSION": "\(index)\n"])
            let result = try agent.run("deploy", arguments)
            #expect(result.status == 0, "deploy \(index): \(result.stderr)")
            deployed.append(sha)
        }
        let reports = try loops.map { try $0.finish() }
        let total = reports.map(\.total).reduce(0, +)
        let failed = reports.map(\.failed).reduce(0, +)
        print("caddy seed: \(deployed.count) restart deploys, \(total) GETs from 4 clients, \(failed) failed")
        #expect(failed == 0, "\(failed) of \(total) GETs failed: \(reports.flatMap(\.firstErrors).prefix(5))")
        #expect(total > 100, "the clients sent only \(total) requests")
        #expect(agent.currentSHA == deployed.last)
        #expect(DemoService.get(port: port)?.body == "ok \(deployed.last ?? "")")
        server.stop()
    }
}
