import Foundation
import ReleaseAgent

/// `systemctl reload` (SIGHUP): the settings read again from their sources (flags, environment,
/// config file). What a deploy reads (build, health, hooks, unit, keep-releases...) takes effect
/// from the next deploy on; what serve bound or opened at its start (listen, root, the webhook
/// secret, tokens, fleet, poll-interval, pid-file, log-format) is named, and needs a restart.
/// A config that no longer checks is refused with its one-line error: the running settings stay.
/// A new `root` refuses the whole reload: much is derived from it (hooks-dir, the secret's
/// default path), and half of a new root would act on the old one.
enum ConfigReload {
    /// The settings serve fixed at its start, by name, as text to compare.
    static func fixedAtStart(_ settings: Settings) -> [(String, String)] {
        [
            ("root", settings.root), ("listen", settings.listen.description),
            ("webhook-secret-file", settings.webhookSecretFile ?? ""), ("allow-unsigned", "\(settings.allowUnsigned)"),
            ("health-token", settings.healthToken ?? ""), ("metrics-token", settings.metricsToken ?? ""),
            ("poll-interval", "\(settings.pollInterval)"), ("pid-file", settings.pidFile ?? ""),
            ("log-format", settings.logFormat.rawValue), ("shutdown-grace", "\(settings.shutdownGrace)"),
            ("fleet", settings.fleet.map { "\($0)" } ?? ""), ("branch", settings.branch),
            ("repo", settings.repo ?? ""), ("strategy", settings.strategy.rawValue),
            ("slots", settings.slots.map(String.init).joined(separator: ",")),
        ]
    }

    /// The names whose values differ between what runs and what was read.
    static func needingRestart(running: Settings, read: Settings) -> [String] {
        zip(fixedAtStart(running), fixedAtStart(read)).filter { $0.1 != $1.1 }.map(\.0.0)
    }
}
