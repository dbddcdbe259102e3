import Foundation
import ReleaseAgentTestSupport
import Testing

/// Issue 13, item 3: is the server on what the branch says?
@Suite("status: out of sync with the branch", .serialized)
struct SyncStatusTests {
    @Test(
        "behind by N with the pending subjects; up to date; not on the branch after a force push; status --fetch; metrics"
    )
    func outOfSync() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        #expect(try agent.run("status").stdout.contains("sync:    up to date with main"))
        try repo.commit("first change")
        try repo.commit("second change")
        let c = try repo.commit("third change")
        // A fetch that deploys nothing (the live release asked for again) still sees the head.
        #expect(try agent.run("deploy", ["--sha", a]).status == 0)
        let behind = try agent.run("status").stdout
        #expect(behind.contains("sync:    live is 3 commits behind main (head \(c.prefix(7))"), "\(behind)")
        #expect(behind.contains("pending: third change") && behind.contains("pending: second change"), "\(behind)")
        let json = try agent.statusObject()
        #expect((json["headSeen"] as? [String: Any])?["behind"] as? Int == 3)

        let serve = try ServeProcess(agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0"])
        let metrics = try TestHTTP.send("GET", serve.base + "/metrics").body
        #expect(metrics.contains("release_agent_out_of_sync 1"), "\(metrics)")
        #expect(metrics.contains("release_agent_commits_behind 3"), "\(metrics)")
        #expect(try serve.stop().status == 0)

        #expect(try agent.run("deploy").status == 0)
        #expect(try agent.run("status").stdout.contains("sync:    up to date with main (head \(c.prefix(7))"))
        // A force push: main no longer has the live release.
        try repo.git("reset", "-q", "--hard", a)
        let other = try repo.commit("another line")
        #expect(try agent.run("deploy", ["--sha", c, "--force"]).status == 2)  // c is not on main any more
        let fetched = try agent.run("status", ["--fetch"])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(fetched.stdout.contains("head \(other.prefix(7))"), "\(fetched.stdout)")
        #expect(try agent.run("poll", ["--refuse-force-push"]).status == 1)
        let status = try agent.run("status").stdout
        #expect(status.contains("is not on main (a rollback or a force push"), "\(status)")
    }

    @Test(
        "issue 23: status --fetch counts the commits behind and their subjects (behind in --json); a deploy holding the lock is said"
    )
    func fetchCounts() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        try repo.commit("add the cart")
        try repo.commit("fix the cart")
        let fetched = try agent.run("status", ["--fetch"])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(fetched.stdout.contains("live is 2 commits behind main"), "\(fetched.stdout)")
        #expect(fetched.stdout.contains("pending: fix the cart"), "\(fetched.stdout)")
        let json = try agent.run("status", ["--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["behind"] as? Int == 2, "\(json.stdout)")

        // A deploy holds the lock (its build sleeps): status waits briefly, then says so.
        try repo.commit("third")
        let gate = scratch.sub("gate")
        let hold = scratch.sub("hold")
        FileManager.default.createFile(atPath: hold, contents: nil)
        let build = "touch \(gate); n=0; while [ -f \(hold) ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done"
        let deploy = try agent.start("deploy", ["--build", build])
        #expect(Agent.waitForFile(gate, timeout: 60))
        // A head the deploy's fetch did not see: counting it needs a fetch, and the lock.
        try repo.commit("fourth")
        let busy = try agent.run("status", ["--fetch"])
        #expect(busy.status == 0, "\(busy.stderr)")
        #expect(busy.stderr.contains("holds the lock"), "\(busy.stderr)")
        unlink(hold)
        #expect(try deploy.wait(timeout: 60).status == 0)
    }

    @Test(
        "issue 28: a poll that finds nothing new rewrites nothing: head.json and fetch.json keep their inodes and content, only their times move"
    )
    func noOpPollWritesNothing() throws {
        let scratch = Scratch()
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        #expect(try agent.run("poll").status == 0)
        let path = agent.root + "/.release-agent/head.json"
        let fetch = agent.root + "/.release-agent/fetch.json"
        // Their modification times set two hours back: the poll below must move them to now.
        for file in [path, fetch] {
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -7200)], ofItemAtPath: file)
        }
        let before = try FileManager.default.attributesOfItem(atPath: path)
        let fetchBefore = try FileManager.default.attributesOfItem(atPath: fetch)
        let content = try String(contentsOfFile: path, encoding: .utf8)
        #expect(try agent.run("poll").status == 0)
        let after = try FileManager.default.attributesOfItem(atPath: path)
        let fetchAfter = try FileManager.default.attributesOfItem(atPath: fetch)
        #expect(
            fetchAfter[.systemFileNumber] as? Int == fetchBefore[.systemFileNumber] as? Int, "fetch.json was replaced")
        #expect(
            (fetchAfter[.modificationDate] as? Date ?? .distantPast) > Date(timeIntervalSinceNow: -600),
            "fetch.json's time did not move")
        #expect(after[.systemFileNumber] as? Int == before[.systemFileNumber] as? Int, "head.json was replaced")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == content)
        let moved = (after[.modificationDate] as? Date ?? .distantPast) > (before[.modificationDate] as? Date ?? .now)
        #expect(
            moved, "\(String(describing: before[.modificationDate])) -> \(String(describing: after[.modificationDate]))"
        )
        let headSeen = try agent.statusObject()["headSeen"] as? [String: Any]
        let time = headSeen?["time"] as? Double ?? 0
        #expect(
            time + 0.01 >= (after[.modificationDate] as? Date)?.timeIntervalSince1970 ?? .infinity,
            "\(String(describing: headSeen))")
        #expect(
            try agent.run("status").stdout.contains("up to date with main (head \(a.prefix(7)), seen "))
        // A new head is written as before: a new file.
        let b = try repo.commit("b")
        #expect(try agent.run("poll").status == 0)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains(b))
    }
}
