import Foundation
import NIOPosix
import ReleaseAgent
import ReleaseAgentEtcd

/// What `serve` learns from the fleet's keys, through one long-lived watch.
public enum FleetSignal: Sendable, Equatable {
    /// `head` as published (nil: no host has published one yet).
    case head(CommitID?)
    /// `target` changed: a fleet rollback began or ended.
    case target
    /// `paused` was deleted (`fleet resume`).
    case resumed
    /// Poll interval n was claimed by some host.
    case claimed(Int64)
}

/// `serve`'s view of the fleet's shared poll: one watch stream on `head`, `target`, `paused`
/// and `poll/` held open for as long as serve runs (an idle host sends etcd nothing for it);
/// the claim of a poll interval; the publication of the head this host read from the remote.
public final class FleetSignals: @unchecked Sendable {
    let fleet: FleetSettings
    let etcd: EtcdClient
    let keys: FleetKeys
    let output: Output
    private let lock = NSLock()
    private var published: String?

    public init?(settings: Settings, output: Output) throws {
        guard let fleet = settings.fleet else { return nil }
        self.fleet = fleet
        self.output = output
        keys = FleetKeys(prefix: fleet.prefix)
        etcd = try fleet.etcdClient()
    }

    /// The head last seen in etcd (published or watched).
    public var knownHead: String? { lock.withLock { published } }

    /// Reads the keys, hands their state to `handle`, then follows their changes until the
    /// task is cancelled. A lost member costs a new stream at the next one, from the revision
    /// after the last event seen; a compaction costs a new read. Errors wait (1 s, doubling to
    /// 30 s) and are named once per outage.
    public func run(_ handle: @escaping @Sendable (FleetSignal) async -> Void) async {
        var from: Int64?
        var pause = Duration.seconds(1)
        var reported = false
        while !Task.isCancelled {
            do {
                if from == nil { from = try await snapshot(handle) + 1 }
                let end = try await etcd.watchStream(
                    [
                        EtcdWatchKey(keys.head), EtcdWatchKey(keys.target), EtcdWatchKey(keys.paused),
                        EtcdWatchKey(keys.polls, prefix: true),
                    ],
                    fromRevision: from ?? 1
                ) { events in
                    for event in events { if let signal = self.signal(event) { await handle(signal) } }
                }
                switch end {
                case .compacted:
                    from = nil
                case .lost(let last, let why):
                    if let last, let current = from { from = max(current, last + 1) }
                    if !reported {
                        output.line("fleet    the watch of the fleet's keys was lost (\(why)); following again")
                    }
                    reported = true
                }
            } catch is CancellationError {
                return
            } catch {
                if !reported { output.line("fleet    cannot watch the fleet's keys (\(error)); trying again") }
                reported = true
            }
            do { try await Task.sleep(for: pause) } catch { return }
            pause = min(pause * 2, .seconds(30))
            if from != nil { pause = .seconds(1) }
        }
    }

    /// The keys' state now, as signals; returns the revision it was read at. The read blocks
    /// (the etcd client's calls do), so it runs on NIO's thread pool.
    private func snapshot(_ handle: @Sendable (FleetSignal) async -> Void) async throws -> Int64 {
        let etcd = self.etcd
        let keys = self.keys
        let answer = try await NIOThreadPool.singleton.runIfActive {
            try etcd.txn([], success: [.range(key: keys.head, prefix: false), .range(key: keys.polls, prefix: true)])
        }
        let head = answer.ranges.first?.kvs.first.flatMap(readHead)
        lock.withLock { published = head?.hex }
        await handle(.head(head))
        if let newest = answer.ranges.dropFirst().first?.kvs.compactMap(pollNumber).max() {
            await handle(.claimed(newest))
        }
        return answer.revision
    }

    private func signal(_ event: EtcdEvent) -> FleetSignal? {
        switch event.kv.key {
        case keys.head:
            guard event.kind == .put, let sha = readHead(event.kv) else { return nil }
            lock.withLock { published = sha.hex }
            return .head(sha)
        case keys.target:
            return .target
        case keys.paused:
            return event.kind == .delete ? .resumed : nil
        default:
            return event.kind == .put ? pollNumber(event.kv).map(FleetSignal.claimed) : nil
        }
    }

    /// The published head, or nil for a value that is not one: named in the log, and
    /// forgotten, so that the next poll of this host publishes a good one over it.
    private func readHead(_ kv: EtcdKeyValue) -> CommitID? {
        if let sha = etcd.publishedHead(kv) { return sha }
        lock.withLock { published = nil }
        output.line(
            "fleet    \(kv.key.terminalSafe) holds no published head (\(kv.value.count) bytes that are not {\"sha\": ...}); ignored, the next poll publishes the branch head over it"
        )
        return nil
    }

    private func pollNumber(_ kv: EtcdKeyValue) -> Int64? {
        kv.key.hasPrefix(keys.polls) ? Int64(kv.key.dropFirst(keys.polls.count)) : nil
    }

    /// Claims poll interval `n` for this host: one transaction, won by the first host to ask;
    /// the claims of earlier intervals go in the same transaction.
    public func claim(_ n: Int64) throws -> Bool {
        try etcd.txn([.absent(keys.poll(n))], success: try FleetPollClaim.claim(n, keys: keys, host: fleet.hostID))
            .succeeded
    }

    /// Publishes the head this host read from the remote, unless etcd already has it: at most
    /// one put each time the branch moves.
    public func publish(head sha: String) {
        guard lock.withLock({ published }) != sha, let head = CommitID(hex: sha) else { return }
        do {
            try etcd.publish(head: head, keys: keys, by: fleet.hostID)
            lock.withLock { published = sha }
        } catch let error as AgentError {
            output.line("fleet    \(error.message)")
        } catch {}
    }

    /// This host's place in a poll interval: a fixed offset from the interval's start, spread
    /// over its first tenth (at most 5 s) by host-id and interval, so the hosts do not all ask
    /// at the same instant and the first to wake usually claims alone.
    public func offset(_ n: Int64, interval: Duration) -> Duration {
        let window = min(interval / 10, .seconds(5))
        let milliseconds = window.components.seconds * 1000 + window.components.attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { return .zero }
        let hash = FNV1a.hash(fleet.hostID + "/" + String(n))
        return .milliseconds(Int64(hash % UInt64(milliseconds)))
    }
}
