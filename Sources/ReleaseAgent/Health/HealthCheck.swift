import Foundation

/// Wait-for-it: repeats a TCP or HTTP probe until it passes `successes` times in a row,
/// or gives up after `timeout` with one line saying why.
public struct HealthCheck: Sendable {
    public enum Probe: Sendable {
        case http(target: HTTPProbe.Target, expect: String?)
        case tcp(host: String, port: Int)
    }

    public var probe: Probe
    public var timeout: Duration
    public var interval: Duration
    public var successes: Int

    /// The check the settings describe, with `{port}` filled in; nil when none is configured.
    /// Settings were checked when read, so nothing here can fail.
    static func from(_ settings: Settings, port: Int?) -> HealthCheck? {
        let probe: Probe
        if let url = settings.healthURL {
            probe = .http(target: url.target(slot: port), expect: settings.healthExpect)
        } else if let tcp = settings.healthTCP {
            probe = .tcp(host: tcp.host, port: tcp.port(slot: port))
        } else {
            return nil
        }
        return HealthCheck(
            probe: probe, timeout: settings.healthTimeout, interval: settings.healthInterval,
            successes: settings.healthSuccesses)
    }

    public var target: String {
        switch probe {
        case .http(let target, _): return target.url
        case .tcp(let host, let port): return "tcp \(host):\(port)"
        }
    }

    /// Nil when healthy; otherwise the reason, with the last result and the attempt count.
    public func wait() -> String? {
        let start = ContinuousClock.now
        let deadline = start + timeout
        var attempts = 0
        var streak = 0
        var last = "no attempt made"
        while true {
            attempts += 1
            let remaining = deadline - ContinuousClock.now
            // Each attempt gets at least 1 s, so the last one is a real answer rather than a cut-off.
            let attemptTimeout = min(max(remaining, .seconds(1)), .seconds(5))
            if let failure = attempt(timeout: attemptTimeout) {
                last = failure
                streak = 0
            } else {
                streak += 1
                if streak >= successes { return nil }
            }
            // Attempts go on until the timeout itself: the last one comes at the deadline, not
            // an interval before it (an app up at 7 s of a 10 s timeout with 5 s pauses passes).
            let now = ContinuousClock.now
            if now >= deadline {
                return "\(target) not healthy after \(attempts) attempts in \((now - start).short): \(last)"
            }
            Thread.sleep(forTimeInterval: min(interval, deadline - now).seconds)
        }
    }

    /// One probe: nil on success, else what went wrong.
    func attempt(timeout: Duration) -> String? {
        switch probe {
        case .http(let target, let expect): return HTTPProbe.get(target, expect: expect, timeout: timeout)
        case .tcp(let host, let port): return TCPProbe.connect(host: host, port: port, timeout: timeout)
        }
    }
}
