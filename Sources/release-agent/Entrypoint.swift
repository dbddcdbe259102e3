import ReleaseAgent

@main
struct Entrypoint {
    static func main() async { await RootCommand.runMain() }
}
