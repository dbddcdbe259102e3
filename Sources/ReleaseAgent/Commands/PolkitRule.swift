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
        // A unit name may hold `\` (systemd-escape's `\x2d`): in a JavaScript string it must be
        // doubled, or the rule would name another unit (`a\x2db` is `a-b` to JavaScript).
        let literal = unit.replacingOccurrences(of: "\\", with: "\\\\")
        return """
            // Written by `release-agent init --unit \(unit)`: the user \(user) (release-agent's
            // systemd unit) may start, stop and restart \(unit), and reset its failed state
            // (the start limit), without a password; nothing else.
            polkit.addRule(function(action, subject) {
                if (action.id == "org.freedesktop.systemd1.manage-units" &&
                    subject.user == "\(user)" &&
                    action.lookup("unit") == "\(literal)" &&
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
    /// did, or, when it cannot write there, why and what the operator must do instead.
    func install(in directory: String) -> String {
        let path = directory + "/" + fileName
        var st = stat()
        guard stat(directory, &st) == 0 else {
            return
                "polkit: \(directory) does not exist (is polkitd installed? apt-get install polkitd); as root, write this rule to \(path) so \(user) may restart \(unit):\n\(text)"
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            return "polkit: \(directory) is not a directory; give --polkit-dir the rules directory. The rule:\n\(text)"
        }
        do {
            try FileSystem.writeAtomically(Data(text.utf8), to: path)
            chmod(path, 0o644)
            return "polkit: wrote \(path), so \(user) may restart \(unit):\n\(text)"
        } catch {
            let why = (error as? AgentError)?.message ?? "\(error)"
            let remedy = getuid() == 0 ? "fix that, then write this rule there" : "run init as root to write it"
            return "polkit: cannot write \(path) (\(why)); \(remedy):\n\(text)"
        }
    }
}
