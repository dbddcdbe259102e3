import ReleaseAgent

@main
struct Entrypoint {
    static func main() { RootCommand.runMain() }
}
