import Foundation

/// The lifecycle events the SPEC names; a hook is an executable named after its event.
public enum HookEvent: String, Sendable, CaseIterable {
    case build, start, activate, stop
    case postDeploy = "post-deploy"
    case onFailure = "on-failure"
}

/// Finds and runs hooks from `hooks-dir` for one release.
package struct Hooks {
    let operation: DeployContext

    package init(operation: DeployContext) { self.operation = operation }

    /// The hook's path, nil when there is none. A file that is not executable is skipped
    /// with a warning that says how to fix it.
    func path(for event: HookEvent) -> String? {
        let path = operation.settings.hooksDir + "/" + event.rawValue
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard access(path, X_OK) == 0 else {
            operation.output.line("hook     warning: \(path) is not executable and was skipped; chmod +x it")
            return nil
        }
        return path
    }

    /// Runs `event` in `releases/<sha>` with the SPEC's environment plus `extra`.
    /// Nil when the hook does not exist; otherwise how it ended. Activation hooks (after the
    /// swap) pass `cancellable: false`: a shutdown lets them finish, their timeout still holds.
    @discardableResult
    package func run(
        _ event: HookEvent, sha: String, previous: String?, extra: [String: String] = [:], cancellable: Bool = true
    ) throws -> ProcessOutcome? {
        guard let path = path(for: event) else { return nil }
        let start = ContinuousClock.now
        var env = StepRunner.environment(
            event: event.rawValue, sha: sha, layout: operation.layout, branch: operation.settings.branch,
            previous: previous, extra: extra)
        // The setting wins over a SYSTEMD_UNIT the agent inherited (the unit's old drop-in form).
        if let unit = operation.settings.unit { env["SYSTEMD_UNIT"] = unit }
        let quoted = "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
        let outcome = try StepRunner(operation: operation, sha: sha).run(
            stage: event.rawValue, command: "exec \(quoted)", timeout: operation.settings.hookTimeout, environment: env,
            cancellable: cancellable)
        let detail = outcome.succeeded ? "ok" : "hook \(path) \(outcome.text)"
        operation.output.stage(event.rawValue, ContinuousClock.now - start, detail)
        return outcome
    }

    /// Runs a hook whose failure is only logged (stop, post-deploy, on-failure).
    package func runLogged(
        _ event: HookEvent, sha: String, previous: String?, extra: [String: String] = [:], cancellable: Bool = true
    ) {
        do {
            try run(event, sha: sha, previous: previous, extra: extra, cancellable: cancellable)
        } catch {
            operation.output.line("\(event.rawValue) could not run: \(error)")
        }
    }
}
