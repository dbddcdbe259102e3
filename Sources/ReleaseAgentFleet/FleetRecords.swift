import Foundation
import ReleaseAgent
import ReleaseAgentEtcd

/// `rollouts/<sha>`: one sha's rollout, changed only by compare-and-swap transactions.
public struct RolloutRecord: Codable, Sendable, Equatable {
    public var sha: String
    /// Canary seats claimed (the first hosts to ask, or the listed ids).
    public var canaries: [String] = []
    /// Canaries that reported the sha healthy, with when.
    public var canariesHealthy: [String: Double] = [:]
    public var done: [String] = []
    public var failed: [String: String] = [:]
    public var halted: String?
    public var time = Date().timeIntervalSince1970

    public init(sha: String) { self.sha = sha }
}

/// `hosts/<host-id>`, on the host's lease.
public struct HostRecord: Codable, Sendable, Equatable {
    public var host: String
    public var current: String?
    /// idle, waiting, activating, failed.
    public var state: String
    public var sha: String?
    public var lastResult: String?
    public var version = ReleaseAgentVersion.string
    public var time = Date().timeIntervalSince1970
    /// Who wrote it: a restarted agent takes over a registration of its own host-id left by
    /// its dead process (same machine, same root), and refuses any other (a twin).
    public var machine: String?
    public var root: String?
    public var pid: Int32?
}

/// `head`: the branch head as the last host that read the remote saw it. Only a hint: a host
/// that sees it move fetches the branch and deploys what the branch holds, never this sha.
public struct FleetHead: Codable, Sendable, Equatable {
    public var sha: String
    public var time: Double
    public var by: String
}

/// `poll/<n>`: the host that claimed poll interval n.
struct FleetPollClaim: Codable, Sendable, Equatable {
    var by: String
    var time: Double
    /// Put by a cron poll's claimer when the remote's head is the published one: the interval
    /// is checked, the others take `head` without asking the remote (nil: not yet, or serve's).
    var checked: String? = nil
}

/// `paused`: set by `fleet pause`; no host activates while it is there.
public struct FleetPause: Codable, Sendable, Equatable {
    public var reason: String
    public var by: String
    public var time: Double
}

/// The fleet's keys under `/release-agent/<fleet>/`.
struct FleetKeys {
    let prefix: String

    var hosts: String { prefix + "hosts/" }
    var slots: String { prefix + "slots/" }
    var rollouts: String { prefix + "rollouts/" }
    func host(_ id: String) -> String { hosts + id }
    func slot(_ id: String) -> String { slots + id }
    func rollout(_ sha: String) -> String { rollouts + sha }
    /// `halts/<sha>`: put when the rollout is halted, deleted by `fleet unhalt`; the reason is
    /// the rollout's `halted`. The hosts in line watch this small key, not the rollout, which
    /// changes with every host's result (1,000 waiters watching it were sent each result).
    func halt(_ sha: String) -> String { prefix + "halts/" + sha }
    var target: String { prefix + "target" }
    /// The branch head the fleet last read from the remote (`FleetHead`).
    var head: String { prefix + "head" }
    /// `poll/<n>`: who asks the remote in poll interval n; n is zero-padded so the keys sort
    /// by number and older claims are one range to delete.
    var polls: String { prefix + "poll/" }
    func poll(_ n: Int64) -> String { polls + String(repeating: "0", count: max(0, 20 - String(n).count)) + String(n) }
    var paused: String { prefix + "paused" }
    /// Never written: deleting it (a no-op) proves the user may write the fleet's keys.
    func accessCheck(_ id: String) -> String { prefix + "access-check/" + id }
}

/// What the agent read from etcd is input: a value it did not write fails closed, naming
/// the key (a hold recorded as a fleet failure), never "no rollout" or "not paused".
func unreadable(_ key: String, _ why: String) -> FleetFailure {
    FleetFailure(
        "\(key.terminalSafe) holds \(why); fix it or delete it with etcdctl (release-agent fleet status shows the fleet)"
    )
}

extension EtcdClient {
    /// A JSON value and the revision to compare against (0: absent). A value this version
    /// cannot decode, or a huge one, is a `FleetFailure` naming the key.
    func read<T: Decodable>(_ type: T.Type, _ key: String) throws -> (T?, Int64) {
        guard let kv = try get(key) else { return (nil, 0) }
        return (try decode(T.self, kv), kv.modRevision)
    }

    /// The commit `head` names; nil for a value that is not a published head.
    func publishedHead(_ kv: EtcdKeyValue) -> CommitID? {
        (try? decode(FleetHead.self, kv)).flatMap { CommitID(hex: $0.sha) }
    }

    /// Puts `head` as the fleet's, read from the remote by `host`; an error names the next try.
    /// With `unchangedSince` (the mod revision `head` had when read; 0: absent), only if no
    /// other host put it since: a slow reading never overwrites a newer one.
    func publish(head: CommitID, keys: FleetKeys, by host: String, unchangedSince: Int64? = nil) throws {
        do {
            let value = try JSONEncoder().encode(FleetHead(sha: head.hex, time: Date().timeIntervalSince1970, by: host))
            if let unchangedSince {
                _ = try txn(
                    [EtcdCompare(key: keys.head, .modRevision(unchangedSince))],
                    success: [.put(key: keys.head, value: value, lease: nil)])
            } else {
                _ = try put(keys.head, value)
            }
        } catch {
            throw AgentError.environment(
                "could not publish the head \(head.short) to the fleet (\(error)); the next poll does")
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ kv: EtcdKeyValue) throws -> T {
        guard kv.value.count <= 1_048_576 else { throw unreadable(kv.key, "a value of \(kv.value.count) bytes") }
        do {
            return try JSONDecoder().decode(T.self, from: kv.value)
        } catch {
            throw unreadable(kv.key, "a value this agent cannot read (not what release-agent writes)")
        }
    }

    /// Read, change, write back if nobody wrote in between; else read again (bounded). A
    /// write that timed out but landed is seen on the re-read, so it is not applied twice. A
    /// value that cannot be read is never overwritten: the update fails closed. A change that
    /// changes nothing writes nothing.
    /// (Measured with bench/fleet-sim.sh: 200 hosts asking at once, each writing an unchanged
    /// rollout, spent their 50 attempts in under a second and 80 failed. A random backoff
    /// between attempts instead made 1,000 hosts' rollout at K = 50 five times slower.)
    @discardableResult
    func update<T: Codable & Equatable>(
        _ key: String, default make: () -> T, _ change: (inout T) -> Void
    ) throws -> T {
        for _ in 0..<50 {
            let (old, revision) = try read(T.self, key)
            var value = old ?? make()
            change(&value)
            if let old, old == value { return value }
            let data = try JSONEncoder().encode(value)
            let compare = revision == 0 ? EtcdCompare.absent(key) : EtcdCompare(key: key, .modRevision(revision))
            if try txn([compare], success: [.put(key: key, value: data, lease: nil)]).succeeded { return value }
        }
        throw EtcdError(.unavailable, "\(key) kept changing under 50 compare-and-swap attempts; try again")
    }
}

extension EtcdFleetGate {
    /// A slot key as the agent writes it: `slots/<host-id>`, the host id as its value, on a lease.
    static func isAgentSlot(_ kv: EtcdKeyValue, prefix: String) -> Bool {
        kv.lease != 0 && kv.key.hasPrefix(prefix) && kv.text == String(kv.key.dropFirst(prefix.count))
    }
}
