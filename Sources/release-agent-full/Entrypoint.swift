import ReleaseAgentServe

/// `release-agent` execs this binary for deploy, serve and a poll that must fetch.
@main
struct Entrypoint {
    static func main() async { await FullRootCommand.runMain() }
}
