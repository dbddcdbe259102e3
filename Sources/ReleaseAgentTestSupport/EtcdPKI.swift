import Foundation

/// Certificates for a production-like etcd, made with `openssl` as the README's recipe does:
/// a CA, a member certificate for 127.0.0.1, a client certificate without a Common Name (etcd
/// 3.4's gateway refuses one with a CN when authentication is on), one with a CN, and a
/// second CA that signed nothing the cluster knows.
public struct EtcdPKI: Sendable {
    public let dir: String
    public var ca: String { dir + "/ca.crt" }
    public var serverCert: String { dir + "/member.crt" }
    public var serverKey: String { dir + "/member.key" }
    public var clientCert: String { dir + "/agent.crt" }
    public var clientKey: String { dir + "/agent.key" }
    /// A client certificate with CN=agent.
    public var namedClientCert: String { dir + "/named.crt" }
    public var namedClientKey: String { dir + "/named.key" }
    /// A client certificate signed by `otherCA`: the cluster does not trust it.
    public var strangerCert: String { dir + "/stranger.crt" }
    public var strangerKey: String { dir + "/stranger.key" }
    public var otherCA: String { dir + "/other-ca.crt" }

    public init(dir: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ca(name: "ca", subject: "/CN=release-agent test etcd CA")
        try ca(name: "other-ca", subject: "/CN=someone else's CA")
        try issue(
            "member", subject: "/CN=etcd member", by: "ca",
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        try issue("agent", subject: "/O=release-agent", by: "ca", extensions: "extendedKeyUsage=clientAuth\n")
        try issue("named", subject: "/CN=agent", by: "ca", extensions: "extendedKeyUsage=clientAuth\n")
        try issue("stranger", subject: "/O=release-agent", by: "other-ca", extensions: "extendedKeyUsage=clientAuth\n")
    }

    private func openssl(_ arguments: [String]) throws {
        let binary = try TestTools.require("openssl", package: "openssl")
        let result = try ShellCommand.run([binary] + arguments, directory: dir)
        guard result.status == 0 else {
            throw FixtureError("openssl \(arguments.first ?? "") failed: \(result.stderr)")
        }
    }

    private func ca(name: String, subject: String) throws {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key",
            "-out", "\(name).crt", "-days", "2", "-subj", subject,
        ])
    }

    private func issue(_ name: String, subject: String, by ca: String, extensions: String) throws {
        try extensions.write(toFile: dir + "/\(name).ext", atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key", "-out",
            "\(name).csr", "-subj", subject,
        ])
        try openssl([
            "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).crt", "-CAkey", "\(ca).key", "-CAcreateserial", "-out",
            "\(name).crt", "-days", "2", "-extfile", "\(name).ext",
        ])
    }
}
