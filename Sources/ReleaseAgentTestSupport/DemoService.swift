import Foundation

/// A tiny HTTP service for strategy tests, and hooks that start and stop it.
/// It answers /health with 503 when the release holds a file named UNHEALTHY.
public enum DemoService {
    public static let app = """
        import http.server, os
        HERE = os.path.dirname(os.path.abspath(__file__))
        PORT = int(os.environ["PORT"])
        def revision():
            with open(os.path.join(HERE, "REVISION")) as f:
                return f.read().strip()
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                bad = self.path == "/health" and os.path.exists(os.path.join(HERE, "UNHEALTHY"))
                body = ("unhealthy " if bad else "ok ") + revision() + "\\n"
                self.send_response(503 if bad else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())
            def log_message(self, *args):
                pass
        http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()

        """

    /// `start PORT`: stops whatever this demo runs on PORT, then starts the release's app there.
    /// `stop PORT`: stops it. Pid files live in $DEPLOY_ROOT/run/.
    public static let control = """
        #!/bin/sh
        set -eu
        action=$1; port=$2
        run="$DEPLOY_ROOT/run"; mkdir -p "$run"
        pidfile="$run/app-$port.pid"
        if [ -f "$pidfile" ]; then
          pid=$(cat "$pidfile")
          kill "$pid" 2>/dev/null || true
          i=0
          while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
          rm -f "$pidfile"
        fi
        if [ "$action" = start ]; then
          PORT=$port nohup python3 "$RELEASE_DIR/app.py" >> "$run/app-$port.log" 2>&1 &
          echo $! > "$pidfile"
        fi

        """

    /// Writes hooks into `dir`: restart (`activate` restarts on `port`) or blue-green
    /// (`start`/`stop` on the slot, `activate` records the live port in $DEPLOY_ROOT/upstream).
    public static func writeHooks(into dir: String, restartPort: Int?) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var hooks = ["control": control]
        if let port = restartPort {
            hooks["activate"] = "#!/bin/sh\nexec \"$(dirname \"$0\")/control\" start \(port)\n"
        } else {
            hooks["start"] = "#!/bin/sh\nexec \"$(dirname \"$0\")/control\" start \"$RELEASE_PORT\"\n"
            hooks["stop"] = "#!/bin/sh\nexec \"$(dirname \"$0\")/control\" stop \"$STOP_PORT\"\n"
            hooks["activate"] =
                "#!/bin/sh\necho \"$RELEASE_PORT\" > \"$DEPLOY_ROOT/upstream.tmp\" && mv \"$DEPLOY_ROOT/upstream.tmp\" \"$DEPLOY_ROOT/upstream\"\n"
        }
        for (name, text) in hooks {
            let path = dir + "/" + name
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    /// Stops every app the hooks started under `root`.
    public static func stopAll(root: String) {
        let run = root + "/run"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: run)) ?? [] where name.hasSuffix(".pid") {
            if let text = try? String(contentsOfFile: run + "/" + name, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(pid, SIGKILL)
            }
        }
    }

    /// GET http://127.0.0.1:port/path with curl-free plain sockets is overkill here: use python.
    public static func get(port: Int, path: String = "/") -> (status: Int, body: String)? {
        let script = """
            import sys, urllib.request, urllib.error
            try:
                r = urllib.request.urlopen("http://127.0.0.1:\(port)\(path)", timeout=5)
                print(r.status); print(r.read().decode().strip())
            except urllib.error.HTTPError as e:
                print(e.code); print(e.read().decode().strip())
            except Exception as e:
                print(0); print(e)
            """
        guard let result = try? ShellCommand.run(["/usr/bin/env", "python3", "-c", script], timeout: 20) else {
            return nil
        }
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let status = lines.first.flatMap({ Int($0) }) else { return nil }
        return (status, lines.dropFirst().joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1, never handed out before in this
/// process. It comes from below the kernel's ephemeral range (32768-60999 here): a port the
/// kernel picked (bind to port 0) can be taken by any outgoing connection before the server
/// that was meant to have it binds. A CI run lost an etcd member that way ("bind: address
/// already in use"), so the ports come from a range outgoing connections never use.
public func freePort() -> Int {
    LocalProcesses.reservePorts(1)
}

/// True when something accepts connections on 127.0.0.1:port.
public func portAcceptsConnections(_ port: Int) -> Bool {
    guard let fd = try? RawHTTP.connect(port: port, timeout: 5) else { return false }
    close(fd)
    return true
}

/// A socket listening on a free 127.0.0.1 port, closed on deinit: a `health-tcp` target that
/// passes (the kernel completes the handshake from the backlog; nothing needs to accept).
public final class TCPListener: @unchecked Sendable {
    public let port: Int
    private let fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw FixtureError("cannot listen on 127.0.0.1: \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
