import Foundation
import ReleaseAgentTestSupport
import Testing

/// Fleet mode on a production-like etcd: members on TLS with `--client-cert-auth`,
/// authentication on, and the README's least-privilege role on `/release-agent/shop/`.
@Suite(
    "fleet on a production etcd: mutual TLS, users, the least-privilege role", .serialized,
    .enabled(if: TestTools.runnable("etcd", "etcdctl", "openssl", "curl")))
struct FleetProductionTests {
    @Test(
        "agents deploy and serve through it; a wrong CA, no client certificate, a named one, a wrong password and a user without the role each exit 2 naming the fix, current untouched"
    )
    func productionCluster() throws {
        let scratch = Scratch()
        let pki = try EtcdPKI(dir: scratch.sub("pki"))
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"), pki: pki)
        try cluster.enableAuth(fleet: "shop")
        let password = scratch.sub("password")
        // As `echo secret > file` writes it: the newline is not part of the password.
        try (EtcdCluster.agentPassword + "\n").write(toFile: password, atomically: true, encoding: .utf8)
        chmod(password, 0o600)
        let wrongPassword = scratch.sub("wrong-password")
        try "not-it\n".write(toFile: wrongPassword, atomically: true, encoding: .utf8)
        let access = [
            "--fleet-ca-file", pki.ca, "--fleet-cert-file", pki.clientCert, "--fleet-key-file", pki.clientKey,
            "--fleet-user", "agent", "--fleet-password-file", password,
        ]
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...2).map {
            try Host("p\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log, extra: access)
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        for host in hosts {
            let result = try host.deploy().wait(timeout: 120)
            #expect(result.status == 0, "\(host.id): \(result.stderr)")
            #expect(host.agent.currentSHA == a)
        }
        let status = try hosts[0].fleet("status")
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("rollout \(a.prefix(12)): 2 host(s) done"), "\(status.stdout)")
        let keys = try cluster.etcdctl(
            ["get", "--prefix", "--keys-only", "/release-agent/shop/"], user: "root:\(EtcdCluster.rootPassword)")
        #expect(keys.stdout.contains("/release-agent/shop/rollouts/\(a)"), "\(keys.stdout) \(keys.stderr)")

        // Each wrong setting: exit 2, one line naming the setting to fix; nothing deployed.
        let b = try repo.commit("b")
        func replacing(_ name: String, with value: String?) -> [String] {
            var arguments = hosts[0].arguments
            guard let index = arguments.firstIndex(of: name) else { return arguments }
            if let value {
                arguments[index + 1] = value
            } else {
                arguments.removeSubrange(index...(index + 1))
            }
            return arguments
        }
        var cases: [(String, [String], String)] = [
            ("wrong CA", replacing("--fleet-ca-file", with: pki.otherCA), "fleet-ca-file"),
            ("wrong password", replacing("--fleet-password-file", with: wrongPassword), "fleet-password-file"),
            ("no role", replacing("--fleet-user", with: "norole"), "grant its role readwrite"),
            ("a read-only role", replacing("--fleet-user", with: "reader"), "grant its role readwrite"),
            (
                "a certificate with a CN",
                replacing("--fleet-cert-file", with: pki.namedClientCert).map {
                    $0 == pki.clientKey ? pki.namedClientKey : $0
                },
                "Common Name"
            ),
        ]
        var noCertificate = replacing("--fleet-cert-file", with: nil)
        if let index = noCertificate.firstIndex(of: "--fleet-key-file") {
            noCertificate.removeSubrange(index...(index + 1))
        }
        cases.append(("no client certificate", noCertificate, "fleet-cert-file"))
        for (name, arguments, fix) in cases {
            let result = try hosts[0].agent.run("deploy", arguments)
            #expect(result.status == 2, "\(name): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
            #expect(lines.count == 1, "\(name): \(result.stderr)")
            #expect(result.stderr.contains(fix), "\(name): \(result.stderr)")
            #expect(hosts[0].agent.currentSHA == a, "\(name)")
            let fleetStatus = try hosts[0].agent.run("fleet status", arguments)
            // fleet status only reads: a read-only role may run it.
            #expect(
                fleetStatus.status == (name == "a read-only role" ? 0 : 2),
                "\(name) fleet status: \(fleetStatus.stderr)")
        }
        #expect(!hosts[0].agent.releaseDirs().contains(b))

        // serve through the same cluster: it registers, and a push rolls out.
        let serve = try hosts[1].serve(pollInterval: "1s")
        #expect(eventually(timeout: 120) { hosts[1].agent.currentSHA == b }, "\(serve.running.stderrSoFar)")
        let stopped = try serve.stop()
        #expect(stopped.status == 0, "\(stopped.stderr)")
    }
}
