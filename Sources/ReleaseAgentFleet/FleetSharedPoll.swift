import Foundation
import ReleaseAgent
import ReleaseAgentEtcd
import Synchronization

/// A cron `poll` in fleet mode shares the poll interval with every host, as `serve` does
/// (SPEC, "Fleet mode at scale"): the first host to claim `poll/<n>` asks the remote and
/// publishes `head`; the others take the head it published. Without this, each host's cron
/// asked the remote every minute.
extension EtcdFleetGate {
    /// When the head is the published one (claimed: this host publishes what it reads), the
    /// waits that follow read it from etcd to see a newer commit; with `.ask` they ask.
    public func sharedPoll(every interval: Duration) -> SharedPollTurn {
        let turn = takeTurn(every: interval)
        followsPublishedHead = turn != .ask
        return turn
    }

    private func takeTurn(every interval: Duration) -> SharedPollTurn {
        guard interval > .zero else { return .ask }
        let n = Int64(Date().timeIntervalSince1970 / interval.seconds)
        let key = keys.poll(n)
        do {
            let answer = try etcd.txn(
                [.absent(key)], success: try FleetPollClaim.claim(n, keys: keys, host: fleet.hostID),
                failure: [.range(key: key, prefix: false), .range(key: keys.head, prefix: false)])
            if answer.succeeded {
                return .claimed(published: answer.ranges.last?.kvs.first.flatMap(etcd.publishedHead)?.hex)
            }
            // Another host claimed this interval: the head it publishes after its claim.
            let claimed = answer.ranges.first?.kvs.first?.createRevision ?? answer.revision
            if let kv = answer.ranges.last?.kvs.first, kv.modRevision > claimed, let head = etcd.publishedHead(kv) {
                return .published(head)
            }
            return awaitPublished(after: answer.revision, within: min(interval / 10, .seconds(5)))
        } catch {
            // etcd out of reach: this host asks the remote itself.
            return .ask
        }
    }

    /// Puts `head` as this host's reading of the remote (a claimer of a poll interval).
    public func publish(head: CommitID) {
        do {
            try etcd.publish(head: head, keys: keys, by: fleet.hostID)
        } catch let error as AgentError {
            output.line("fleet    \(error.message)")
        } catch {}
    }

    /// The claimer has not published yet: its put of `head`, for a moment; else this host asks.
    private func awaitPublished(after revision: Int64, within wait: Duration) -> SharedPollTurn {
        let found = Mutex<CommitID?>(nil)
        let etcd = self.etcd
        _ = try? etcd.watch(keys.head, prefix: false, fromRevision: revision + 1, timeout: wait) { events in
            guard let kv = events.last(where: { $0.kind == .put })?.kv, let id = etcd.publishedHead(kv) else {
                return false
            }
            found.withLock { $0 = id }
            return true
        }
        return found.withLock { $0 }.map(SharedPollTurn.published) ?? .ask
    }
}

extension FleetPollClaim {
    /// The claim of poll interval `n` by `host`, for a transaction that compares the key
    /// absent: earlier claims go, this one is put, and `head` is read back.
    static func claim(_ n: Int64, keys: FleetKeys, host: String) throws -> [EtcdOperation] {
        let key = keys.poll(n)
        let claim = FleetPollClaim(by: host, time: Date().timeIntervalSince1970)
        return [
            .deleteRange(key: keys.polls, end: key), .put(key: key, value: try JSONEncoder().encode(claim), lease: nil),
            .range(key: keys.head, prefix: false),
        ]
    }
}
