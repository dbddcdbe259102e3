import Foundation

/// The least-privilege polkit rule that lets the agent's user restart the app's unit (the
/// `unit` setting) and nothing else: `org.freedesktop.systemd1.manage-units` for that one
/// unit and the verbs a hook needs. The shipped unit runs the agent with NoNewPrivileges, so
/// sudo cannot work, and CAP_SYS_ADMIN would be far too broad.
struct PolkitRule {
    var user: String
    var unit: String
    static let verbs = ["start", "stop", "restart", "try-restart", "reset-failed"]

    /// `50-release-agent-demo-app.service.rules`: one file per unit, so a second init for
    /// another app adds a rule and replaces none.
    var fileName: String { "50-release-agent-\(unit).rules" }

    var text: String {
        let verbs = Self.verbs.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            // Written by `release-agent init --unit \(unit)`: the user \(user) (release-agent's
            // systemd unit) may start, stop and restart \(unit), and reset its failed state
            // (the start limit), without a password; nothing else.
            polkit.addRule(function(action, subject) {
                if (action.id == "org.freedesktop.systemd1.manage-units" &&
                    subject.user == "\(user)" &&
                    action.lookup("unit") == "\(unit)" &&
                    [\(verbs)].indexOf(action.lookup("verb")) >= 0) {
                    return polkit.Result.YES;
                }
            });

            """
    }

    /// A user name as useradd takes it; it is written into JavaScript, so nothing else passes.
    static func checkUser(_ user: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        guard !user.isEmpty, user.count <= 32, user.allSatisfy(allowed.contains), !user.hasPrefix("-") else {
            throw AgentError.usage("--agent-user '\(user)' is not a user name; give the user the agent runs as")
        }
    }

    /// Writes the rule into `directory` (0644: polkitd reads it as its own user); says what it
    /// did, or, when it cannot write there, what the operator must do instead.
    func install(in directory: String) -> String {
        let path = directory + "/" + fileName
        guard FileSystem.isDirectory(directory) else {
            return
                "polkit: \(directory) does not exist (polkitd is not installed: apt-get install polkitd); as root, write this rule to \(path) so \(user) may restart \(unit):\n\(text)"
        }
        do {
            try FileSystem.writeAtomically(Data(text.utf8), to: path)
            chmod(path, 0o644)
            return "polkit: wrote \(path), so \(user) may restart \(unit):\n\(text)"
        } catch {
            return
                "polkit: cannot write \(path) (run init as root to write it); as root, write this rule there:\n\(text)"
        }
    }
}
