import ArgumentParser
import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

struct FleetStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "A line per live host, and the newest rollout; exit 1 when it is halted.")

    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let report = try FleetReport(FleetConnection(settings))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            report.printText()
        }
        if report.failing { throw ExitCode(1) }
    }
}

/// What `fleet status` shows, read once from etcd; `--json` prints it as it is.
struct FleetReport: Encodable {
    var fleet: String
    var hosts: [HostRecord]
    var rollout: RolloutRecord?
    var paused: FleetPause?
    var target: FleetTarget?
    var problems: [String]
    /// Hosts that took part in the newest rollout and hold no registration now: a stopped
    /// agent, a cron host between runs, a machine gone (SPEC "Fleet mode at scale").
    var unregistered: [String]

    /// Halted, a host failed, or a value that cannot be read: exit 1.
    var failing: Bool { rollout?.halted != nil || hosts.contains { $0.state == "failed" } || !problems.isEmpty }

    init(_ connection: FleetConnection) throws {
        fleet = connection.fleet.name
        let (live, unreadable) = try connection.hosts()
        hosts = live
        problems = unreadable.map { "\($0.terminalSafe) holds a value this agent cannot read" }
        do {
            rollout = try connection.rollouts().first
        } catch let failure as FleetFailure {
            problems.append(failure.reason)
        }
        let etcd = connection.etcd
        // An unreadable `paused` holds every host (fail closed): status says PAUSED too.
        paused = try etcd.get(connection.keys.paused).map {
            (try? etcd.decode(FleetPause.self, $0))
                ?? FleetPause(reason: "\($0.key) holds a value this agent cannot read", by: "?", time: 0)
        }
        let targetKV = try etcd.get(connection.keys.target)
        target = targetKV.flatMap { try? etcd.decode(FleetTarget.self, $0) }
        if let targetKV, target == nil {
            problems.append("\(targetKV.key.terminalSafe) holds a value this agent cannot read; the hosts hold")
        }
        for kv in try etcd.range(connection.keys.slots, prefix: true).kvs
        where !EtcdFleetGate.isAgentSlot(kv, prefix: connection.keys.slots) {
            problems.append(
                "\(kv.key.terminalSafe) is a slot this agent did not write; the hosts waiting for a slot hold")
        }
        let registered = Set(hosts.map(\.host))
        unregistered =
            rollout.map { rollout in
                Set(rollout.done + rollout.canaries + Array(rollout.failed.keys)).subtracting(registered).sorted()
            } ?? []
    }

    func printText() {
        print("fleet \(fleet): \(hosts.count) live host(s) (serve agents, and poll or deploy runs under way)")
        if let paused {
            print(
                "PAUSED: \(paused.reason.terminalSafe) (by \(paused.by.terminalSafe)); release-agent fleet resume lets it go on"
            )
        }
        if let target {
            print(
                "fleet rollback to \(target.sha.map { String($0.prefix(12)).terminalSafe } ?? "each host's previous release") is under way"
            )
        }
        let now = Date().timeIntervalSince1970
        for host in hosts {
            let current = host.current.map { String($0.prefix(12)).terminalSafe } ?? "nothing live"
            let result = host.lastResult.map { ", last: \($0.terminalSafe)" } ?? ""
            print("  \(host.host.terminalSafe)  \(current)  \(host.state)\(result)  seen \(Int(now - host.time))s ago")
        }
        if let rollout {
            printRollout(rollout)
        } else if problems.isEmpty {
            print("no rollout yet")
        }
        for problem in problems { print("UNREADABLE: \(problem)") }
    }

    private func printRollout(_ rollout: RolloutRecord) {
        let short = String(rollout.sha.prefix(12)).terminalSafe
        var line = "rollout \(short): \(rollout.done.count) host(s) done"
        line += ", canaries \(rollout.canariesHealthy.count)/\(rollout.canaries.count) healthy"
        line += ", \(rollout.failed.count) failed"
        print(line)
        for (host, reason) in rollout.failed.sorted(by: { $0.key < $1.key }) {
            print("  failed on \(host.terminalSafe): \(reason.terminalSafe)")
        }
        if let halted = rollout.halted {
            print(
                "  HALTED: \(halted.terminalSafe); hosts that have not activated it never will; release-agent fleet unhalt \(short) lets it go on"
            )
        }
        if !unregistered.isEmpty {
            print(
                "  no longer registered: \(unregistered.map(\.terminalSafe).joined(separator: ", ")) (their agents stopped, or are cron runs between polls)"
            )
        }
    }
}
