import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

extension FleetSettings {
    /// The one way the fleet makes its etcd client: the endpoints, TLS and the etcd user from
    /// the settings. A file that cannot be read, or a password file that is empty, is a usage
    /// error naming the setting (exit 2), before anything is asked of etcd.
    func etcdClient(requestTimeout: Duration = .seconds(3)) throws -> EtcdClient {
        var options = EtcdClientOptions(
            caFile: caFile, certFile: certFile, keyFile: keyFile, user: user, requestTimeout: requestTimeout)
        if let passwordFile {
            var info = stat()
            guard stat(passwordFile, &info) == 0, info.st_size <= 4096 else {
                throw AgentError.usage(
                    "fleet-password-file \(passwordFile) cannot be read or is over 4 KiB; write only the etcd user's password there"
                )
            }
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw AgentError.usage(
                    "fleet-password-file \(passwordFile) cannot be read; make it readable by the agent's user (mode 0600)"
                )
            }
            // The file's trailing newline (echo > file) is not part of the password.
            var password = String(decoding: data, as: UTF8.self)
            while password.last?.isNewline == true { password.removeLast() }
            guard !password.isEmpty else {
                throw AgentError.usage(
                    "fleet-password-file \(passwordFile) is empty; write the etcd user's password there")
            }
            options.password = password
        }
        do {
            return try EtcdClient(endpoints: endpoints, options: options)
        } catch let error as EtcdError where error.kind == .accessRefused {
            throw AgentError(
                .usage, "\(error.detail); check fleet-ca-file, fleet-cert-file and fleet-key-file", cause: error)
        }
    }
}

/// An etcd error the CLI reports as it is: a refusal of who the agent is (a certificate, the
/// user, its role) is fixed by a setting, so exit 2; anything else exit 1.
extension EtcdError: OneLineFailure {
    public var message: String { "fleet: \(detail)" }
    public var exitCode: Int32 { kind == .accessRefused ? 2 : 1 }
}
