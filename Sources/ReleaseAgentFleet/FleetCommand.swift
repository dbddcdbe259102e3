import ArgumentParser
import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `fleet status|unhalt`: the fleet's state from etcd.
public struct FleetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: CommandText.fleet,
        subcommands: [
            FleetStatusCommand.self, FleetRollbackCommand.self, FleetPauseCommand.self, FleetResumeCommand.self,
            FleetUnhaltCommand.self,
        ])

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
        etcd = try fleet.etcdClient()
        keys = FleetKeys(prefix: fleet.prefix)
    }

    /// Hosts, and the keys whose value cannot be read (listed by status, never dropped).
    func hosts() throws -> ([HostRecord], [String]) {
        var unreadable: [String] = []
        let hosts = try etcd.range(keys.hosts, prefix: true).kvs.compactMap { kv -> HostRecord? in
            guard let host = try? etcd.decode(HostRecord.self, kv) else {
                unreadable.append(kv.key)
                return nil
            }
            return host
        }
        return (hosts.sorted { $0.host < $1.host }, unreadable)
    }

    /// The full id of the release `prefix` names among those the fleet knows (its rollouts,
    /// the hosts' live releases): a typo sent to every host would fail on each, one slot at
    /// a time, each with its on-failure hook; it is refused here, exit 2, nothing written.
    func knownRelease(_ prefix: String) throws -> String {
        let (hosts, _) = try self.hosts()
        // The rollouts' shas from their keys: a value that cannot be read must not lock the
        // operator out of a fleet rollback.
        let rollouts = try etcd.range(keys.rollouts, prefix: true, EtcdRangeQuery(keysOnly: true)).kvs
        let known = Set(rollouts.map { String($0.key.dropFirst(keys.rollouts.count)) } + hosts.compactMap(\.current))
        let matches = known.filter { $0.hasPrefix(prefix.lowercased()) }
        guard matches.count == 1, let sha = matches.first else {
            throw AgentError.usage(
                matches.isEmpty
                    ? "no rollout of \(prefix.terminalSafe) in fleet \(fleet.name) and no host runs it; release-agent fleet status lists the fleet's releases (one deployed outside the fleet: release-agent rollback on each host)"
                    : "\(prefix.terminalSafe) matches \(matches.count) releases of fleet \(fleet.name); give more of the sha"
            )
        }
        return sha
    }

    /// Rollouts, newest change first; a value that cannot be read is a `FleetFailure`
    /// naming its key when it is the newest (status must not skip it), else left out.
    func rollouts() throws -> [RolloutRecord] {
        let kvs = try etcd.range(keys.rollouts, prefix: true).kvs.sorted { $0.modRevision > $1.modRevision }
        if let newest = kvs.first { _ = try etcd.decode(RolloutRecord.self, newest) }
        return kvs.compactMap { try? etcd.decode(RolloutRecord.self, $0) }
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
        _ = try connection.etcd.delete(connection.keys.halt(rollout.sha))
        print(
            "unhalted \(rollout.sha.prefix(12)) in fleet \(connection.fleet.name); the hosts that quarantined it deploy it on their next trigger with --force, or a newer commit"
        )
    }
}

struct FleetRollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Every host activates SHA (default: its own previous release), fleet-max-parallel at a time.",
        discussion:
            "Hosts carry it out at their next poll (serve's poll loop, or cron); what they leave is quarantined, so the polls do not undo it. A new commit on the branch clears it."
    )

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "The release to go back to (full id or unique prefix); default: each host's previous.")
    var sha: String?

    func run() throws {
        let connection = try FleetConnection(settings)
        if let sha, sha.count < 4 || sha.count > 40 || !sha.allSatisfy(\.isHexDigit) {
            throw AgentError.usage("'\(sha.terminalSafe)' is not a commit id: give 4 to 40 hex digits")
        }
        let full = try sha.map { try connection.knownRelease($0) }
        // The branch head it holds off is filled in by the first host that sees it (this
        // command does not read the remote): a head pushed during a pause is held off too.
        let target = FleetTarget(sha: full, head: nil)
        try connection.etcd.put(connection.keys.target, try JSONEncoder().encode(target))
        let what = full.map { "activate \($0.prefix(12))" } ?? "roll back to its previous release"
        print(
            "fleet \(connection.fleet.name): every host will \(what) at its next poll, fleet-max-parallel at a time; release-agent fleet status shows them"
        )
    }
}

struct FleetPauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "No host activates until fleet resume (builds still happen).")

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Why, shown by fleet status and each host's status.") var reason = "paused by an operator"

    func run() throws {
        let connection = try FleetConnection(settings)
        let pause = FleetPause(reason: reason, by: NSUserName(), time: Date().timeIntervalSince1970)
        try connection.etcd.put(connection.keys.paused, try JSONEncoder().encode(pause))
        print("fleet \(connection.fleet.name) paused: \(reason.terminalSafe); release-agent fleet resume lets it go on")
    }
}

struct FleetResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Lift fleet pause: the hosts activate at their next trigger.")

    @OptionGroup var settings: SettingsOptions

    func run() throws {
        let connection = try FleetConnection(settings)
        try connection.etcd.delete(connection.keys.paused)
        print("fleet \(connection.fleet.name) resumed")
    }
}
