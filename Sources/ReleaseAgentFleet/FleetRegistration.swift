import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `hosts/<host-id>` on a lease: who this host is. A registration of this host-id left from
/// this root on this machine by a process that is gone (a crash, kill -9, a restart) is taken
/// over at once, so a systemd restart after a crash does not exit 2 until the old lease
/// expires; one from another machine or root, or whose process still runs, is a twin (exit 2).
struct FleetRegistration {
    let etcd: EtcdClient
    let keys: FleetKeys
    let fleet: FleetSettings
    let layout: Layout

    func record(state: String, sha: String?, current: String?, result: String? = nil) -> HostRecord {
        var record = HostRecord(host: fleet.hostID, current: current, state: state, sha: sha)
        record.lastResult = result
        record.machine = Self.machine
        record.root = layout.root
        record.pid = getpid()
        return record
    }

    /// Claims or updates the key on `lease`.
    func put(_ record: HostRecord, lease: Int64) throws {
        let key = keys.host(fleet.hostID)
        let data = try JSONEncoder().encode(record)
        for _ in 0..<5 {
            let answer = try etcd.txn(
                [.absent(key)], success: [.put(key: key, value: data, lease: lease)],
                failure: [.range(key: key, prefix: false)])
            if answer.succeeded { return }
            // Gone between the compare and the read: claim it again.
            guard let holder = answer.ranges.first?.kvs.first else { continue }
            guard holder.lease != lease else {
                let updated = try etcd.txn(
                    [EtcdCompare(key: key, .modRevision(holder.modRevision))],
                    success: [.put(key: key, value: data, lease: lease)])
                if updated.succeeded { return }
                continue
            }
            let old = try? JSONDecoder().decode(HostRecord.self, from: holder.value)
            if let old, let pid = old.pid, isOwnLive(old) {
                // Not a twin: another run on this root (a cron `poll` still waiting in line when
                // the next one starts). Busy, like the lock: `poll` exits 0, `deploy` 75.
                throw AgentError(
                    .busy,
                    "another release-agent run on this root (pid \(pid)) is in fleet '\(fleet.name)' for host-id '\(fleet.hostID)'; this run stops (it goes on by itself)"
                )
            }
            guard let old, isOwnStale(old) else {
                let holderText =
                    old.map { " (pid \($0.pid.map(String.init) ?? "?") under \(($0.root ?? "?").terminalSafe))" } ?? ""
                throw AgentError.usage(
                    "host-id '\(fleet.hostID)' is registered by another live agent in fleet '\(fleet.name)' (\(key)\(holderText)); give each host its own host-id"
                )
            }
            let taken = try etcd.txn(
                [EtcdCompare(key: key, .modRevision(holder.modRevision))],
                success: [.put(key: key, value: data, lease: lease)])
            if taken.succeeded { return }
        }
        throw FleetFailure("\(key) kept changing while this host registered; try again")
    }

    /// Held by another process of this host-id from this root on this machine, still running.
    private func isOwnLive(_ old: HostRecord) -> Bool {
        guard old.machine == Self.machine, old.root == layout.root, let pid = old.pid, pid != getpid() else {
            return false
        }
        return Self.isAgentRunning(pid)
    }

    /// Left by this host-id from this root on this machine, by a process that is gone.
    private func isOwnStale(_ old: HostRecord) -> Bool {
        guard old.machine == Self.machine, old.root == layout.root, let pid = old.pid else { return false }
        return pid == getpid() || !Self.isAgentRunning(pid)
    }

    /// The pid names a running release-agent (a reused pid of another program does not count).
    static func isAgentRunning(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        return String(decoding: cmdline, as: UTF8.self).contains("release-agent")
    }

    /// This machine: systemd's machine id, else the boot id, else the host name.
    static let machine: String = {
        for path in ["/etc/machine-id", "/proc/sys/kernel/random/boot_id"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty { return id }
            }
        }
        return ProcessInfo.processInfo.hostName
    }()
}
