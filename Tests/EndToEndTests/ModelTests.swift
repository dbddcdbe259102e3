import Foundation
import ReleaseAgentTestSupport
import Testing

/// A seeded xorshift generator, so a failing sequence can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// Issue 18: random sequences of deploy, failed deploy, rollback, named rollback, prune and
/// poll against a model of the SPEC's rules, checked after every step. CI runs 2 seeds of
/// 30 steps; `RELEASE_AGENT_MODEL_SEEDS=20 RELEASE_AGENT_MODEL_STEPS=80` is the long mode.
@Suite("model: random operation sequences against the SPEC's rules")
struct ModelTests {
    static var seeds: Int { Int(ProcessInfo.processInfo.environment["RELEASE_AGENT_MODEL_SEEDS"] ?? "") ?? 2 }
    static var steps: Int { Int(ProcessInfo.processInfo.environment["RELEASE_AGENT_MODEL_STEPS"] ?? "") ?? 30 }

    /// What the SPEC says the deploy root holds.
    struct Model {
        var current: String?
        var activations: [String] = []
        var quarantined: Set<String> = []
        var bad: Set<String> = []
        var head: String?

        mutating func activate(_ sha: String) {
            current = sha
            activations.append(sha)
            quarantined.remove(sha)
        }

        /// The release live before `current`: prune never removes it.
        var previous: String? { activations.reversed().first { $0 != current } }

        /// The no-argument rollback target among `complete` releases on disk.
        func rollbackTarget(complete: Set<String>) -> String? {
            activations.reversed().first { $0 != current && complete.contains($0) && !quarantined.contains($0) }
        }
    }

    @Test("every step agrees with the model: current, quarantine, the rollback walk, what prune keeps")
    func randomSequences() throws {
        for seed in 1...Self.seeds {
            try run(seed: UInt64(seed) * 7919)
        }
    }

    private func run(seed: UInt64) throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let build = ["--build", "test ! -e FAIL"]
        var random = SeededGenerator(seed: seed)
        var model = Model()
        var counter = 0

        func commit(bad: Bool) throws -> String {
            counter += 1
            let sha = try repo.commit(
                "c\(counter)", files: bad ? ["FAIL": "1", "n": "\(counter)"] : ["n": "\(counter)"],
                remove: !bad && FileManager.default.fileExists(atPath: repo.path + "/FAIL") ? ["FAIL"] : [])
            if bad { model.bad.insert(sha) }
            model.head = sha
            return sha
        }
        func complete() -> Set<String> {
            agent.releaseDirs().filter { ["ready", "active", "retired"].contains(agent.recordState($0) ?? "") }
        }

        let first = try commit(bad: false)
        #expect(try agent.run("deploy", build).status == 0)
        model.activate(first)

        for step in 0..<Self.steps {
            let label = "seed \(seed) step \(step)"
            switch Int.random(in: 0..<6, using: &random) {
            case 0, 1:  // a new commit, good or bad, deployed from the CLI
                let bad = Int.random(in: 0..<3, using: &random) == 0
                let sha = try commit(bad: bad)
                let result = try agent.run("deploy", build)
                #expect(result.status == (bad ? 1 : 0), "\(label) deploy: \(result.stderr)")
                if bad { model.quarantined.insert(sha) } else { model.activate(sha) }
            case 2:  // rollback with no argument
                let target = model.rollbackTarget(complete: complete())
                let result = try agent.run("rollback")
                if let target {
                    #expect(result.status == 0, "\(label) rollback: \(result.stderr)")
                    if let old = model.current { model.quarantined.insert(old) }
                    model.activate(target)
                } else {
                    #expect(result.status == 1, "\(label) rollback with no target: \(result.stderr)")
                }
            case 3:  // named rollback to any complete release but current
                let choices = complete().subtracting([model.current].compactMap { $0 }).sorted()
                guard let target = choices.randomElement(using: &random) else { continue }
                let result = try agent.run("rollback", [String(target.prefix(12))])
                #expect(result.status == 0, "\(label) rollback \(target): \(result.stderr)")
                if let old = model.current { model.quarantined.insert(old) }
                model.activate(target)
            case 4:  // prune keeps current, the one before it and the rollback target
                let keep = Int.random(in: 1...3, using: &random)
                let before = complete()
                let target = model.rollbackTarget(complete: before)
                let result = try agent.run("prune", ["--keep", "\(keep)"])
                #expect(result.status == 0, "\(label) prune: \(result.stderr)")
                let after = complete()
                let kept = [model.current, target, model.previous.flatMap { before.contains($0) ? $0 : nil }]
                for sha in kept.compactMap({ $0 }) {
                    #expect(after.contains(sha), "\(label): prune --keep \(keep) removed \(sha), which it must keep")
                }
            default:  // poll: deploys the head unless it is live or quarantined
                let result = try agent.run("poll", build)
                guard let head = model.head else { continue }
                if head == model.current || model.quarantined.contains(head) {
                    #expect(
                        result.status == 0 && result.stderr.isEmpty, "\(label) poll should be silent: \(result.stderr)")
                } else if model.bad.contains(head) {
                    #expect(result.status == 1, "\(label) poll of a bad head: \(result.stderr)")
                    model.quarantined.insert(head)
                } else {
                    #expect(result.status == 0, "\(label) poll: \(result.stderr)")
                    model.activate(head)
                }
            }
            #expect(agent.currentSHA == model.current, "\(label): current")
            if let current = agent.currentSHA {
                #expect(
                    agent.recordState(current) == "active", "\(label): current is \(agent.recordState(current) ?? "?")")
                #expect(FileManager.default.fileExists(atPath: "\(agent.root)/releases/\(current)/REVISION"))
            }
        }
    }
}
