import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

extension EtcdClient {
    /// Watches `key` (every key under it with `prefix`) from `fromRevision` on and hands each
    /// batch of events to `matches` until it returns true (then true) or `timeout` passes (then
    /// false). One streaming request, no polling; when a member goes away mid-watch the watch
    /// goes on at the next endpoint from the revision after the last event seen.
    public func watch(
        _ key: String, prefix: Bool, fromRevision: Int64, timeout: Duration,
        matches: @escaping @Sendable ([EtcdEvent]) -> Bool
    ) throws -> Bool {
        try watch([EtcdWatchKey(key, prefix: prefix)], fromRevision: fromRevision, timeout: timeout, matches: matches)
    }

    /// As above, for several keys on one stream (one request however many keys). `stop` is
    /// looked at every 50 ms while the stream is quiet (a shutdown ends the wait at once, not
    /// at `timeout`); it costs etcd nothing.
    public func watch(
        _ keys: [EtcdWatchKey], fromRevision: Int64, timeout: Duration, stop: (() -> Bool)? = nil,
        matches: @escaping @Sendable ([EtcdEvent]) -> Bool
    ) throws -> Bool {
        let key = keys.first?.key ?? ""
        let deadline = ContinuousClock.now + timeout
        var next = fromRevision
        var failures: [String] = []
        var index = 0
        var idleRounds = 0
        var renewed = false
        while ContinuousClock.now < deadline {
            let token = try self.token()
            let endpoint = endpoints[index % endpoints.count]
            let delegate = WatchDelegate(matches: matches)
            let request = try watchRequest(keys, from: next, at: endpoint, token: token)
            let task = http.execute(request: request, delegate: delegate)
            var waited = DispatchTimeoutResult.timedOut
            while ContinuousClock.now < deadline {
                let slice = min(deadline - ContinuousClock.now, stop == nil ? timeout : .milliseconds(50))
                waited = delegate.done.wait(timeout: .now() + slice.timeInterval)
                if waited == .success || stop?() == true { break }
            }
            task.cancel()
            _ = try? task.futureResult.wait()
            let outcome = delegate.outcome
            if outcome.matched { return true }
            if let code = outcome.errorCode, code != 14, code != 4 {
                // A token etcd no longer takes is renewed once, as for every other call.
                if token != nil, code == 16 || code == 3, !renewed {
                    renewed = true
                    dropToken()
                    continue
                }
                throw refusal(code: code, key: key)
            }
            if waited == .timedOut { return false }
            if stop?() == true { return false }
            // The stream ended or never started: go on from what was seen, at the next member.
            if let seen = outcome.lastRevision { next = max(next, seen + 1) }
            if !outcome.created {
                failures.append("\(endpoint.absoluteString): \(outcome.failure ?? "no watch stream")")
                idleRounds += 1
                if idleRounds >= endpoints.count {
                    throw EtcdError(
                        .unavailable,
                        "no etcd endpoint took the watch on \(key) (\(failures.suffix(endpoints.count).joined(separator: "; "))); check the cluster"
                    )
                }
            } else {
                idleRounds = 0
            }
            index += 1
        }
        return false
    }
}

extension EtcdClient {
    /// One watch stream's request: a create request per key, from revision `from` on.
    fileprivate func watchRequest(_ keys: [EtcdWatchKey], from next: Int64, at endpoint: URL, token: String?) throws
        -> HTTPClient.Request
    {
        var data = Data()
        for watched in keys {
            var body = Self.rangeBody(watched.key, prefix: watched.prefix)
            body["start_revision"] = String(next)
            data += try JSONSerialization.data(withJSONObject: ["create_request": body])
        }
        let url = endpoint.absoluteString.trimmingSuffix("/") + "/v3/watch"
        var request = try HTTPClient.Request(url: url, method: .POST)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .byteBuffer(ByteBuffer(bytes: data))
        return request
    }
}

/// Reads the watch stream: one JSON object per line, `{"result": {...}}` or `{"error": ...}`.
private final class WatchDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    struct Outcome {
        var matched = false
        var created = false
        var lastRevision: Int64?
        var errorCode: Int?
        var failure: String?
    }

    let done = DispatchSemaphore(value: 0)
    private let matches: @Sendable ([EtcdEvent]) -> Bool
    private let lock = NSLock()
    private var buffer = Data()
    private var state = Outcome()
    private var finished = false

    init(matches: @escaping @Sendable ([EtcdEvent]) -> Bool) { self.matches = matches }

    var outcome: Outcome { lock.withLock { state } }

    private func finish() {
        let first = lock.withLock { () -> Bool in
            defer { finished = true }
            return !finished
        }
        if first { done.signal() }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        if head.status != .ok { lock.withLock { state.failure = "HTTP \(head.status.code)" } }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        lock.withLock { buffer.append(contentsOf: part.readableBytesView) }
        while let line = nextLine() {
            guard let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { continue }
            if let error = object["error"] as? [String: Any] {
                lock.withLock {
                    state.errorCode = EtcdClient.int64(error["grpc_code"] ?? error["code"]).map(Int.init) ?? 14
                }
                finish()
                continue
            }
            guard let result = object["result"] as? [String: Any] else { continue }
            lock.withLock { state.created = true }
            let events = ((result["events"] as? [[String: Any]]) ?? []).compactMap { event -> EtcdEvent? in
                guard let kv = (event["kv"] as? [String: Any]).flatMap({ try? EtcdClient.decodeKeyValue($0) }) else {
                    return nil
                }
                return EtcdEvent(kind: event["type"] as? String == "DELETE" ? .delete : .put, kv: kv)
            }
            if let last = events.map(\.kv.modRevision).max() { lock.withLock { state.lastRevision = last } }
            if result["canceled"] as? Bool == true { finish() }
            if !events.isEmpty && matches(events) {
                lock.withLock { state.matched = true }
                finish()
            }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    private func nextLine() -> Data? {
        lock.withLock {
            guard let end = buffer.firstIndex(of: 0x0A) else { return nil }
            let line = buffer[buffer.startIndex..<end]
            buffer = Data(buffer[buffer.index(after: end)...])
            return Data(line)
        }
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) {
        lock.withLock { if state.failure == nil { state.failure = EtcdClient.connectionFailure(error) } }
        finish()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        finish()
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
