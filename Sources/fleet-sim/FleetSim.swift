import ArgumentParser
import Foundation
import ReleaseAgent
import ReleaseAgentFleet

/// `fleet-sim`: the fleet gate of many `serve` hosts in one process, against a real etcd, for
/// `bench/fleet-sim.sh`. Each simulated host has its own root (tmpfs), its own registration
/// on a presence lease (as serve's session), and runs what a deploy runs of the gate:
/// reconcile, admit (canaries, a slot), confirm, an activation that is a sleep, finish. No
/// fetch, no build: what is measured is the coordination. Not a test; not shipped.
@main
struct FleetSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-sim", abstract: "Simulate a fleet's rollout through the real fleet gate.")

    @Option(help: "etcd client URLs, comma-separated.") var etcd: String
    @Option(help: "Simulated hosts.") var hosts = 1000
    @Option(help: "fleet-max-parallel (a count or a percentage).") var parallel = "1%"
    @Option(help: "Seconds one activation takes (a sleep).") var activation = 1.0
    @Option(help: "The fleet's name (its keys under /release-agent/<name>/).") var fleet = "sim"
    @Option(help: "A directory for the hosts' roots.") var work: String
    @Option(help: "Canary hosts (fleet-canary).") var canary = 0

    func run() throws {
        let output = Output()
        let settings = try (1...hosts).map { try hostSettings($0) }
        // Registered first, as running serves are; renewed every third of the presence TTL.
        let sessions = try settings.map { settings -> FleetSession in
            try settings.layout.create()
            guard let session = try FleetSession.start(settings, output: output) else {
                throw ValidationError("no fleet settings")
            }
            return session
        }
        let renewing = Renewals(sessions)
        renewing.start()
        FileHandle.standardError.write(Data("fleet-sim: \(hosts) hosts registered\n".utf8))
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        // The push: every host asks at once, as after a published head.
        _ = readLine()
        let sha = String(repeating: "ab", count: 20)
        let times = Times()
        let start = Date().timeIntervalSince1970
        let threads = zip(settings, sessions).map { settings, session in
            let thread = Thread { times.add(Self.activate(sha, settings, session, output, activation)) }
            thread.stackSize = 1 << 18
            thread.start()
            return thread
        }
        _ = threads
        times.wait(for: hosts)
        let end = Date().timeIntervalSince1970
        renewing.stop()
        for session in sessions { session.stop() }
        let failed = times.failures
        print(
            String(
                format: "rollout %.2f s, activations %d, failed %d, peak %d, renewals %d", end - start, hosts - failed,
                failed, times.peak, renewing.count))
    }

    func hostSettings(_ n: Int) throws -> Settings {
        try SettingsOptions.parse([
            "--root", work + "/h\(n)", "--repo", work + "/none", "--fleet-etcd", etcd, "--fleet", fleet, "--host-id",
            "h\(n)", "--fleet-max-parallel", parallel, "--fleet-canary", String(canary),
        ]).resolve()
    }

    /// One host's gate, as a deploy runs it; returns when it activated (start, end) or nil.
    static func activate(
        _ sha: String, _ settings: Settings, _ session: FleetSession, _ output: Output, _ seconds: Double
    )
        -> (Double, Double)?
    {
        do {
            let gate = try EtcdFleetGate(settings: settings, output: output, session: session)
            try gate.reconcile()
            try gate.admit(sha: sha, previous: nil, newerHead: nil)
            try gate.confirm(sha: sha)
            let begin = Date().timeIntervalSince1970
            Thread.sleep(forTimeInterval: seconds)
            let end = Date().timeIntervalSince1970
            gate.finish(sha: sha, ok: true, reason: nil)
            return (begin, end)
        } catch {
            FileHandle.standardError.write(Data("fleet-sim: \(settings.fleet?.hostID ?? "?"): \(error)\n".utf8))
            return nil
        }
    }
}

/// The activations' times, and the most at once.
final class Times: @unchecked Sendable {
    private let lock = NSCondition()
    private var spans: [(Double, Double)] = []
    private var done = 0
    private(set) var failures = 0

    func add(_ span: (Double, Double)?) {
        lock.lock()
        if let span { spans.append(span) } else { failures += 1 }
        done += 1
        lock.broadcast()
        lock.unlock()
    }

    func wait(for count: Int) {
        lock.lock()
        while done < count { lock.wait() }
        lock.unlock()
    }

    var peak: Int {
        var edges: [(Double, Int)] = []
        for (begin, end) in spans {
            edges.append((begin, 1))
            edges.append((end, -1))
        }
        edges.sort { (a: (Double, Int), b: (Double, Int)) -> Bool in a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) }
        var now = 0
        var most = 0
        for (_, step) in edges {
            now += step
            most = max(most, now)
        }
        return most
    }
}

/// Keeps every simulated serve's registration alive, as FleetSessionService does for one.
final class Renewals: @unchecked Sendable {
    let sessions: [FleetSession]
    private let lock = NSLock()
    private var running = true
    private var renewed = 0
    /// The renewals sent (one keepalive each): bench/fleet-sim.sh takes them out of the
    /// rollout's requests.
    var count: Int { lock.withLock { renewed } }

    init(_ sessions: [FleetSession]) { self.sessions = sessions }

    func start() {
        let thread = Thread { [self] in
            let every = sessions.first?.renewEvery.components.seconds ?? 60
            var next = Date().addingTimeInterval(Double(every))
            while lock.withLock({ running }) {
                Thread.sleep(forTimeInterval: 0.2)
                guard Date() >= next else { continue }
                for session in sessions { try? session.renew() }
                lock.withLock { renewed += sessions.count }
                next = Date().addingTimeInterval(Double(every))
            }
        }
        thread.start()
    }

    func stop() { lock.withLock { running = false } }
}
