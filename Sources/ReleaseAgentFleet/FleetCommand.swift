import ArgumentParser
import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `fleet status|unhalt`: the fleet's state from etcd.
public struct FleetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: CommandText.fleet,
        subcommands: [FleetStatusCommand.self, FleetUnhaltCommand.self])

    public init() {}
}

/// The fleet settings and a client, or a usage error when fleet-etcd is not set.
struct FleetConnection {
    let fleet: FleetSettings
    let etcd: EtcdClient
    let keys: FleetKeys

    init(_ options: SettingsOptions) throws {
        let settings = try options.resolve()
        guard let fleet = settings.fleet else {
            throw AgentError.usage("fleet commands need fleet-etcd and fleet (flag, variable or config file)")
        }
        self.fleet = fleet
        etcd = try EtcdClient(endpoints: fleet.endpoints, caFile: fleet.caFile)
        keys = FleetKeys(prefix: fleet.prefix)
    }

    func hosts() throws -> [HostRecord] {
        try etcd.range(keys.hosts, prefix: true).kvs.compactMap {
            try? JSONDecoder().decode(HostRecord.self, from: $0.value)
        }
        .sorted { $0.host < $1.host }
    }

    /// Rollouts, newest change first.
    func rollouts() throws -> [RolloutRecord] {
        try etcd.range(keys.rollouts, prefix: true).kvs.sorted { $0.modRevision > $1.modRevision }
            .compactMap { try? JSONDecoder().decode(RolloutRecord.self, from: $0.value) }
    }
}

struct FleetStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "A line per live host, and the newest rollout; exit 1 when it is halted.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let connection = try FleetConnection(settings)
        let hosts = try connection.hosts()
        let newest = try connection.rollouts().first
        let failing = newest?.halted != nil || hosts.contains { $0.state == "failed" }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            struct Report: Encodable {
                var fleet: String
                var hosts: [HostRecord]
                var rollout: RolloutRecord?
            }
            let data = try encoder.encode(Report(fleet: connection.fleet.name, hosts: hosts, rollout: newest))
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("fleet \(connection.fleet.name): \(hosts.count) live host(s)")
            let now = Date().timeIntervalSince1970
            for host in hosts {
                let current = host.current.map { String($0.prefix(12)) } ?? "nothing live"
                let result = host.lastResult.map { ", last: \($0.terminalSafe)" } ?? ""
                print(
                    "  \(host.host.terminalSafe)  \(current)  \(host.state)\(result)  seen \(Int(now - host.time))s ago"
                )
            }
            if let rollout = newest {
                var line = "rollout \(rollout.sha.prefix(12)): \(rollout.done.count) host(s) done"
                line += ", canaries \(rollout.canariesHealthy.count)/\(rollout.canaries.count) healthy"
                line += ", \(rollout.failed.count) failed"
                print(line)
                for (host, reason) in rollout.failed.sorted(by: { $0.key < $1.key }) {
                    print("  failed on \(host.terminalSafe): \(reason.terminalSafe)")
                }
                if let halted = rollout.halted {
                    print(
                        "  HALTED: \(halted.terminalSafe); hosts that have not activated it never will; release-agent fleet unhalt \(rollout.sha.prefix(12)) lets it go on"
                    )
                }
            } else {
                print("no rollout yet")
            }
        }
        if failing { throw ExitCode(1) }
    }
}

struct FleetUnhaltCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unhalt", abstract: "Lift a halt: the sha's failures are forgotten; hosts may activate it again.")

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "The halted sha (full id or a unique prefix of the fleet's rollouts).") var sha: String

    func run() throws {
        let connection = try FleetConnection(settings)
        let matches = try connection.rollouts().filter { $0.sha.hasPrefix(sha.lowercased()) }
        guard matches.count == 1, let rollout = matches.first else {
            throw AgentError.usage(
                matches.isEmpty
                    ? "no rollout of \(sha.terminalSafe) in fleet \(connection.fleet.name); see release-agent fleet status"
                    : "\(sha.terminalSafe) matches \(matches.count) rollouts; give more of the sha")
        }
        try connection.etcd.update(connection.keys.rollout(rollout.sha), default: { rollout }) { record in
            record.halted = nil
            record.failed = [:]
        }
        print(
            "unhalted \(rollout.sha.prefix(12)) in fleet \(connection.fleet.name); the hosts that quarantined it deploy it on their next trigger with --force, or a newer commit"
        )
    }
}
