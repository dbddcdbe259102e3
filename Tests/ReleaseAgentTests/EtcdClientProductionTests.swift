import Foundation
import ReleaseAgentEtcd
import ReleaseAgentTestSupport
import Testing

/// The etcd client against a production-like cluster: TLS with client certificates
/// (`--client-cert-auth`), authentication on, a least-privilege role. Every refusal is
/// `accessRefused` with the cause named; a token lost by a restart of the cluster is renewed.
@Suite(
    "etcd client on a production cluster: TLS, client certificates, users and roles", .serialized,
    .enabled(if: TestTools.runnable("etcd", "etcdctl", "openssl", "curl")))
struct EtcdClientProductionTests {
    private func client(_ cluster: EtcdCluster, _ options: EtcdClientOptions) throws -> EtcdClient {
        try EtcdClient(endpoints: cluster.members.map { URL(string: $0.clientURL)! }, options: options)
    }

    private func agent(_ pki: EtcdPKI, user: String? = "agent", password: String? = EtcdCluster.agentPassword)
        -> EtcdClientOptions
    {
        EtcdClientOptions(
            caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey, user: user, password: password)
    }

    /// The refusal of one call, or a recorded issue when the call went through.
    private func refusal(_ body: () throws -> Void) -> EtcdError? {
        do {
            try body()
            Issue.record("the call was not refused")
            return nil
        } catch let error as EtcdError {
            return error
        } catch {
            Issue.record("not an EtcdError: \(error)")
            return nil
        }
    }

    @Test(
        "the agent's user works on the fleet's prefix over mutual TLS, watches too; the token survives a restart of every member"
    )
    func works() throws {
        let scratch = Scratch()
        let pki = try EtcdPKI(dir: scratch.sub("pki"))
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"), pki: pki)
        try cluster.enableAuth(fleet: "shop")
        let etcd = try client(cluster, agent(pki))
        try etcd.put("/release-agent/shop/a", Data("1".utf8))
        #expect(try etcd.get("/release-agent/shop/a")?.text == "1")
        let lease = try etcd.grantLease(ttl: 5)
        #expect(try etcd.keepAlive(lease) > 0)
        let now = try etcd.range("/release-agent/shop/", prefix: true).revision
        try etcd.put("/release-agent/shop/b", Data("2".utf8))
        #expect(
            try etcd.watch("/release-agent/shop/", prefix: true, fromRevision: now + 1, timeout: .seconds(10)) {
                $0.contains { $0.kv.key == "/release-agent/shop/b" }
            })

        // Simple tokens live in the members' memory: a restart of all of them loses every
        // token, and the client authenticates again once and goes on.
        for index in cluster.members.indices { cluster.stop(index) }
        for index in cluster.members.indices { try cluster.start(index) }
        #expect(cluster.waitHealthy(timeout: 60))
        #expect(eventually(timeout: 30) { (try? etcd.get("/release-agent/shop/a"))??.text == "1" })
        try etcd.put("/release-agent/shop/a", Data("3".utf8))
        #expect(try etcd.get("/release-agent/shop/a")?.text == "3")
    }

    @Test(
        "a wrong CA, no client certificate, a stranger's certificate, a named one, a wrong password, no user, no role: each refused with its cause"
    )
    func refusals() throws {
        let scratch = Scratch()
        let pki = try EtcdPKI(dir: scratch.sub("pki"))
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"), pki: pki)
        try cluster.enableAuth(fleet: "shop")
        let key = "/release-agent/shop/k"
        var cases: [(String, EtcdClientOptions, String)] = []
        var wrongCA = agent(pki)
        wrongCA.caFile = pki.otherCA
        cases.append(("wrong CA", wrongCA, "is not signed by the CA in \(pki.otherCA)"))
        var noCert = agent(pki)
        noCert.certFile = nil
        noCert.keyFile = nil
        cases.append(("no client certificate", noCert, "without a client certificate"))
        var stranger = agent(pki)
        stranger.certFile = pki.strangerCert
        stranger.keyFile = pki.strangerKey
        cases.append(("stranger's certificate", stranger, "refused the client certificate \(pki.strangerCert)"))
        var named = agent(pki)
        named.certFile = pki.namedClientCert
        named.keyFile = pki.namedClientKey
        cases.append(("certificate with a CN", named, "Common Name"))
        cases.append(("wrong password", agent(pki, password: "not-it"), "wrong password"))
        cases.append(("no user", agent(pki, user: nil, password: nil), "set fleet-user and fleet-password-file"))
        cases.append(("no role", agent(pki, user: "norole"), "permission denied"))
        for (name, options, cause) in cases {
            let etcd = try client(cluster, options)
            let error = refusal { _ = try etcd.get(key) }
            #expect(error?.kind == .accessRefused, "\(name): \(String(describing: error))")
            #expect(error?.detail.contains(cause) == true, "\(name): \(error?.detail ?? "")")
            #expect(error?.detail.contains("\n") == false, "\(name): one line")
        }
        // A key of another certificate is refused when the client is made, naming the file.
        #expect(throws: EtcdError.self) {
            _ = try EtcdClient(
                endpoints: [URL(string: cluster.members[0].clientURL)!],
                options: EtcdClientOptions(caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.strangerKey))
        }
    }
}
