import Foundation
import ReleaseAgentTestSupport

/// What one seed does: the fleet's settings and a list of steps, all drawn from the seed
/// (SplitMix64), so `FLEET_CHAOS_SEEDS=<seed>` replays the same plan. What the fleet does
/// in between depends on timing; the step log printed on a violation says what happened.
struct ChaosPlan: CustomStringConvertible {
    static let hostCount = 5

    /// When a fault hits its host: at once, or once it activates or waits (a good commit is
    /// pushed to make that happen when it does not come by itself).
    enum Moment: String {
        case anytime = "now"
        case activating = "mid-activation"
        case waiting = "mid-wait"
    }

    enum Step: CustomStringConvertible {
        /// A commit the hook activates everywhere.
        case pushGood
        /// A commit whose FAIL_ON names these hosts: their activate hook fails.
        case pushFailing([Int])
        /// kill -9 of a serve agent, restarted after `restartAfter` seconds (a crash and a
        /// supervisor's restart).
        case kill9(Int, Moment, restartAfter: Double)
        /// SIGTERM to a serve agent (it finishes an activation, gives a wait up), then a restart.
        case sigterm(Int, Moment)
        /// The host's path to every etcd member stops forwarding (until `unstall`).
        case stall(Int, Moment)
        case unstall
        case pause
        case resume
        /// `fleet rollback`: nil to each host's previous release, else the n-th newest good sha.
        case fleetRollback(Int?)
        /// The operator's local `rollback` on a host that waits for a slot or the canaries
        /// (the first waiting host from this index on; when none waits, a good commit is
        /// pushed first to make some); skipped when still none waits.
        case operatorRollback(Int)

        var description: String {
            switch self {
            case .pushGood: return "push good"
            case .pushFailing(let hosts): return "push failing on \(hosts.map { "h\($0 + 1)" }.joined(separator: ","))"
            case .kill9(let host, let moment, let after):
                return "kill -9 h\(host + 1) \(moment.rawValue), restart after \(after)s"
            case .sigterm(let host, let moment): return "SIGTERM h\(host + 1) \(moment.rawValue), restart"
            case .stall(let host, let moment): return "stall h\(host + 1)'s etcd path \(moment.rawValue)"
            case .unstall: return "resume the stalled path"
            case .pause: return "fleet pause"
            case .resume: return "fleet resume"
            case .fleetRollback(let pick):
                return "fleet rollback \(pick.map { "to the good sha #\($0) from newest" } ?? "to previous")"
            case .operatorRollback(let host): return "operator rollback on a waiting host (from h\(host + 1))"
            }
        }
    }

    let seed: UInt64
    let maxParallel: Int
    /// 0: no canaries; 1: the first host to ask is the canary.
    let canaries: Int
    let maxFailures: Int
    /// Seconds each host's activate hook sleeps (DELAY): longer activations overlap more.
    let hookDelays: [Double]
    /// Each step and the seconds to let the fleet act before the invariants are checked.
    let steps: [(step: Step, settle: Double)]

    init(seed: UInt64, stepCount: Int) {
        self.seed = seed
        var random = SplitMix64(seed: seed)
        maxParallel = random.within(1...2)
        canaries = random.chance(40) ? 1 : 0
        maxFailures = random.within(1...2)
        hookDelays = (0..<Self.hostCount).map { _ in Double(random.within(2...12)) / 10 }
        var steps: [(Step, Double)] = []
        let moments: [Moment] = [.anytime, .activating, .waiting]
        var stalled = false
        var paused = false
        var stalledFor = 0
        var pausedFor = 0
        for _ in 0..<stepCount {
            // A stall or a pause lasts at most three steps.
            var step: Step
            if stalled && stalledFor >= 3 {
                step = .unstall
            } else if paused && pausedFor >= 3 {
                step = .resume
            } else {
                let weights = [5, 2, 2, 1, stalled ? 0 : 1, stalled ? 2 : 0, paused ? 0 : 1, paused ? 2 : 0, 1, 3]
                switch random.weighted(weights) {
                case 0: step = .pushGood
                case 1:
                    let first = random.below(Self.hostCount)
                    let second = random.chance(30) ? random.below(Self.hostCount) : first
                    step = .pushFailing(Array(Set([first, second])).sorted())
                case 2:
                    let host = random.below(Self.hostCount)
                    step = .kill9(host, random.pick(moments), restartAfter: Double(random.within(0...20)) / 10)
                case 3: step = .sigterm(random.below(Self.hostCount), random.pick(moments))
                case 4: step = .stall(random.below(Self.hostCount), random.pick(moments))
                case 5: step = .unstall
                case 6: step = .pause
                case 7: step = .resume
                case 8: step = .fleetRollback(random.chance(50) ? nil : random.below(3))
                default: step = .operatorRollback(random.below(Self.hostCount))
                }
            }
            switch step {
            case .stall: (stalled, stalledFor) = (true, 0)
            case .unstall: stalled = false
            case .pause: (paused, pausedFor) = (true, 0)
            case .resume: paused = false
            default: break
            }
            stalledFor += 1
            pausedFor += 1
            steps.append((step, Double(random.within(5...30)) / 10))
        }
        self.steps = steps
    }

    var description: String {
        let settings =
            "seed \(seed): fleet-max-parallel \(maxParallel), fleet-canary \(canaries), fleet-max-failures \(maxFailures), hook delays \(hookDelays)"
        let list = steps.enumerated().map { "  \($0.offset + 1). \($0.element.step) (then \($0.element.settle)s)" }
        return ([settings] + list).joined(separator: "\n")
    }

    /// The seeds to run: FLEET_CHAOS_SEEDS=1,2,3, or FLEET_CHAOS_SEED_COUNT=n (1...n), else
    /// two fixed seeds (CI).
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let list = environment["FLEET_CHAOS_SEEDS"] {
            let seeds = list.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            if !seeds.isEmpty { return seeds }
        }
        if let count = environment["FLEET_CHAOS_SEED_COUNT"].flatMap({ Int($0) }), count > 0 {
            return (1...UInt64(min(count, 1000))).map { $0 }
        }
        return [1, 2]
    }

    /// Steps per seed: FLEET_CHAOS_STEPS, else 12.
    static var stepCount: Int {
        ProcessInfo.processInfo.environment["FLEET_CHAOS_STEPS"].flatMap { Int($0) }.map { min(max($0, 1), 200) } ?? 12
    }
}
