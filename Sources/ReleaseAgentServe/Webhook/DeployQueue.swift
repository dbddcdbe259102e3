import Foundation
import Logging
import ReleaseAgent
import ReleaseAgentGit
import ServiceLifecycle

/// The one owner of deploys in `serve`: triggers from webhooks, the poller and SIGHUP
/// collapse into at most one follow-up run while a deploy is in progress, and each run
/// deploys the head it fetches itself (poll semantics: quarantine respected).
public actor DeployQueue {
    public struct State: Sendable {
        public var ready: Bool
        public var deploying: Bool
        public var current: String?
        public var lastResult: String?
        public var lastSHA: String?
        public var runs: Int
    }

    let settings: Settings
    let output: Output
    let logger: Logger
    private var pendingSource: String?
    private var running = false
    private var closed = false
    private var ready = false
    private var lastResult: String?
    private var lastSHA: String?
    private var runs = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    public init(settings: Settings, output: Output, logger: Logger) {
        self.settings = settings
        self.output = output
        self.logger = logger
    }

    public var state: State {
        State(
            ready: ready, deploying: running, current: settings.layout.currentSHA(), lastResult: lastResult,
            lastSHA: lastSHA, runs: runs)
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
    public func trigger(_ source: String) {
        guard !closed else { return }
        pendingSource = source
        guard !running else { return }
        running = true
        Task { await self.drain() }
    }

    private func drain() async {
        while !closed, let source = pendingSource {
            pendingSource = nil
            runs += 1
            let settings = self.settings
            let output = self.output
            let result: Result<Poll.Outcome, Error> = await Self.onThread {
                Result {
                    try Poll(operation: DeployContext(settings: settings, output: output)).run(
                        force: false, trigger: source)
                }
            }
            switch result {
            case .success(.deployed(let sha)):
                lastResult = "ok"
                lastSHA = sha
                logger.info("deployed", metadata: ["sha": "\(sha)", "trigger": "\(source)"])
            case .success(.busy):
                // A CLI deploy, rollback or prune holds the lock: the trigger is kept and tried
                // again once the lock frees, never dropped (a newer trigger replaces it).
                logger.info("another operation holds the lock; retrying when it frees")
                if pendingSource == nil { pendingSource = source }
                try? await Task.sleep(for: Self.busyRetry)
            case .success(.quarantined(let sha, let reason)):
                logger.debug("head is quarantined", metadata: ["sha": "\(sha)", "reason": "\(reason)"])
            case .success(.paused):
                // The trigger is kept until `resume`: checked once a second while paused with
                // something pending (idle otherwise), then the newest head is deployed.
                logger.info("paused; the trigger waits for resume", metadata: ["trigger": "\(source)"])
                while !closed && PauseState.isPaused(settings.layout) {
                    try? await Task.sleep(for: .seconds(1))
                }
                if pendingSource == nil && !closed { pendingSource = "resume" }
            case .success(.nothingToDo):
                logger.debug("nothing to deploy", metadata: ["trigger": "\(source)"])
            case .failure(let error):
                lastResult = "failed"
                logger.error("deploy failed: \(error)", metadata: ["trigger": "\(source)"])
            }
        }
        running = false
        idleWaiters.forEach { $0.resume() }
        idleWaiters.removeAll()
    }

    /// How often a trigger that found the lock busy tries again.
    static let busyRetry: Duration = .milliseconds(250)

    /// Stops taking triggers (shutdown).
    func close() { closed = true }

    /// Returns when no deploy is running.
    func waitIdle() async {
        guard running else { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Runs blocking work (libgit2, child processes) on its own thread, off the cooperative pool.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// Runs the queue inside the ServiceGroup: on shutdown it stops taking triggers, lets a
/// running deploy finish within `shutdown-grace`, then cancels it at a safe point.
struct DeployQueueService: Service {
    let queue: DeployQueue
    let grace: Duration
    let logger: Logger

    func run() async throws {
        await queue.markReady()
        try? await gracefulShutdown()
        SystemdNotify.send("STOPPING=1")
        await queue.close()
        // A timer, not a task group: waiting for idle cannot be cancelled, and a group
        // would wait for it anyway.
        let grace = self.grace
        let logger = self.logger
        let timer = Task {
            try await Task.sleep(for: grace)
            logger.warning("shutdown grace of \(grace.short) is over; cancelling the running deploy")
            Cancellation.request()
        }
        await queue.waitIdle()
        timer.cancel()
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
