import Foundation

/// A real etcd cluster (Debian's etcd-server) of `size` members on 127.0.0.1 ports of its
/// own, data under `dir`. Members can be stopped and started again; all are killed at the end.
public final class EtcdCluster: @unchecked Sendable {
    public struct Member: Sendable {
        public let name: String
        public let clientPort: Int
        public let peerPort: Int
        public var clientURL: String { "http://127.0.0.1:\(clientPort)" }
    }

    public let members: [Member]
    public let dir: String
    private let binary: String
    private let token = "ra-" + UUID().uuidString.prefix(8)
    private var running: [String: TestServer] = [:]
    private let lock = NSLock()

    /// The client URLs, comma-separated, as `fleet-etcd` takes them.
    public var endpoints: String { members.map(\.clientURL).joined(separator: ",") }

    public init(dir: String, size: Int = 3) throws {
        binary = try TestTools.require("etcd", package: "etcd-server")
        self.dir = dir
        members = (1...size).map { Member(name: "m\($0)", clientPort: freePort(), peerPort: freePort()) }
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
    }

    /// GET /health answers {"health":"true"} on every running member.
    public func waitHealthy(timeout: TimeInterval) -> Bool {
        eventually(timeout: timeout) {
            let names = lock.withLock { Set(running.keys) }
            return members.filter { names.contains($0.name) }.allSatisfy { member in
                (try? TestHTTP.send("GET", member.clientURL + "/health", timeout: 2))?.body.contains("true") == true
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
