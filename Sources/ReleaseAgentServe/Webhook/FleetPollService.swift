import Foundation
import ReleaseAgent
import ReleaseAgentFleet
import ServiceLifecycle
import Synchronization

/// `serve`'s trigger source in fleet mode, in place of each host polling the remote: one
/// watch on the fleet's keys (a published head, a fleet rollback, a resume) and, every
/// `poll-interval`, a claim of `poll/<n>`. The host that wins asks the remote and publishes
/// what it read; every other host deploys when the published head moves. A claimer that dies
/// or fails costs one interval: the next interval is claimed afresh. With etcd out of reach a
/// host asks the remote itself, as without a fleet.
struct FleetPollService: Service {
    let queue: DeployQueue
    let signals: FleetSignals
    /// 0: no polling; the watch alone (webhooks on any host still reach every host).
    let interval: Duration
    let layout: Layout
    let state = FleetPollState()

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await signals.run { signal in await self.handle(signal) } }
            if interval > .zero { group.addTask { await self.pollLoop() } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    func handle(_ signal: FleetSignal) async {
        switch signal {
        case .head(let head?):
            // The first look after start always runs (a recovery may be due); after it, only
            // a head that is not live here.
            if state.started() || head.hex != layout.currentSHA() {
                await queue.trigger("fleet head", knownHead: head)
            }
        case .head(nil):
            // No host has published a head yet: this one reads the remote (and publishes).
            _ = state.started()
            await queue.trigger("poll")
        case .target:
            await queue.trigger("fleet target")
        case .resumed:
            await queue.trigger("fleet resume")
        case .claimed(let n):
            state.saw(n)
        }
    }

    func pollLoop() async {
        let seconds = interval.seconds
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            let n = Int64((now / seconds).rounded(.down)) + 1
            let at = Double(n) * seconds + signals.offset(n, interval: interval).seconds
            do { try await Task.sleep(for: .milliseconds(Int64(max(0, at - now) * 1000))) } catch { return }
            if state.newest >= n {
                await retryKnown()
                continue
            }
            let signals = self.signals
            let claimed = try? await DeployQueue.onPool { Result { try signals.claim(n) } }
            switch claimed {
            case .success(true):
                state.saw(n)
                await queue.trigger("poll")
            case .success(false):
                state.saw(n)
                await retryKnown()
            case .failure, nil:
                // etcd out of reach (or the pool stopping): ask the remote as a lone host does.
                await queue.trigger("poll")
            }
        }
    }

    /// A published head not live here (a wait that gave up, a hold, a result etcd has not
    /// received yet) is tried again each interval with the known head: nothing is asked of
    /// the remote or of etcd when the host has nothing to do for it.
    func retryKnown() async {
        guard let head = signals.knownHead.flatMap(CommitID.init(hex:)), head.hex != layout.currentSHA() else { return }
        await queue.trigger("fleet retry", knownHead: head)
    }
}

/// The newest poll interval seen claimed, and whether the first signal came.
final class FleetPollState: Sendable {
    private let claimed = Mutex<Int64>(0)
    private let first = Mutex(true)

    var newest: Int64 { claimed.withLock { $0 } }
    func saw(_ n: Int64) { claimed.withLock { $0 = max($0, n) } }

    /// True the first time only.
    func started() -> Bool {
        first.withLock { value in
            defer { value = false }
            return value
        }
    }
}
