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
    /// A setting serve fixes at its start: its name, its value as text to compare, and how the
    /// running value is put back into settings read anew. One row per setting, written once.
    struct Fixed {
        let name: String
        let text: (Settings) -> String
        let keep: (Settings, inout Settings) -> Void

        init<Value>(_ name: String, _ path: WritableKeyPath<Settings, Value>) {
            self.name = name
            text = { "\($0[keyPath: path])" }
            keep = { running, next in next[keyPath: path] = running[keyPath: path] }
        }
    }

    static var fixedAtStart: [Fixed] {
        [
            Fixed("root", \.root), Fixed("listen", \.listen), Fixed("webhook-secret-file", \.webhookSecretFile),
            Fixed("allow-unsigned", \.allowUnsigned), Fixed("health-token", \.healthToken),
            Fixed("metrics-token", \.metricsToken), Fixed("poll-interval", \.pollInterval),
            Fixed("pid-file", \.pidFile),
            Fixed("log-format", \.logFormat), Fixed("shutdown-grace", \.shutdownGrace), Fixed("fleet", \.fleet),
            Fixed("branch", \.branch), Fixed("repo", \.repo), Fixed("strategy", \.strategy), Fixed("slots", \.slots),
        ]
    }

    /// The fixed settings whose values differ between what runs and what was read.
    static func needingRestart(running: Settings, read: Settings) -> [Fixed] {
        fixedAtStart.filter { $0.text(running) != $0.text(read) }
    }
}
