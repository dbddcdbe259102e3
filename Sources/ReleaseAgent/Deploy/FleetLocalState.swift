import Foundation

/// `.release-agent/fleet.json`: what this host's fleet gate is doing (waiting for the canaries
/// or a slot, activating, halted, held while etcd is unreachable), for status, /healthz and
/// /metrics without asking etcd.
public struct FleetLocalState: StatusFile, Sendable, Equatable {
    public static let fileName = "fleet.json"

    public enum Phase: String, Codable, Sendable {
        case waitingCanaries = "waiting-canaries"
        case waitingSlot = "waiting-slot"
        case activating, idle, failed, halted, held
    }

    public var phase: Phase
    public var sha: String?
    public var detail: String
    public var time: Double

    public init(_ phase: Phase, sha: String?, detail: String) {
        self.phase = phase
        self.sha = sha
        self.detail = detail
        time = Date().timeIntervalSince1970
    }

    public var isWaiting: Bool { phase == .waitingCanaries || phase == .waitingSlot }

    public var text: String {
        let sha = self.sha.map { " " + $0.prefix(12) } ?? ""
        let ago = Int(Date().timeIntervalSince1970 - time)
        switch phase {
        case .waitingCanaries: return "waiting for the canaries to finish\(sha) (\(ago)s): \(detail)"
        case .waitingSlot: return "waiting for an activation slot for\(sha) (\(ago)s): \(detail)"
        case .activating: return "activating\(sha): \(detail)"
        case .idle: return "idle: \(detail)"
        case .failed: return "failed\(sha): \(detail)"
        case .halted: return "the rollout of\(sha) is halted fleet-wide: \(detail)"
        case .held: return "held\(sha): \(detail)"
        }
    }
}

/// `.release-agent/fleet-result.json`: a result this host owes the fleet. Written when the
/// slot is taken (`ok` nil: activating) and at the end of the activation; removed once the
/// result is in etcd. A crash or an etcd outage leaves it, and the next operation under the
/// lock writes the result (the others wait on it), so no result is ever lost.
public struct FleetPendingResult: StatusFile, Sendable, Equatable {
    public static let fileName = "fleet-result.json"

    public var sha: String
    public var ok: Bool?
    public var reason: String?
    public var canary: Bool
    /// The agent died during the canary analysis: the release is live but not judged, and
    /// the fleet is paused with this reason when the result is written.
    public var inconclusive: String?
    /// The agent that owes it: a live one is still activating, and is left alone.
    public var pid: Int32

    public init(sha: String, ok: Bool?, reason: String?, canary: Bool) {
        self.sha = sha
        self.ok = ok
        self.reason = reason
        self.canary = canary
        pid = getpid()
    }

    public static func exists(_ layout: Layout) -> Bool { access(path(layout), F_OK) == 0 }
    public static func clear(_ layout: Layout) { unlink(path(layout)) }
}
