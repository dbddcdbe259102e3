import Foundation
import ReleaseAgent
import ReleaseAgentGit
import ReleaseAgentTestSupport
import Testing

/// Errors keep what they were made from beside their one line (issue 28), so code can act on
/// an errno or libgit2's class and code without reading the message.
@Suite("errors keep their cause")
struct ErrorCauseTests {
    @Test("a write that fails keeps its errno; a fetch that fails keeps libgit2's class and code")
    func causes() throws {
        let scratch = Scratch()
        do {
            try FileSystem.writeAtomically(Data("x".utf8), to: scratch.sub("missing/file"))
            Issue.record("the write into a missing directory succeeded")
        } catch let error as AgentError {
            #expect((error.cause as? POSIXError)?.code == .ENOENT, "\(String(describing: error.cause))")
            #expect(error.message.contains(scratch.sub("missing/file")), "\(error.message)")
        }
        let closed = freePort()
        let cache = try GitCache(
            path: scratch.sub("cache"), remoteURL: "http://127.0.0.1:\(closed)/repo.git", credentials: GitCredentials())
        do {
            _ = try cache.fetch(branch: "main", progress: nil)
            Issue.record("the fetch from a closed port succeeded")
        } catch let error as AgentError {
            let git = try #require(error.cause as? GitError, "\(String(describing: error.cause))")
            #expect(git.code < 0 && git.klass > 0, "\(git)")
            #expect(error.message.contains("127.0.0.1:\(closed)"), "\(error.message)")
        }
    }
}
