import ReleaseAgentServe

/// `release-agent serve` execs this binary with the arguments after `serve`.
@main
struct Entrypoint {
    static func main() async { await ServeCommand.runMain() }
}
