import Foundation

/// A real etcd cluster (Debian's etcd-server) of `size` members on 127.0.0.1 ports of its
/// own, data under `dir`. Members can be stopped and started again; all are killed at the end.
public final class EtcdCluster: @unchecked Sendable {
    public struct Member: Sendable {
        public let name: String
        public let clientPort: Int
        public let peerPort: Int
        public let secure: Bool
        public var clientURL: String { (secure ? "https" : "http") + "://127.0.0.1:\(clientPort)" }
    }

    public let members: [Member]
    public let dir: String
    /// With certificates: members serve https and require client certificates.
    public let pki: EtcdPKI?
    private let binary: String
    private let token = "ra-" + UUID().uuidString.prefix(8)
    private var running: [String: TestServer] = [:]
    private let lock = NSLock()

    /// The client URLs, comma-separated, as `fleet-etcd` takes them.
    public var endpoints: String { members.map(\.clientURL).joined(separator: ",") }

    public init(dir: String, size: Int = 3, pki: EtcdPKI? = nil) throws {
        binary = try TestTools.require("etcd", package: "etcd-server")
        self.dir = dir
        self.pki = pki
        members = (1...size).map {
            Member(name: "m\($0)", clientPort: freePort(), peerPort: freePort(), secure: pki != nil)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Members start together: each waits for the others to form the first quorum.
        let starts = try members.map { member in
            try ShellCommand.start(
                ["/bin/sh", "-c", "exec \"$@\" >>\"$0\" 2>&1", dir + "/\(member.name).log"]
                    + arguments(member, state: "new"))
        }
        for (member, start) in zip(members, starts) {
            running[member.name] = try TestServer(
                adopting: start, port: member.clientPort, log: dir + "/\(member.name).log")
        }
        guard waitHealthy(timeout: 60) else { throw FixtureError("etcd cluster did not become healthy: \(logs())") }
    }

    private func arguments(_ member: Member, state: String) -> [String] {
        let cluster = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        return [
            binary, "--name", member.name, "--data-dir", dir + "/" + member.name,
            "--listen-client-urls", member.clientURL, "--advertise-client-urls", member.clientURL,
            "--listen-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-cluster", cluster, "--initial-cluster-state", state, "--initial-cluster-token",
            token, "--heartbeat-interval", "50", "--election-timeout", "500",
            "--log-level", "warn",
        ]
            + (pki.map {
                [
                    "--cert-file", $0.serverCert, "--key-file", $0.serverKey, "--trusted-ca-file", $0.ca,
                    "--client-cert-auth",
                ]
            } ?? [])
    }

    /// etcdctl (API 3) against the first running member, as `root` once authentication is on.
    public func etcdctl(_ arguments: [String], user: String? = nil) throws -> CommandResult {
        let binary = try TestTools.require("etcdctl", package: "etcd-client")
        let running = lock.withLock { Set(self.running.keys) }
        let member = members.first { running.contains($0.name) } ?? members[0]
        var command = [binary, "--endpoints", member.clientURL]
        if let pki { command += ["--cacert", pki.ca, "--cert", pki.clientCert, "--key", pki.clientKey] }
        if let user { command += ["--user", user] }
        return try ShellCommand.run(
            command + arguments, environment: ProcessInfo.processInfo.environment.merging(["ETCDCTL_API": "3"]) { $1 })
    }

    public static let rootPassword = "root-secret"
    public static let agentPassword = "agent-secret"

    /// Authentication on, with the README's least-privilege role: `agent` may read and write
    /// `/release-agent/<fleet>/` and nothing else; `reader` may only read it; `norole` exists
    /// with no role at all.
    public func enableAuth(fleet: String) throws {
        let steps: [[String]] = [
            ["user", "add", "root:\(Self.rootPassword)"],
            ["user", "add", "agent:\(Self.agentPassword)"],
            ["user", "add", "norole:\(Self.agentPassword)"],
            ["role", "add", "release-agent-\(fleet)"],
            [
                "role", "grant-permission", "release-agent-\(fleet)", "--prefix=true", "readwrite",
                "/release-agent/\(fleet)/",
            ],
            ["user", "grant-role", "agent", "release-agent-\(fleet)"],
            ["user", "add", "reader:\(Self.agentPassword)"],
            ["role", "add", "release-agent-\(fleet)-read"],
            [
                "role", "grant-permission", "release-agent-\(fleet)-read", "--prefix=true", "read",
                "/release-agent/\(fleet)/",
            ],
            ["user", "grant-role", "reader", "release-agent-\(fleet)-read"],
            ["auth", "enable"],
        ]
        for step in steps {
            let result = try etcdctl(step)
            guard result.status == 0 else {
                throw FixtureError("etcdctl \(step.joined(separator: " ")): \(result.stderr)")
            }
        }
    }

    /// GET /health answers {"health":"true"} on every running member.
    public func waitHealthy(timeout: TimeInterval) -> Bool {
        eventually(timeout: timeout) {
            let names = lock.withLock { Set(running.keys) }
            return members.filter { names.contains($0.name) }.allSatisfy { member in
                guard let pki else {
                    return (try? TestHTTP.send("GET", member.clientURL + "/health", timeout: 2))?.body.contains("true")
                        == true
                }
                guard let binary = try? TestTools.require("curl", package: "curl") else { return false }
                let curl = [
                    binary, "-sS", "-m", "2", "--cacert", pki.ca, "--cert", pki.clientCert, "--key", pki.clientKey,
                ]
                return (try? ShellCommand.run(curl + [member.clientURL + "/health"], timeout: 5))?.stdout.contains(
                    "true") == true
            }
        }
    }

    public func stop(_ index: Int) {
        let server = lock.withLock { running.removeValue(forKey: members[index].name) }
        server?.stop()
    }

    public func stopAll() {
        for index in members.indices { stop(index) }
    }

    /// Starts a stopped member again with its data (it rejoins the cluster).
    public func start(_ index: Int) throws {
        let member = members[index]
        let server = try TestServer(
            arguments(member, state: "existing"), port: member.clientPort, log: dir + "/\(member.name).log")
        lock.withLock { running[member.name] = server }
    }

    public func logs() -> String {
        members.map { ((try? String(contentsOfFile: dir + "/\($0.name).log", encoding: .utf8)) ?? "").suffix(1500) }
            .joined(separator: "\n---\n")
    }

    deinit { stopAll() }
}
