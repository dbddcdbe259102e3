import Foundation

/// A real OpenSSH `sshd` on 127.0.0.1 with its own host key, config and authorized key, for
/// ssh remotes; `git-upload-pack` runs as the test's user. Stopped on deinit.
public final class SSHServer: @unchecked Sendable {
    public let port: Int
    public let dir: String
    /// The client key the server accepts, and a line for known_hosts naming this server.
    public let clientKey: String
    public let knownHostsLine: String
    private let running: RunningCommand

    public static var binary: String? {
        ["/usr/sbin/sshd", "/usr/bin/sshd"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public init(dir: String) throws {
        guard let sshd = Self.binary else {
            throw FixtureError("sshd is not installed (apt-get install openssh-server)")
        }
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        clientKey = dir + "/client"
        for key in [dir + "/hostkey", clientKey] { try Self.keygen(key) }
        try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: dir + "/authorized_keys")
        port = freePort()
        let hostPublic = try String(contentsOfFile: dir + "/hostkey.pub", encoding: .utf8)
        let parts = hostPublic.split(separator: " ")
        knownHostsLine = "[127.0.0.1]:\(port) \(parts[0]) \(parts[1])\n"
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(dir)/hostkey
            AuthorizedKeysFile \(dir)/authorized_keys
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            PidFile \(dir)/sshd.pid
            LogLevel ERROR

            """
        try config.write(toFile: dir + "/sshd_config", atomically: true, encoding: .utf8)
        running = try ShellCommand.start([sshd, "-D", "-e", "-f", dir + "/sshd_config"])
        let port = self.port
        guard eventually(timeout: 20, { portAcceptsConnections(port) }) else {
            kill(running.pid, SIGKILL)
            let result = try? running.wait(timeout: 5)
            throw FixtureError("sshd did not start: \(result?.stderr ?? "")")
        }
    }

    /// An ed25519 key pair without a passphrase at `path` and `path.pub`.
    public static func keygen(_ path: String) throws {
        let result = try ShellCommand.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path])
        guard result.status == 0 else { throw FixtureError("ssh-keygen failed: \(result.stderr)") }
    }

    /// `ssh://USER@127.0.0.1:PORT/path` for a repository on this machine.
    public func url(for path: String) -> String { "ssh://\(NSUserName())@127.0.0.1:\(port)\(path)" }

    deinit {
        kill(running.pid, SIGTERM)
        _ = try? running.wait(timeout: 10)
    }
}

/// Smart HTTP through `git http-backend`, behind basic auth with one accepted token. With
/// `requestLog`, every authorized request's method and path is appended to that file (what
/// the remote was asked, counted where it is asked; libgit2's first, unauthenticated, try of
/// each operation is answered 401 and not counted).
public final class GitHTTPServer: @unchecked Sendable {
    public let port: Int
    public let requestLog: String?
    private let running: RunningCommand

    public init(projectRoot: String, token: String, requestLog: String? = nil) throws {
        port = freePort()
        self.requestLog = requestLog
        running = try ShellCommand.start([
            "/usr/bin/env", "python3", "-c", Self.script, projectRoot, String(port), token, requestLog ?? "",
        ])
        let port = self.port
        guard eventually(timeout: 20, { portAcceptsConnections(port) }) else {
            kill(running.pid, SIGKILL)
            throw FixtureError("the git http-backend server did not start")
        }
    }

    /// git http-backend behind Basic authentication with `TOKEN`, each request logged to `LOG`.
    private static let script = """
        import base64, http.server, os, subprocess, sys
        ROOT, PORT, TOKEN, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self): self.cgi()
            def do_POST(self): self.cgi()
            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            def cgi(self):
                auth = self.headers.get("Authorization", "")
                given = base64.b64decode(auth[6:]).decode().split(":", 1)[-1] if auth.startswith("Basic ") else None
                data = self.body()
                if given != TOKEN:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if LOG:
                    with open(LOG, "a") as f: f.write(self.command + " " + self.path + "\\n")
                path, _, query = self.path.partition("?")
                env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                           QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER="deploy",
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(data)))
                out = subprocess.run(["git", "http-backend"], input=data, env=env, capture_output=True).stdout
                sep = b"\\r\\n\\r\\n" if b"\\r\\n\\r\\n" in out else b"\\n\\n"
                head, _, rest = out.partition(sep)
                status, headers = 200, []
                for line in head.replace(b"\\r\\n", b"\\n").split(b"\\n"):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "status": status = int(value.split()[0])
                    elif name: headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers: self.send_header(name, value)
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                self.wfile.write(rest)
            def log_message(self, *a): pass
        http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
        """

    public func url(for name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }

    /// Ref advertisements served so far (one per `ls-remote`, one per fetch).
    public var advertisements: Int {
        guard let requestLog, let text = try? String(contentsOfFile: requestLog, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { $0.hasPrefix("GET ") && $0.contains("/info/refs") }.count
    }

    deinit {
        kill(running.pid, SIGKILL)
        _ = try? running.wait(timeout: 10)
    }
}
