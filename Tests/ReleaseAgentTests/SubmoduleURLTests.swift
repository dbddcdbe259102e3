import Foundation
import Testing

@testable import ReleaseAgent

@Suite("submodule URLs: git's relative rule, and what is fetched")
struct SubmoduleURLTests {
    private func resolved(_ raw: String, _ parent: String, allowLocal: Bool = false) -> String? {
        try? SubmoduleURL.resolve(raw, parent: parent, allowLocal: allowLocal).get()
    }

    @Test("relative URLs hang off the parent's remote, whatever its kind")
    func relative() {
        #expect(resolved("../lib.git", "https://git.example/org/app.git") == "https://git.example/org/lib.git")
        #expect(resolved("./sub", "https://git.example/org/app.git") == "https://git.example/org/app.git/sub")
        #expect(resolved("../../other/lib", "ssh://git@host:2222/org/app") == "ssh://git@host:2222/other/lib")
        #expect(resolved("../lib.git", "git@github.com:org/app.git") == "git@github.com:org/lib.git")
        #expect(resolved("../lib.git", "git@github.com:app.git") == "git@github.com:lib.git")
        #expect(resolved("../lib", "/srv/git/app/") == "/srv/git/lib")
        #expect(resolved("../lib.git", "http://127.0.0.1:8080/app.git") == "http://127.0.0.1:8080/lib.git")
        #expect(resolved("../../../x", "https://git.example/org/app.git") == nil)
        #expect(resolved("../a/../../x", "https://git.example/org/app.git") == nil)
    }

    @Test("https, ssh and scp form as written; local paths only when allowed; the rest never")
    func kinds() {
        #expect(resolved("https://git.example/lib.git", "/srv/app") == "https://git.example/lib.git")
        #expect(resolved("ssh://git@host/lib.git", "/srv/app") == "ssh://git@host/lib.git")
        #expect(resolved("git@host:org/lib.git", "/srv/app") == "git@host:org/lib.git")
        #expect(resolved("github.com:org/lib.git", "/srv/app") == "github.com:org/lib.git")
        #expect(resolved("git@[::1]:lib.git", "/srv/app") == "git@[::1]:lib.git")
        #expect(resolved("../lib.git", "host:org/app.git") == "host:org/lib.git")
        #expect(resolved("../lib.git", "host:app.git") == "host:lib.git")
        for raw in [
            "file:///srv/lib", "/srv/lib", "http://host/lib.git", "git://host/lib.git", "ext::sh -c id", "fd::3",
            "dir/x:y", ":x", "-oProxyCommand=x:y",
        ] {
            #expect(resolved(raw, "/srv/app") == nil, "\(raw)")
        }
        #expect(resolved("file:///srv/lib", "/srv/app", allowLocal: true) == "/srv/lib")
        #expect(resolved("/srv/lib", "/srv/app", allowLocal: true) == "/srv/lib")
        for raw in ["http://host/lib.git", "git://host/lib.git", "ext::sh -c id", "-oProxyCommand=x", "", "a\nb"] {
            #expect(resolved(raw, "/srv/app", allowLocal: true) == nil, "\(raw)")
        }
    }
}
