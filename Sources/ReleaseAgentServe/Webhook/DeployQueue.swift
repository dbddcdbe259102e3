import Foundation
import Logging
import NIOPosix
import ReleaseAgent
import ReleaseAgentGit
import ServiceLifecycle
import UnixSignals

/// The one owner of deploys in `serve`: triggers from webhooks, the poller and SIGHUP go
/// into a stream that keeps only the newest, so while a deploy runs they collapse into at
/// most one follow-up; each run deploys the head it fetches itself (poll semantics:
/// quarantine respected). The loop runs inside `DeployQueueService.run()`.
public actor DeployQueue {
    public struct State: Sendable {
        public var ready: Bool
        public var deploying: Bool
        public var current: String?
        public var lastResult: String?
        public var lastSHA: String?
        public var runs: Int
    }

    private(set) var settings: Settings
    let output: Output
    let logger: Logger
    /// Serve's: the fleet gate on its etcd session.
    let capabilities: Capabilities
    private let triggers: AsyncStream<DeployTrigger>
    private let continuation: AsyncStream<DeployTrigger>.Continuation
    /// Fleet mode: told each head this serve read from the remote (it publishes it).
    private let sawHead: (@Sendable (CommitID) -> Void)?
    private var running = false
    /// A webhook's head is being read to publish it (`webhook`).
    private var announcing = false
    private var closed = false
    private var ready = false
    private var lastResult: String?
    private var lastSHA: String?
    private var runs = 0

    public init(
        settings: Settings, output: Output, logger: Logger, capabilities: Capabilities = .process,
        sawHead: (@Sendable (CommitID) -> Void)? = nil
    ) {
        self.settings = settings
        self.capabilities = capabilities
        self.output = output
        self.logger = logger
        self.sawHead = sawHead
        (triggers, continuation) = AsyncStream.makeStream(
            of: DeployTrigger.self, bufferingPolicy: .bufferingNewest(1))
    }

    public var state: State {
        State(
            ready: ready, deploying: running, current: settings.layout.currentSHA(), lastResult: lastResult,
            lastSHA: lastSHA, runs: runs)
    }

    /// SIGHUP: the deploy settings `read` again replace the running ones for the next deploy;
    /// those fixed at start stay and are named (ConfigReload).
    func reload(_ read: Settings) {
        let fixed = ConfigReload.needingRestart(running: settings, read: read)
        if fixed.contains(where: { $0.name == "root" }) {
            output.line(
                "serve    reload refused: root changed (\(settings.root) -> \(read.root)); a new root needs a restart (systemctl restart); the running settings stay"
            )
            return
        }
        var next = read
        if !fixed.isEmpty {
            // Keep what serve bound or opened: the rest of the new settings still applies.
            for setting in fixed { setting.keep(settings, &next) }
            output.line(
                "serve    reload: \(fixed.map(\.name).joined(separator: ", ")) changed and take effect at the next restart (systemctl restart)"
            )
        }
        settings = next
        output.line("serve    reload: settings read again; the next deploy uses them")
    }

    /// Reads the deploy root once, so /healthz can answer.
    func markReady() {
        let report = StatusReport(layout: settings.layout)
        if let last = report.lastResult {
            lastResult = last.result.rawValue
            lastSHA = last.sha
        }
        ready = true
    }

    /// Queues a deploy of the newest head; while one runs, triggers collapse into one follow-up.
    public func trigger(_ source: String, knownHead: CommitID? = nil) {
        guard !closed else { return }
        continuation.yield(DeployTrigger(source: source, knownHead: knownHead))
    }

    /// A webhook's trigger. In fleet mode, while a deploy runs here (a wait in line can last
    /// minutes), the head the push made is read from the remote and published now, not when
    /// that deploy ends: the hosts waiting in line for an older sha see it superseded instead
    /// of activating it (SPEC: "A webhook reaching any host publishes the head it then reads
    /// from the remote itself"; the adversarial helper saw them activate the older sha, this
    /// host included). One look at a time; bounded by the remote's timeouts.
    func webhook(_ source: String) {
        trigger(source)
        guard running, !announcing, let sawHead, !closed else { return }
        announcing = true
        let settings = self.settings
        let capabilities = self.capabilities
        Task {
            let head = try? await Self.onPool { () -> CommitID? in
                guard let url = try? RemoteURL.normalize(settings.requireRepo()) else { return nil }
                if let local = LocalRefs.branchHead(repository: url, branch: settings.branch) { return local }
                return
                    (try? capabilities.askRemoteHead(
                        url: url, branch: settings.branch, credentials: settings.credentials)) ?? nil
            }
            if let head = head ?? nil { sawHead(head) }
            self.announced()
        }
    }

    private func announced() { announcing = false }

    /// Stops taking triggers (shutdown): the loop ends after the deploy that runs.
    func close() {
        closed = true
        continuation.finish()
    }

    /// One deploy at a time, until the stream is finished (shutdown) or the task cancelled.
    func runLoop() async {
        for await source in triggers {
            running = true
            var next: DeployTrigger? = source
            while let current = next, !closed {
                next = await runOnce(current)
            }
            running = false
        }
    }

    /// One run; returns the trigger to run again at once (the lock was busy, or a pause with
    /// a trigger waiting was lifted), or nil.
    private func runOnce(_ trigger: DeployTrigger) async -> DeployTrigger? {
        runs += 1
        let settings = self.settings
        let output = self.output
        let sawHead = self.sawHead
        let capabilities = self.capabilities
        let source = trigger.source
        let result: Result<Poll.Outcome, Error>
        do {
            result = try await Self.onPool {
                Result {
                    try Poll(operation: DeployContext(settings: settings, output: output, capabilities: capabilities))
                        .run(
                            force: false, trigger: source, knownHead: trigger.knownHead, sawHead: sawHead)
                }
            }
        } catch {
            logger.error("the deploy thread pool is not running: \(error)")
            return nil
        }
        switch result {
        case .success(.deployed(let sha)):
            lastResult = "ok"
            lastSHA = sha
            logger.info("deployed", metadata: ["sha": "\(sha)", "trigger": "\(source)"])
        case .success(.busy):
            // A CLI deploy, rollback or prune holds the lock: the trigger is kept and tried
            // again once the lock frees, never dropped.
            logger.info("another operation holds the lock; retrying when it frees")
            try? await Task.sleep(for: Self.busyRetry)
            return trigger
        case .success(.quarantined(let sha, let reason)):
            logger.debug("head is quarantined", metadata: ["sha": "\(sha)", "reason": "\(reason)"])
        case .success(.paused):
            // The trigger is kept until `resume`: checked once a second while paused with
            // something pending (idle otherwise), then the newest head is deployed.
            logger.info("paused; the trigger waits for resume", metadata: ["trigger": "\(source)"])
            while !closed && PauseState.isPaused(settings.layout) {
                do { try await Task.sleep(for: .seconds(1)) } catch { return nil }
            }
            return closed ? nil : DeployTrigger(source: "resume", knownHead: nil)
        case .success(.nothingToDo):
            logger.debug("nothing to deploy", metadata: ["trigger": "\(source)"])
        case .failure(let error):
            lastResult = "failed"
            logger.error("deploy failed: \(error)", metadata: ["trigger": "\(source)"])
        }
        return nil
    }

    /// How often a trigger that found the lock busy tries again.
    static let busyRetry: Duration = .milliseconds(250)

    /// Blocking work (libgit2, child processes, fleet waits) on NIO's thread pool, off the
    /// cooperative pool and off the event loops.
    static func onPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}

/// What asks for a deploy: the source (webhook, poll, sighup, fleet head, ...) and, from the
/// fleet's watch, the head it published (then the remote is not asked).
struct DeployTrigger: Sendable {
    var source: String
    var knownHead: CommitID?
}

/// Runs the queue's loop inside the ServiceGroup: on shutdown it stops taking triggers, lets
/// a running deploy finish within `shutdown-grace`, then cancels it at a safe point.
struct DeployQueueService: Service {
    let queue: DeployQueue
    let grace: Duration
    let logger: Logger

    func run() async throws {
        await queue.markReady()
        let grace = self.grace
        let logger = self.logger
        let queue = self.queue
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await queue.runLoop()
                return true
            }
            group.addTask {
                guard (try? await gracefulShutdown()) != nil else { return false }
                SystemdNotify.send("STOPPING=1")
                // A fleet wait (canaries, a slot) gives up now, not after the grace.
                Cancellation.stop()
                await queue.close()
                // Cancelled when the loop ends first; otherwise the grace is over.
                guard (try? await Task.sleep(for: grace)) != nil else { return false }
                logger.warning("shutdown grace of \(grace.short) is over; cancelling the running deploy")
                Cancellation.request()
                return false
            }
            for await loopEnded in group where loopEnded { group.cancelAll() }
        }
    }
}

/// SIGHUP (`systemctl reload`, and `resume` naming this serve's pid-file): the settings read
/// again (ConfigReload), then a poll at once.
struct HangupService: Service {
    let queue: DeployQueue
    /// Reads and checks the settings from their sources, as at start.
    let reread: @Sendable () throws -> Settings

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                await queue.reload(try reread())
            } catch {
                let message = (error as? AgentError)?.message ?? "\(error)"
                queue.output.line("serve    reload refused: \(message); the running settings stay")
            }
            await queue.trigger("sighup")
        }
    }
}

/// The second trigger source: a poll every `poll-interval`, with ±10% jitter so a fleet
/// of servers does not hit the remote at the same instant.
struct PollerService: Service {
    let queue: DeployQueue
    let interval: Duration

    func run() async throws {
        guard interval > .zero else {
            try? await gracefulShutdown()
            return
        }
        await queue.trigger("poll")
        while true {
            let jittered = interval.seconds * Double.random(in: 0.9...1.1)
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: .milliseconds(Int64(jittered * 1000)))
                }
            } catch {
                return
            }
            await queue.trigger("poll")
        }
    }
}
