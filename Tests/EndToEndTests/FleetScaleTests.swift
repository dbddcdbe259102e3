import Foundation
import ReleaseAgentTestSupport
import Testing

/// Fleet mode at scale (SPEC, "Fleet mode at scale"): the remote sees one `ls-remote` per poll
/// interval for the whole fleet, counted at a real `git http-backend`; a claimer killed -9
/// costs an interval, never the loop; a webhook on one host reaches every host.
@Suite("fleet at scale: one poll per interval for the whole fleet", .serialized)
struct FleetScaleTests {
    /// The host that claimed the newest poll interval, from etcd.
    private func newestClaimer(_ cluster: EtcdCluster) throws -> (interval: Int, host: String)? {
        let listed = try cluster.etcdctl(["get", "--prefix", "/release-agent/shop/poll/"])
        let lines = listed.stdout.split(separator: "\n").map(String.init)
        guard lines.count >= 2, let n = Int(lines[lines.count - 2].split(separator: "/").last ?? ""),
            let object = try? JSONSerialization.jsonObject(with: Data(lines[lines.count - 1].utf8)) as? [String: Any],
            let by = object["by"] as? String
        else { return nil }
        return (n, by)
    }

    @Test("5 serve agents: one ref advertisement per poll interval at the remote; a claimer killed -9 costs one")
    func onePollPerInterval() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("served/app"))
        let token = "tok-\(UUID().uuidString)"
        try (token + "\n").write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        let server = try GitHTTPServer(
            projectRoot: scratch.sub("served"), token: token, requestLog: scratch.sub("requests.log"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...5).map {
            try Host(
                "p\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--token-file", scratch.sub("token")], remote: server.url(for: "app/.git"))
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        var serves = try hosts.map { host in
            try host.serve(pollInterval: "2s")
        }
        #expect(eventually(timeout: 120) { hosts.allSatisfy { $0.agent.currentSHA == a } })

        // Idle: count the ref advertisements over whole intervals. Each host polling the
        // remote itself would be 5 an interval.
        let interval = 2.0
        var start = Date().timeIntervalSince1970
        // Begin just after an interval's boundary and its claim window (a tenth of it).
        usleep(useconds_t((interval - start.truncatingRemainder(dividingBy: interval) + 0.5) * 1_000_000))
        start = Date().timeIntervalSince1970
        let before = server.advertisements
        sleep(10)
        let after = server.advertisements
        let intervals = Int(Date().timeIntervalSince1970 / interval) - Int(start / interval)
        #expect(after - before >= 1, "no host asked the remote in \(intervals) intervals")
        #expect(
            after - before <= intervals + 1,
            "\(after - before) ref advertisements in \(intervals) poll intervals of 5 idle agents (one an interval is the promise)"
        )
        #expect(eventually(timeout: 10) { (try? newestClaimer(cluster)) != nil })

        // The claimer of the newest interval is killed -9; a push still reaches every other
        // host: another host claims the next interval.
        let claimer = try #require(try newestClaimer(cluster))
        let index = try #require(hosts.firstIndex { $0.id == claimer.host })
        kill(serves[index].running.pid, SIGKILL)
        _ = try? serves[index].running.wait(timeout: 10)
        let pushed = (time: Date().timeIntervalSince1970, advertisements: server.advertisements)
        let b = try repo.commit("b")
        let others = hosts.indices.filter { $0 != index }
        #expect(eventually(timeout: 90) { others.allSatisfy { hosts[$0].agent.currentSHA == b } })
        // The rollout of b asks the remote once an interval (the claimer) and once per host (its
        // fetch): the hosts in line take the branch head from etcd, not from the remote at
        // each step of their wait.
        let rolloutIntervals = Int(Date().timeIntervalSince1970 / interval) - Int(pushed.time / interval) + 1
        let asked = server.advertisements - pushed.advertisements
        #expect(
            asked <= rolloutIntervals + others.count,
            "\(asked) ref advertisements over a rollout of \(rolloutIntervals) intervals to \(others.count) hosts")
        let later = try #require(try newestClaimer(cluster))
        #expect(later.interval > claimer.interval && later.host != claimer.host, "\(later) after \(claimer)")
        #expect(hosts[index].agent.currentSHA == a)
        // Restarted, it takes its registration over at once and catches up from the published head.
        serves[index] = try hosts[index].serve(pollInterval: "2s")
        #expect(eventually(timeout: 90) { hosts[index].agent.currentSHA == b })
        // One at a time (fleet-max-parallel 1) throughout.
        #expect(eventually(timeout: 30) { activations(log).filter { $0.sha == b }.count == 5 })
        #expect(peak(activations(log).filter { $0.sha == b }) == 1)

        // Garbage written over `head` by hand: every serve names the key in its log, and the
        // next poll publishes the branch head over it (each host forgot the head it knew).
        _ = try cluster.etcdctl(["put", "/release-agent/shop/head", "not a head"])
        let named = "/release-agent/shop/head holds no published head"
        #expect(eventually(timeout: 30) { serves.allSatisfy { $0.running.stderrSoFar.contains(named) } })
        let head = { (try? cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"]).stdout) ?? "" }
        #expect(eventually(timeout: 30) { head().contains(b) }, "\(head())")
        // Garbage over `target`: the hosts hold, and each serve says why once, not every poll.
        _ = try cluster.etcdctl(["put", "/release-agent/shop/target", "not a target"])
        let held = "held: /release-agent/shop/target holds a value this agent cannot read"
        #expect(eventually(timeout: 30) { serves.allSatisfy { $0.running.stderrSoFar.contains(held) } })
        sleep(5)  // two more poll intervals
        for serve in serves {
            #expect(serve.running.stderrSoFar.components(separatedBy: held).count == 2, "\(serve.running.stderrSoFar)")
        }
        _ = try cluster.etcdctl(["del", "/release-agent/shop/target"])
        for serve in serves { _ = try serve.stop() }
    }

    @Test("polling off: a webhook on one host reaches every host through the published head")
    func webhookReachesAll() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("repo"))
        let log = scratch.sub("activations.log")
        let hosts = try (1...3).map {
            // The hook's hold (below) outlasts the default 10 s hook timeout of the fixture.
            try Host(
                "w\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--hook-timeout", "40s"])
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        let serves = try hosts.map { host in
            try host.serve(pollInterval: "0")
        }
        // At start no head is published: each host reads the remote once and publishes it.
        #expect(eventually(timeout: 120) { hosts.allSatisfy { $0.agent.currentSHA == a } })
        let b = try repo.commit("b")
        sleep(3)
        #expect(hosts.allSatisfy { $0.agent.currentSHA == a }, "a host deployed b with polling off and no webhook")
        let body = try JSONSerialization.data(withJSONObject: [
            "ref": "refs/heads/main", "after": b, "deleted": false,
        ])
        let headers = [
            "X-GitHub-Event": "push", "X-GitHub-Delivery": UUID().uuidString, "Content-Type": "application/json",
        ]
        let reply = try TestHTTP.send("POST", serves[1].base + "/webhook", headers: headers, body: body)
        #expect(reply.status == 202 || reply.status == 200, "\(reply.status) \(reply.body)")
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == b } })
        let head = try cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"])
        #expect(head.stdout.contains(b) && head.stdout.contains(#""by":"w2""#), "\(head.stdout)")
        #expect(peak(activations(log).filter { $0.sha == b }) == 1)

        // A webhook to a host that waits in line is published at once, not when its wait
        // ends: the hosts waiting for the older sha move on to the newer one, the receiver
        // too. Before, w2 and w3 activated c, already superseded (the adversarial helper).
        func webhook(_ serve: ServeProcess, _ sha: String) throws {
            let body = try JSONSerialization.data(withJSONObject: [
                "ref": "refs/heads/main", "after": sha, "deleted": false,
            ])
            var headers = headers
            headers["X-GitHub-Delivery"] = UUID().uuidString
            let reply = try TestHTTP.send("POST", serve.base + "/webhook", headers: headers, body: body)
            #expect(reply.status == 202, "\(reply.status) \(reply.body)")
        }
        // Whichever host takes the slot for c holds it (each hook holds while HOLD is there).
        let holds = hosts.map { $0.agent.root + "/HOLD" }
        for file in holds { FileManager.default.createFile(atPath: file, contents: nil) }
        let c = try repo.commit("c")
        try webhook(serves[0], c)
        #expect(
            eventually(timeout: 60) { hosts.filter { $0.phase == "waiting-slot" }.count == 2 },
            "\(hosts.map { "\($0.id): \($0.phase ?? "-") \($0.detail ?? "-")" })")
        let holder = try #require(hosts.firstIndex { $0.phase != "waiting-slot" })
        let receiver = try #require(hosts.indices.first { $0 != holder })
        let d = try repo.commit("d")
        try webhook(serves[receiver], d)
        #expect(
            eventually(timeout: 20) {
                (try? cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"]))?.stdout.contains(d)
                    == true
            }, "the webhook's head was not published while its receiver waited")
        // Published while the holder still held the slot (the hook's hold lasts at most 30 s).
        let holderID = hosts[holder].id
        let ended = (try? String(contentsOfFile: log, encoding: .utf8))?.contains("end \(holderID) \(c)") ?? false
        #expect(!ended, "\(holderID) ended its activation of c before d was published: the check proves nothing")
        for file in holds { unlink(file) }
        #expect(eventually(timeout: 90) { hosts.allSatisfy { $0.agent.currentSHA == d } })
        let started = activations(log)
        #expect(!started.contains { $0.sha == c && $0.host != holderID }, "\(started.filter { $0.sha == c })")
        for serve in serves { _ = try serve.stop() }
    }

    @Test(
        "serves killed -9 first and second in line for a slot: the line goes on after fleet-lease-ttl, not fleet-presence-ttl"
    )
    func deadWaiters() throws {
        // The first host to get the slot holds in its activate hook; three wait in line.
        let line = try WaitingLine(4, prefix: "d")
        defer { line.stopApps() }
        let (hosts, serves, b) = (line.hosts, line.serves, line.b)
        guard line.order.count == 4 else { return }
        let (holderIndex, first, second, last) = (line.order[0], line.order[1], line.order[2], line.order[3])
        // The first waiter moved to a short lease; the second is still on its presence lease
        // (3m): killed, each costs the line fleet-lease-ttl (3s) before the next goes.
        kill(serves[first].running.pid, SIGKILL)
        kill(serves[second].running.pid, SIGKILL)
        unlink(hosts[holderIndex].agent.root + "/HOLD")
        unlink(hosts[last].agent.root + "/HOLD")
        let slots = { (try? line.cluster.etcdctl(["get", "--prefix", "/release-agent/shop/slots/"]).stdout) ?? "" }
        #expect(eventually(timeout: 60) { hosts[last].agent.currentSHA == b }, "\(line.states) \(slots())")
        #expect(
            serves[last].running.stderrSoFar.contains("ahead in line, did not move within fleet-lease-ttl"))
        #expect(peak(activations(line.log).filter { $0.sha == b }) == 1)
        for index in [holderIndex, last] { _ = try serves[index].stop() }
    }

    @Test(
        "serves killed -9 second and third in line, the first alive: the fourth goes on after fleet-lease-ttl, not the 60 s quiet step"
    )
    func deadWaitersBehindALiveOne() throws {
        let line = try WaitingLine(5, prefix: "e")
        defer { line.stopApps() }
        let (hosts, serves, b, order, log) = (line.hosts, line.serves, line.b, line.order, line.log)
        guard order.count == 5 else { return }
        // The second and third waiters sit on their presence lease (3m): no event ends it. The
        // fourth must see the first take its slot, then give their places up, one
        // fleet-lease-ttl (3s) each; watching only the two keys just ahead, it slept 60 s.
        kill(serves[order[2]].running.pid, SIGKILL)
        kill(serves[order[3]].running.pid, SIGKILL)
        for index in [order[0], order[1], order[4]] { unlink(hosts[index].agent.root + "/HOLD") }
        let fourth = hosts[order[4]]
        #expect(
            eventually(timeout: 40) { fourth.agent.currentSHA == b }, "\(line.states)")
        let given = serves[order[4]].running.stderrSoFar
        for dead in [order[2], order[3]] {
            #expect(given.contains("\(hosts[dead].id), ahead in line, did not move within fleet-lease-ttl"), "\(given)")
        }
        #expect(peak(activations(log).filter { $0.sha == b }) == 1)
        for index in [order[0], order[1], order[4]] { _ = try serves[index].stop() }
    }

    @Test("cron polls in fleet mode: one host asks the remote per poll interval, the others take its head")
    func cronPollsShareTheInterval() throws {
        let scratch = Scratch()
        let cluster = try EtcdCluster(dir: scratch.sub("etcd"))
        let repo = try GitFixture(at: scratch.sub("served/app"))
        let token = "tok-\(UUID().uuidString)"
        try (token + "\n").write(toFile: scratch.sub("token"), atomically: true, encoding: .utf8)
        let server = try GitHTTPServer(
            projectRoot: scratch.sub("served"), token: token, requestLog: scratch.sub("requests.log"))
        let log = scratch.sub("activations.log")
        // A 20 s poll interval: each round below starts just after an interval begins, and is
        // allowed one more ask for each boundary it crosses all the same on a loaded machine.
        let interval = 20.0
        let hosts = try (1...3).map {
            try Host(
                "c\($0)", scratch: scratch, repo: repo, etcd: cluster.endpoints, log: log,
                extra: ["--token-file", scratch.sub("token"), "--poll-interval", "20s"],
                remote: server.url(for: "app/.git"))
        }
        defer { hosts.forEach { DemoService.stopAll(root: $0.agent.root) } }
        /// Sleeps (at most one interval) until the next interval begins; returns its number.
        func intervalBegins() -> Int {
            let now = Date().timeIntervalSince1970
            let next = (now / interval).rounded(.down) + 1
            Thread.sleep(forTimeInterval: next * interval - now + 0.2)
            return Int(next)
        }
        func intervals(since n: Int) -> Int { Int(Date().timeIntervalSince1970 / interval) - n + 1 }
        let a = try repo.commit("a", files: ["app.py": DemoService.app])
        // The three hosts' cron fire at once.
        func pollAll() throws -> [CommandResult] {
            try hosts.map { try $0.agent.start("poll", $0.arguments) }.map { try $0.wait(timeout: 120) }
        }
        var n = intervalBegins()
        var before = server.advertisements
        let first = try pollAll()
        #expect(first.allSatisfy { $0.status == 0 }, "\(first.map(\.stderr))")
        #expect(hosts.allSatisfy { $0.agent.currentSHA == a })
        // One ls-remote for the interval, then each host's fetch of a (each host asking: 6).
        #expect(
            server.advertisements - before <= intervals(since: n) + hosts.count, "\(server.advertisements - before)")
        let head = try cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"]).stdout
        #expect(head.contains(a), "\(head)")

        // The steady state: nothing new, a new interval. The claimer asks and marks its claim
        // checked; the others take the head (each host asking: 3, and the others waited 2 s).
        n = intervalBegins()
        before = server.advertisements
        let second = try pollAll()
        #expect(second.allSatisfy { $0.status == 0 && $0.stdout.isEmpty }, "\(second.map(\.stdout))")
        #expect(
            server.advertisements - before <= intervals(since: n),
            "\(server.advertisements - before) ref advertisements")
        let claims = try cluster.etcdctl(["get", "/release-agent/shop/poll/", "--prefix", "--print-value-only"]).stdout
        #expect(claims.contains("\"checked\":\"\(a)\""), "\(claims)")

        // Again in the same interval: every host takes the checked answer, none asks.
        before = server.advertisements
        let third = try pollAll()
        #expect(third.allSatisfy { $0.status == 0 && $0.stdout.isEmpty }, "\(third.map(\.stdout))")
        #expect(
            server.advertisements - before <= intervals(since: n) - 1,
            "\(server.advertisements - before) ref advertisements")

        // Garbage under `head` and a new commit: the claimer names the key and publishes over
        // it, the others take that; none asks the remote in line (it was 17 GETs).
        _ = try cluster.etcdctl(["put", "/release-agent/shop/head", "not a head"])
        let b = try repo.commit("b", files: ["app.py": DemoService.app + "\n# b\n"])
        n = intervalBegins()
        before = server.advertisements
        let fourth = try pollAll()
        #expect(fourth.allSatisfy { $0.status == 0 }, "\(fourth.map(\.stderr))")
        #expect(hosts.allSatisfy { $0.agent.currentSHA == b })
        // The claimer names it; a poll that came after its put saw a head, not the garbage.
        #expect(
            fourth.contains { ($0.stdout + $0.stderr).contains("/release-agent/shop/head holds no published head") },
            "\(fourth.map(\.stdout))")
        #expect(
            server.advertisements - before <= intervals(since: n) + hosts.count, "\(server.advertisements - before)")
        let republished = try cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"]).stdout
        #expect(republished.contains(b), "\(republished)")

        // A stale `head` (a, older than the live b) and an interval claimed by a host that
        // never answers but vouches for it: the hosts take a, fetch the branch (c), put c over
        // the stale head, and activate c. Before, each waited behind "a is newer and
        // supersedes c" for the whole interval (the adversarial helper's F2).
        let c = try repo.commit("c", files: ["app.py": DemoService.app + "\n# c\n"])
        func claim(checked: String) throws -> Int {
            var n = Int(Date().timeIntervalSince1970 / interval) + 1
            if Double(n) * interval - Date().timeIntervalSince1970 < 2 { n = intervalBegins() + 1 }
            let key = "/release-agent/shop/poll/" + String(format: "%020d", n)
            let value = "{\"by\":\"h9\",\"time\":\(Double(n) * interval),\"checked\":\"\(checked)\"}"
            _ = try cluster.etcdctl(["put", key, value])
            return n
        }
        _ = try cluster.etcdctl(["put", "/release-agent/shop/head", "{\"sha\":\"\(a)\",\"time\":1,\"by\":\"h9\"}"])
        n = try claim(checked: a)
        #expect(intervalBegins() == n)
        let fifth = try pollAll()
        #expect(fifth.allSatisfy { $0.status == 0 }, "\(fifth.map(\.stderr))")
        #expect(hosts.allSatisfy { $0.agent.currentSHA == c }, "\(fifth.map(\.stdout))")
        #expect(!fifth.contains { $0.stdout.contains("supersedes") }, "\(fifth.map(\.stdout))")
        let fresh = try cluster.etcdctl(["get", "/release-agent/shop/head", "--print-value-only"]).stdout
        #expect(fresh.contains(c), "\(fresh)")

        // A claim checked at another head than etcd's is named, not trusted: each host asks.
        n = try claim(checked: b)
        #expect(intervalBegins() == n)
        let sixth = try pollAll()
        #expect(sixth.allSatisfy { $0.status == 0 }, "\(sixth.map(\.stderr))")
        #expect(
            sixth.allSatisfy {
                ($0.stdout + $0.stderr).contains(
                    "says the branch was checked at \(b), but the fleet's head is \(c.prefix(12))")
            }, "\(sixth.map { $0.stdout + $0.stderr })")
        #expect(hosts.allSatisfy { $0.agent.currentSHA == c })
    }
}
