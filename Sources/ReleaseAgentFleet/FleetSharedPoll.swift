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
    /// While etcd answers, the waits that follow read the fleet's published head to see a
    /// newer commit (this host puts what it read itself, when it asked); with etcd out of
    /// reach they ask the remote.
    public func sharedPoll(every interval: Duration) -> SharedPollTurn {
        let turn = takeTurn(every: interval)
        followsPublishedHead = turn != .ask || claimedPoll != nil
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
            let reading = ClaimedPoll(
                n: n, published: published?.hex, headRevision: headKV?.modRevision ?? 0, claimer: answer.succeeded)
            if answer.succeeded {
                claimedPoll = reading
                return .claimed
            }
            // Another host claimed this interval: its answer, if it gave it already.
            let turn = try claimersAnswer(answer, headKV: headKV, published: published, within: interval)
            // Not answered (or not to be trusted): this host asks, and puts what it reads.
            if turn == .ask { claimedPoll = reading }
            return turn
        } catch {
            // etcd out of reach: this host asks the remote itself.
            return .ask
        }
    }

    /// The claimer's answer: `head` put after the claim, or the claim marked checked with the
    /// head etcd has; else, for a moment, a watch for either. A claim that cannot be read, or
    /// checked against another head than etcd's, is named and not trusted.
    private func claimersAnswer(
        _ answer: EtcdTxnResult, headKV: EtcdKeyValue?, published: CommitID?, within interval: Duration
    ) throws -> SharedPollTurn {
        guard let claimKV = answer.ranges.first?.kvs.first else { return .ask }
        let claim: FleetPollClaim
        do { claim = try etcd.decode(FleetPollClaim.self, claimKV) } catch let error as FleetFailure {
            output.line("fleet    \(error.reason); this poll asks the remote itself")
            return .ask
        }
        if let headKV, headKV.modRevision > claimKV.createRevision, let published { return .published(published) }
        if let checked = claim.checked {
            return trust(checked, key: claimKV.key, head: published)
        }
        let wait = min(interval / 10, .seconds(5))
        guard let answered = awaitAnswer(claimKV.key, after: answer.revision, within: wait) else { return .ask }
        switch answered {
        case .head(let id): return .published(id)
        case .checked(let checked): return trust(checked, key: claimKV.key, head: published)
        }
    }

    /// A claim's `checked` is the claimer's word that the remote has the head etcd has: taken
    /// only when it says so.
    private func trust(_ checked: String, key: String, head: CommitID?) -> SharedPollTurn {
        if let head, checked == head.hex { return .published(head) }
        output.line(
            "fleet    \(key.terminalSafe) says the branch was checked at \(String(checked.prefix(40)).terminalSafe), but the fleet's head is \(head?.short ?? "unknown"); this poll asks the remote itself"
        )
        return .ask
    }

    /// Puts `head` when the branch moved (unless another host put it since this host read it),
    /// else, as the interval's claimer, marks the claim checked: one write either way.
    public func answer(head: CommitID) {
        guard let reading = claimedPoll else { return }
        claimedPoll = nil
        do {
            if head.hex != reading.published {
                try etcd.publish(head: head, keys: keys, by: fleet.hostID, unchangedSince: reading.headRevision)
            } else if reading.claimer {
                let checked = FleetPollClaim(by: fleet.hostID, time: Date().timeIntervalSince1970, checked: head.hex)
                _ = try etcd.put(keys.poll(reading.n), try JSONEncoder().encode(checked))
            }
        } catch let error as AgentError {
            output.line("fleet    \(error.message)")
        } catch {
            output.line(
                "fleet    could not tell the fleet that the branch head is still \(head.short); the other hosts ask the remote themselves this interval"
            )
        }
    }

    /// This host fetched `head`, and the fleet's published head was another (a stale one, or a
    /// push since): it puts it, so the waits, which read the published head, do not take the
    /// other for a newer commit and hold this one. Only over the head it was given.
    public func fetched(head: CommitID, over given: CommitID) {
        guard let kv = try? etcd.get(keys.head), etcd.publishedHead(kv) == given else { return }
        do {
            try etcd.publish(head: head, keys: keys, by: fleet.hostID, unchangedSince: kv.modRevision)
        } catch let error as AgentError {
            output.line("fleet    \(error.message)")
        } catch {}
    }

    private enum Answered: Sendable {
        case head(CommitID)
        case checked(String)
    }

    /// The claimer has not answered yet: its put of `head` or of the checked claim, for a
    /// moment (one watch on both keys); nil when neither came.
    private func awaitAnswer(_ claim: String, after revision: Int64, within wait: Duration) -> Answered? {
        let found = Mutex<Answered?>(nil)
        let etcd = self.etcd
        let head = keys.head
        _ = try? etcd.watch([EtcdWatchKey(head), EtcdWatchKey(claim)], fromRevision: revision + 1, timeout: wait) {
            events in
            for event in events.reversed() where event.kind == .put {
                let answered: Answered? =
                    event.kv.key == head
                    ? etcd.publishedHead(event.kv).map(Answered.head)
                    : (try? etcd.decode(FleetPollClaim.self, event.kv))?.checked.map(Answered.checked)
                if let answered {
                    found.withLock { $0 = answered }
                    return true
                }
            }
            return false
        }
        return found.withLock { $0 }
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

/// A cron poll's reading of etcd: the interval, the head etcd had then (and its revision, 0:
/// absent), and whether this host claimed the interval or asks in its place.
struct ClaimedPoll {
    var n: Int64
    var published: String?
    var headRevision: Int64
    var claimer: Bool
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
