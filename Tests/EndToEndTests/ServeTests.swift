import Foundation
import ReleaseAgentTestSupport
import Testing

private let secret = "s3cret-for-tests"

private func push(_ ref: String, extra: [String: Any] = [:]) -> Data {
    var object: [String: Any] = ["ref": ref, "after": "1111111111111111111111111111111111111111", "deleted": false]
    object.merge(extra) { $1 }
    return (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
}

private func github(_ event: String, _ body: Data, delivery: String = UUID().uuidString, signature: String? = nil)
    -> [String: String]
{
    [
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
        "X-Hub-Signature-256": signature ?? TestHTTP.githubSignature(body, secret: secret),
    ]
}

@Suite("serve: the webhook endpoint", .serialized)
struct ServeTests {
    private func setUp(_ scratch: Scratch, extra: [String] = []) throws -> (GitFixture, Agent, [String]) {
        let repo = try GitFixture(at: scratch.sub("repo"))
        let agent = try Agent(root: scratch.sub("root"), repo: repo.path)
        try secret.write(toFile: scratch.sub("secret"), atomically: true, encoding: .utf8)
        return (repo, agent, ["--webhook-secret-file", scratch.sub("secret"), "--poll-interval", "0"] + extra)
    }

    private func historyCount(_ agent: Agent) throws -> Int {
        let history = try agent.run("history", ["--json", "-n", "1000"])
        return (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [Any])?.count ?? -1
    }

    @Test("every status the SPEC lists; no rejected request deploys; duplicates are answered once")
    func statusCodes() throws {
        let scratch = Scratch()
        let (repo, agent, arguments) = try setUp(scratch)
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let b = try repo.commit("b")
        let serve = try ServeProcess(agent: agent, arguments: arguments)
        let url = serve.base + "/webhook"
        let good = push("refs/heads/main")

        func post(_ headers: [String: String], _ body: Data) throws -> TestHTTP.Reply {
            try TestHTTP.send("POST", url, headers: headers, body: body)
        }
        let rejected: [(String, TestHTTP.Reply, Int)] = [
            ("GET", try TestHTTP.send("GET", url), 405),
            ("PUT", try TestHTTP.send("PUT", url, body: good), 405),
            ("no signature", try post(["X-GitHub-Event": "push", "X-GitHub-Delivery": "d1"], good), 401),
            (
                "bad signature",
                try post(github("push", good, signature: "sha256=" + String(repeating: "0", count: 64)), good), 401
            ),
            ("signature of another body", try post(github("push", push("refs/heads/other")), good), 401),
            ("not hex", try post(github("push", good, signature: "sha256=xyz"), good), 401),
            (
                "no event header",
                try post(["X-Hub-Signature-256": TestHTTP.githubSignature(good, secret: secret)], good), 400
            ),
            ("malformed JSON", try post(github("push", Data("{not json".utf8)), Data("{not json".utf8)), 400),
            ("no ref", try post(github("push", Data("{}".utf8)), Data("{}".utf8)), 400),
            ("wrong gitlab token", try post(["X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"], good), 401),
            (
                "bad gitea signature",
                try post(["X-Gitea-Event": "push", "X-Gitea-Signature": String(repeating: "a", count: 64)], good), 401
            ),
        ]
        for (name, reply, status) in rejected {
            #expect(reply.status == status, "\(name): \(reply.status) \(reply.body)")
        }
        let huge = Data(count: 25 * 1024 * 1024 + 1)
        #expect(try post(github("push", huge), huge).status == 413)

        let ignored: [(String, Data, String)] = [
            ("other branch", push("refs/heads/feature"), "push"), ("tag", push("refs/tags/v1"), "push"),
            ("deleted", push("refs/heads/main", extra: ["deleted": true]), "push"),
            ("other event", push("refs/heads/main"), "issues"),
        ]
        for (name, body, event) in ignored {
            let reply = try post(github(event, body), body)
            #expect(reply.status == 202, "\(name): \(reply.status)")
            #expect(reply.body.contains("ignored"), "\(name): \(reply.body)")
        }
        let ping = try post(github("ping", Data("{}".utf8)), Data("{}".utf8))
        #expect(ping.status == 200)
        usleep(300_000)
        #expect(agent.currentSHA == a, "a rejected or ignored request deployed")
        #expect(try historyCount(agent) == 1)

        let delivery = UUID().uuidString
        let accepted = try post(github("push", good, delivery: delivery), good)
        #expect(accepted.status == 202, "\(accepted.body)")
        #expect(eventually { agent.currentSHA == b })
        let c = try repo.commit("c")
        let duplicate = try post(github("push", good, delivery: delivery), good)
        #expect(duplicate.status == 200)
        #expect(duplicate.body.contains("\"duplicate\":true"))
        usleep(500_000)
        #expect(agent.currentSHA == b, "a duplicate delivery deployed")

        let gitea = try post(["X-Gitea-Event": "push", "X-Gitea-Signature": TestHTTP.hmac(good, secret: secret)], good)
        #expect(gitea.status == 202)
        #expect(eventually { agent.currentSHA == c })
        let d = try repo.commit("d")
        let gitlab = try post(["X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret], good)
        #expect(gitlab.status == 202)
        #expect(eventually { agent.currentSHA == d })

        // current moves at the swap; the deploy ends a moment later (record, history, prune).
        var health = try TestHTTP.send("GET", serve.base + "/healthz")
        #expect(
            eventually(timeout: 10) {
                health = (try? TestHTTP.send("GET", serve.base + "/healthz")) ?? health
                return health.body.contains("\"deploying\":false")
            }, "\(health.body)")
        #expect(health.status == 200)
        #expect(health.body.contains(d))
        let metrics = try TestHTTP.send("GET", serve.base + "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains(#"release_agent_deploys_total{result="ok"} 4"#), "\(metrics.body)")
        #expect(metrics.body.contains("release_agent_webhook_requests_total"))
        let influx = try TestHTTP.send("GET", serve.base + "/metrics?format=influx")
        #expect(influx.body.contains("release_agent_deploys,result=ok count=4i"))
        #expect(try TestHTTP.send("POST", serve.base + "/healthz").status == 405)
        let stopped = try serve.stop()
        #expect(stopped.status == 0, "\(stopped.stderr)")
    }

    @Test("serve refuses to start without a secret (exit 2) unless --allow-unsigned")
    func needsSecret() throws {
        let scratch = Scratch()
        let (repo, agent, _) = try setUp(scratch)
        try repo.commit("a")
        let refused = try agent.run("serve", ["--listen", "127.0.0.1:\(freePort())"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("webhook-secret-file"))
        let serve = try ServeProcess(agent: agent, arguments: ["--allow-unsigned", "--poll-interval", "0"])
        let body = push("refs/heads/main")
        let reply = try TestHTTP.send("POST", serve.base + "/webhook", headers: ["X-GitHub-Event": "push"], body: body)
        #expect(reply.status == 202)
        #expect(eventually { agent.currentSHA != nil })
        #expect(try serve.stop().status == 0)
    }

    @Test("deploy, serve and a poll that must fetch exec release-agent-full beside the binary (through a symlink too)")
    func fullBinaryBeside() throws {
        let scratch = Scratch()
        let (repo, agent, _) = try setUp(scratch)
        let alone = scratch.sub("alone")
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: agent.binary, toPath: alone + "/release-agent")
        let settings = ["--root", agent.root, "--repo", agent.repo]
        for command in ["serve", "deploy", "poll"] {
            let missing = try ShellCommand.run([alone + "/release-agent", command] + settings)
            #expect(missing.status == 2, "\(command)")
            #expect(
                missing.stderr
                    == "Error: \(command) runs \(alone)/release-agent-full, which cannot be started (No such file or directory); install release-agent-full next to release-agent (see the README)\n"
            )
        }
        #expect(agent.releaseDirs().isEmpty, "nothing may be deployed")
        // With the commit live, a no-op poll is settled without the full binary.
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let idle = try ShellCommand.run([alone + "/release-agent", "poll"] + settings)
        #expect(idle.status == 0 && idle.stderr.isEmpty, "\(idle.stderr)")
        #expect(agent.currentSHA == a)
        // A symlink to the installed binary (/usr/local/bin -> /opt/...) finds its real neighbour.
        try FileManager.default.createSymbolicLink(atPath: alone + "/linked", withDestinationPath: agent.binary)
        let linked = try ShellCommand.run([alone + "/linked", "serve"] + settings)
        #expect(linked.status == 2)
        #expect(linked.stderr.contains("serve needs a webhook secret"), "\(linked.stderr)")
    }

    @Test("tokens protect /healthz and /metrics: query parameter or bearer")
    func tokens() throws {
        let scratch = Scratch()
        let (repo, agent, arguments) = try setUp(scratch, extra: ["--metrics-token", "mt", "--health-token", "ht"])
        try repo.commit("a")
        let serveArgs = arguments
        let port = freePort()
        let running = try agent.start("serve", ["--listen", "127.0.0.1:\(port)"] + serveArgs)
        defer {
            kill(running.pid, SIGKILL)
            _ = try? running.wait(timeout: 10)
        }
        let base = "http://127.0.0.1:\(port)"
        #expect(
            eventually(timeout: 30) {
                (try? TestHTTP.send("GET", base + "/healthz?token=ht", timeout: 2))?.status == 200
            })
        #expect(try TestHTTP.send("GET", base + "/healthz").status == 401)
        #expect(try TestHTTP.send("GET", base + "/healthz", headers: ["Authorization": "Bearer ht"]).status == 200)
        #expect(try TestHTTP.send("GET", base + "/metrics").status == 401)
        #expect(try TestHTTP.send("GET", base + "/metrics?token=wrong").status == 401)
        #expect(try TestHTTP.send("GET", base + "/metrics", headers: ["Authorization": "Bearer mt"]).status == 200)
    }

    @Test("20 pushes during a slow build: at most 2 builds, and the newest head ends up live")
    func coalescing() throws {
        let scratch = Scratch()
        let counter = scratch.sub("builds")
        let marker = scratch.sub("building")
        let gate = scratch.sub("gate")
        // The first build holds until every push is in (bounded: 60 s), however slow they are.
        let hold = "n=0; while [ ! -e \(gate) ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done"
        let (repo, agent, arguments) = try setUp(
            scratch, extra: ["--build", "echo $RELEASE_SHA >> \(counter); touch \(marker); \(hold)"])
        try repo.commit("base")
        let serve = try ServeProcess(agent: agent, arguments: arguments)
        let body = push("refs/heads/main")
        func send() throws -> Int {
            try TestHTTP.send("POST", serve.base + "/webhook", headers: github("push", body), body: body).status
        }
        #expect(try send() == 202)
        #expect(Agent.waitForFile(marker))
        var newest = ""
        for n in 1...19 {
            newest = try repo.commit("push \(n)")
            #expect(try send() == 202)
        }
        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(eventually(timeout: 90) { agent.currentSHA == newest })
        let builds = try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n")
        #expect(builds.count <= 2, "\(builds.count) builds")
        #expect(builds.last.map(String.init) == newest)
        #expect(try serve.stop().status == 0)
    }

    @Test("SIGTERM during a deploy: exit 0, current on a ready release, the build gone")
    func sigtermDuringDeploy() throws {
        let scratch = Scratch()
        let marker = scratch.sub("building")
        let (repo, agent, arguments) = try setUp(
            scratch,
            extra: ["--shutdown-grace", "1s", "--build", "test -e SLOW || exit 0; echo $$ > \(marker); sleep 120"])
        let a = try repo.commit("a")
        #expect(try agent.run("deploy").status == 0)
        let slow = try repo.commit("slow", files: ["SLOW": "1"])
        let serve = try ServeProcess(agent: agent, arguments: arguments)
        let body = push("refs/heads/main")
        #expect(
            try TestHTTP.send("POST", serve.base + "/webhook", headers: github("push", body), body: body).status == 202)
        #expect(Agent.waitForFile(marker))
        let buildPid =
            Int32(try String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            ?? 0
        let result = try serve.stop(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(agent.currentSHA == a)
        #expect(agent.recordState(a) == "active")
        #expect(eventually(timeout: 10) { kill(buildPid, 0) != 0 || isZombie(buildPid) })
        #expect(!agent.releaseDirs().contains(slow))
        // Not quarantined: the next deploy builds it (and here it still hangs, so just check status).
        let status = try agent.run("status")
        #expect(!status.stdout.contains("quarantined"))
    }
}
