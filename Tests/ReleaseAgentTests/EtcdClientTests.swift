import Foundation
import ReleaseAgentEtcd
import ReleaseAgentTestSupport
import Testing

/// The etcd client alone, against a real 3-member cluster of Debian's etcd-server.
@Suite("etcd client against a real 3-member cluster", .serialized, .enabled(if: TestTools.runnable("etcd")))
struct EtcdClientTests {
    private func client(_ cluster: EtcdCluster, ttl: Duration = .seconds(3)) throws -> EtcdClient {
        try EtcdClient(endpoints: cluster.members.map { URL(string: $0.clientURL)! }, requestTimeout: ttl)
    }

    @Test("kv, prefix range, txn compare-and-swap, leases that expire, a watch that sees a put")
    func basics() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let etcd = try client(cluster)
        let first = try etcd.put("/t/a", Data("1".utf8))
        try etcd.put("/t/b", Data("2".utf8))
        try etcd.put("/u/c", Data("3".utf8))
        let range = try etcd.range("/t/", prefix: true)
        #expect(range.kvs.map(\.key) == ["/t/a", "/t/b"])
        #expect(range.kvs.map(\.text) == ["1", "2"])
        #expect(range.kvs[0].modRevision == first)

        // Compare-and-swap: the write that read an old revision does not land; a retry of one
        // that landed finds the revision moved and changes nothing.
        let a = try #require(try etcd.get("/t/a"))
        let swapped = try etcd.txn(
            [EtcdCompare(key: "/t/a", .modRevision(a.modRevision))],
            success: [.put(key: "/t/a", value: Data("x".utf8), lease: nil)])
        #expect(swapped.succeeded)
        let retried = try etcd.txn(
            [EtcdCompare(key: "/t/a", .modRevision(a.modRevision))],
            success: [.put(key: "/t/a", value: Data("y".utf8), lease: nil)],
            failure: [.range(key: "/t/a", prefix: false)])
        #expect(!retried.succeeded)
        #expect(retried.ranges.first?.kvs.first?.text == "x")
        let created = try etcd.txn([.absent("/t/new")], success: [.put(key: "/t/new", value: Data(), lease: nil)])
        #expect(created.succeeded)
        #expect(try !etcd.txn([.absent("/t/new")], success: [.put(key: "/t/new", value: Data(), lease: nil)]).succeeded)

        // A key on a lease goes when the lease is no longer kept alive.
        let lease = try etcd.grantLease(ttl: 2)
        try etcd.put("/t/leased", Data("on lease".utf8), lease: lease)
        #expect(try etcd.keepAlive(lease) > 0)
        #expect(eventually(timeout: 10) { (try? etcd.get("/t/leased")) == .some(nil) })
        #expect(throws: EtcdError.self) { try etcd.keepAlive(lease) }

        // A watch from the current revision sees the next put under the prefix.
        let now = try etcd.range("/t/", prefix: true).revision
        let writer = try ShellCommand.start([
            "/bin/sh", "-c", "sleep 0.5; exec \"$0\" --endpoints \"$1\" put /t/watched yes >/dev/null",
            try TestTools.require("etcdctl", package: "etcd-client"), cluster.members[1].clientURL,
        ])
        let saw = try etcd.watch("/t/", prefix: true, fromRevision: now + 1, timeout: .seconds(10)) { events in
            events.contains { $0.kv.key == "/t/watched" && $0.kind == .put }
        }
        #expect(saw)
        #expect(try writer.wait(timeout: 10).status == 0)
        #expect(
            try etcd.watch("/t/", prefix: true, fromRevision: now + 10_000, timeout: .milliseconds(500)) { _ in true }
                == false)
    }

    @Test("one member down: every call goes to the others; all down: one unavailable error naming each endpoint")
    func failover() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let etcd = try client(cluster)
        try etcd.put("/f/k", Data("v".utf8))
        cluster.stop(0)
        #expect(try etcd.get("/f/k")?.text == "v")
        try etcd.put("/f/k", Data("w".utf8))
        #expect(try etcd.get("/f/k")?.text == "w")
        cluster.stopAll()
        do {
            _ = try etcd.get("/f/k")
            Issue.record("a stopped cluster answered")
        } catch let error as EtcdError {
            #expect(error.kind == .unavailable)
            for member in cluster.members { #expect(error.description.contains(member.clientURL), "\(error)") }
        }
    }
}
