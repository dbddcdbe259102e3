import Foundation

/// A private nginx on 127.0.0.1 with its own prefix and config (never the system service),
/// proxying to `upstream app`, which the sample hooks rewrite.
public final class PrivateNginx: @unchecked Sendable {
    public let prefix: String
    public let port: Int
    public let binary: String

    public static var binaryPath: String? {
        ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    public var upstreamFile: String { prefix + "/upstream.conf" }
    public var arguments: [String] { ["-p", prefix, "-c", prefix + "/nginx.conf", "-e", prefix + "/error.log"] }

    public init(prefix: String, port: Int, initialUpstreamPort: Int) throws {
        guard let binary = PrivateNginx.binaryPath else { throw FixtureError("nginx is not installed") }
        self.binary = binary
        self.prefix = prefix
        self.port = port
        try FileManager.default.createDirectory(atPath: prefix + "/tmp", withIntermediateDirectories: true)
        let config = """
            worker_processes 1;
            pid \(prefix)/nginx.pid;
            daemon on;
            events { worker_connections 512; }
            http {
                access_log off;
                client_body_temp_path \(prefix)/tmp/body;
                proxy_temp_path \(prefix)/tmp/proxy;
                fastcgi_temp_path \(prefix)/tmp/fastcgi;
                uwsgi_temp_path \(prefix)/tmp/uwsgi;
                scgi_temp_path \(prefix)/tmp/scgi;
                include \(upstreamFile);
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://app;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }
                }
            }

            """
        try config.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
        try "upstream app {\n    server 127.0.0.1:\(initialUpstreamPort);\n}\n".write(
            toFile: upstreamFile, atomically: true, encoding: .utf8)
        let result = try ShellCommand.run([binary] + arguments, timeout: 30)
        guard result.status == 0 else { throw FixtureError("nginx did not start: \(result.stderr)") }
    }

    /// The environment the sample nginx hooks read.
    public var hookEnvironment: [String: String] {
        [
            "NGINX_UPSTREAM_FILE": upstreamFile, "NGINX_BIN": binary,
            "NGINX_ARGS": arguments.joined(separator: " "),
        ]
    }

    public func stop() {
        _ = try? ShellCommand.run([binary] + arguments + ["-s", "stop"], timeout: 30)
    }

    deinit { stop() }
}

/// A client that sends requests nonstop until told to stop, bounded in count and time,
/// and reports how many failed.
public final class LoadLoop: @unchecked Sendable {
    public struct Report: Sendable {
        public var total: Int
        public var failed: Int
        public var firstErrors: [String]
    }

    private let running: RunningCommand
    private let stopFile: String
    private let reportFile: String

    static let script = """
        import http.client, json, os, sys, time
        port, stop_file, report_file, max_requests, max_seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        total = failed = 0
        errors = []
        deadline = time.time() + max_seconds
        while total < max_requests and time.time() < deadline and not os.path.exists(stop_file):
            total += 1
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/")
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status != 200 or not body.startswith(b"ok "):
                    failed += 1
                    if len(errors) < 10: errors.append("HTTP %d %r" % (r.status, body[:80]))
            except Exception as e:
                failed += 1
                if len(errors) < 10: errors.append(repr(e))
        with open(report_file + ".tmp", "w") as f:
            json.dump({"total": total, "failed": failed, "errors": errors}, f)
        os.rename(report_file + ".tmp", report_file)

        """

    public init(port: Int, directory: String, maxRequests: Int = 500_000, maxSeconds: Int = 300) throws {
        stopFile = directory + "/loop.stop"
        reportFile = directory + "/loop.json"
        running = try ShellCommand.start([
            "/usr/bin/env", "python3", "-c", LoadLoop.script, String(port), stopFile, reportFile,
            String(maxRequests), String(maxSeconds),
        ])
    }

    public func finish() throws -> Report {
        FileManager.default.createFile(atPath: stopFile, contents: nil)
        let result = try running.wait(timeout: 60)
        guard result.status == 0, let data = FileManager.default.contents(atPath: reportFile),
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw FixtureError("the load loop failed: \(result.stderr)") }
        return Report(
            total: object["total"] as? Int ?? 0, failed: object["failed"] as? Int ?? -1,
            firstErrors: object["errors"] as? [String] ?? [])
    }
}

/// The package's own folder (for the sample hooks under `hooks/`).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
