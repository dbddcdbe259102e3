import Foundation
import ReleaseAgent
import ReleaseAgentTestSupport
import Testing

/// The no-libgit2 reader of a local remote's branch head, against repositories made by git.
@Suite("local refs, read without libgit2")
struct LocalRefsTests {
    @Test("a loose ref, then packed-refs after git pack-refs, then loose again over the packed line")
    func looseAndPacked() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let a = try repo.commit("a")
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "main")?.hex == a)
        try repo.git("pack-refs", "--all")
        #expect(!FileManager.default.fileExists(atPath: repo.path + "/.git/refs/heads/main"))
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "main")?.hex == a)
        let b = try repo.commit("b")
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "main")?.hex == b)
    }

    @Test("a bare repository, a branch with slashes, and a branch that does not exist")
    func bareAndNames() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("a")
        try repo.git("checkout", "-q", "-b", "release/v2")
        let v2 = try repo.commit("v2")
        let bare = scratch.sub("bare.git")
        try repo.git("clone", "-q", "--bare", repo.path, bare)
        #expect(LocalRefs.branchHead(repository: bare, branch: "release/v2")?.hex == v2)
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "release/v2")?.hex == v2)
        #expect(LocalRefs.branchHead(repository: bare, branch: "nope") == nil)
        #expect(LocalRefs.branchHead(repository: scratch.sub("missing"), branch: "main") == nil)
    }

    @Test("layouts it does not read fall back (nil): a symbolic ref, a worktree's .git file, odd names")
    func fallsBack() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        try repo.commit("a")
        try repo.git("symbolic-ref", "refs/heads/alias", "refs/heads/main")
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "alias") == nil)
        let worktree = scratch.sub("wt")
        try repo.git("worktree", "add", "-q", "-b", "side", worktree)
        #expect(LocalRefs.branchHead(repository: worktree, branch: "main") == nil)
        for name in ["", "../main", "a..b", ".hidden", "main.lock", "a//b", "/main", "main/", "ma in", "ma\u{0}in"] {
            #expect(LocalRefs.branchHead(repository: repo.path, branch: name) == nil, "branch \(name.debugDescription)")
        }
        // A damaged loose ref is not trusted either.
        try "not a commit id at all, just forty-one\n".write(
            toFile: repo.path + "/.git/refs/heads/broken", atomically: true, encoding: .utf8)
        #expect(LocalRefs.branchHead(repository: repo.path, branch: "broken") == nil)
    }
}
