import Foundation
import ReleaseAgent
import ReleaseAgentEtcd
import Synchronization

/// A cron `poll` in fleet mode shares the poll interval with every host, as `serve` does
/// (SPEC, "Fleet mode at scale"): the first host to claim `poll/<n>` asks the remote and
/// answers for the interval; the others take its answer. Without this, each host's cron
/// asked the remote every minute.
///
/// The answer is one write: a put of `head` when the branch moved, else the claim marked
/// `checked`. Without the second kind (the steady state: nothing new on the branch), the
/// others could not tell "checked, unchanged" from "not asked yet", waited for a put that
/// never came and asked the remote themselves: as many asks per interval as hosts.
/// A serve host's claim is never marked (serve's hosts watch `head`): a cron poll beside it
/// waits the short bound and asks.
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
            let headKV = answer.ranges.last?.kvs.first
            let published = headKV.flatMap(etcd.publishedHead)
            if let headKV, published == nil { nameUnreadableHead(headKV, claimed: answer.succeeded) }
            if answer.succeeded {
                claimedPoll = ClaimedPoll(n: n, published: published?.hex)
                return .claimed
            }
            // Another host claimed this interval: its answer, if it gave it already.
            let claimKV = answer.ranges.first?.kvs.first
            var claim: FleetPollClaim?
            if let claimKV {
                do { claim = try etcd.decode(FleetPollClaim.self, claimKV) } catch let error as FleetFailure {
                    output.line("fleet    \(error.reason); this poll asks the remote itself")
                    return .ask
                }
            }
            let claimed = claimKV?.createRevision ?? answer.revision
            if let headKV, headKV.modRevision > claimed, let published { return .published(published) }
            if let checked = claim?.checked.flatMap(CommitID.init(hex:)) { return .published(checked) }
            return awaitAnswer(n, after: answer.revision, within: min(interval / 10, .seconds(5)))
        } catch {
            // etcd out of reach: this host asks the remote itself.
            return .ask
        }
    }

    /// Puts `head` when the branch moved, else marks this host's claim checked (one write).
    public func answer(head: CommitID) {
        guard let claim = claimedPoll else { return }
        claimedPoll = nil
        do {
            if head.hex != claim.published {
                try etcd.publish(head: head, keys: keys, by: fleet.hostID)
            } else {
                let checked = FleetPollClaim(by: fleet.hostID, time: Date().timeIntervalSince1970, checked: head.hex)
                _ = try etcd.put(keys.poll(claim.n), try JSONEncoder().encode(checked))
            }
        } catch let error as AgentError {
            output.line("fleet    \(error.message)")
        } catch {
            output.line(
                "fleet    could not tell the fleet that the branch head is still \(head.short); the other hosts ask the remote themselves this interval"
            )
        }
    }

    /// The claimer has not answered yet: its put of `head` or of the checked claim, for a
    /// moment (one watch on both keys); else this host asks.
    private func awaitAnswer(_ n: Int64, after revision: Int64, within wait: Duration) -> SharedPollTurn {
        let found = Mutex<CommitID?>(nil)
        let etcd = self.etcd
        let (head, claim) = (keys.head, keys.poll(n))
        let watched = [EtcdWatchKey(head), EtcdWatchKey(claim)]
        _ = try? etcd.watch(watched, fromRevision: revision + 1, timeout: wait) { events in
            for event in events.reversed() where event.kind == .put {
                let id =
                    event.kv.key == head
                    ? etcd.publishedHead(event.kv)
                    : (try? etcd.decode(FleetPollClaim.self, event.kv))?.checked.flatMap(CommitID.init(hex:))
                if let id {
                    found.withLock { $0 = id }
                    return true
                }
            }
            return false
        }
        return found.withLock { $0 }.map(SharedPollTurn.published) ?? .ask
    }

    /// A value under `head` that is not a published head: named, as serve names it. The
    /// claimer publishes the branch head over it in this interval.
    private func nameUnreadableHead(_ kv: EtcdKeyValue, claimed: Bool) {
        let next =
            claimed
            ? "this host publishes the branch head over it"
            : "the host that claimed this interval publishes the branch head over it"
        output.line(
            "fleet    \(kv.key.terminalSafe) holds no published head (\(kv.value.count) bytes that are not {\"sha\": ...}); \(next)"
        )
    }
}

/// The poll interval a cron poll claimed, and the head etcd had then: its answer compares.
struct ClaimedPoll {
    var n: Int64
    var published: String?
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
