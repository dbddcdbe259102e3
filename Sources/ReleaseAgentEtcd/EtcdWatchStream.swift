import AsyncHTTPClient
import Foundation
import NIOCore

/// A key (or every key under it) to watch on a long-lived stream.
public struct EtcdWatchKey: Sendable {
    public var key: String
    public var prefix: Bool

    public init(_ key: String, prefix: Bool = false) {
        self.key = key
        self.prefix = prefix
    }
}

/// Why a long-lived watch stream ended.
public enum EtcdWatchEnd: Sendable, Equatable {
    /// The member closed it or went away; go on from the revision after `lastRevision`.
    case lost(lastRevision: Int64?, why: String)
    /// etcd compacted the history the watch would start from: read the keys again.
    case compacted
}

extension EtcdClient {
    /// One streaming request that holds a watch on each of `keys` from `fromRevision` on (the
    /// gateway takes several `create_request`s in one body, and tags each answer with its
    /// watch id), handing each batch of events to `handle` for as long as it stays open: a
    /// watch held open costs etcd no request, so an idle host creates none. It ends when the
    /// member goes away, etcd cancels it (a compaction) or the calling task is cancelled.
    /// Unlike `watch`, no read timeout applies: an idle stream is the normal case.
    public func watchStream(
        _ keys: [EtcdWatchKey], fromRevision: Int64, handle: @Sendable ([EtcdEvent]) async -> Void
    ) async throws -> EtcdWatchEnd {
        let token = try self.token()
        let endpoint = lock.withLock { endpoints[preferredIndex % endpoints.count] }
        var body = Data()
        for watched in keys {
            var create = Self.rangeBody(watched.key, prefix: watched.prefix)
            create["start_revision"] = String(fromRevision)
            body += try JSONSerialization.data(withJSONObject: ["create_request": create])
        }
        var request = HTTPClientRequest(url: endpoint.absoluteString.trimmingSuffix("/") + "/v3/watch")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(ByteBuffer(bytes: body))
        var last: Int64?
        do {
            let response = try await streamHTTP.execute(request, timeout: .hours(24 * 365))
            guard response.status == .ok else {
                nextEndpoint()
                return .lost(lastRevision: nil, why: "HTTP \(response.status.code) from \(endpoint.absoluteString)")
            }
            var lines = WatchLines()
            for try await part in response.body {
                for object in lines.append(part) {
                    if let error = object["error"] as? [String: Any] {
                        let code = Self.int64(error["grpc_code"] ?? error["code"]).map(Int.init) ?? 14
                        guard code == 14 || code == 4 else { throw refusal(code: code, key: keys.first?.key) }
                        nextEndpoint()
                        return .lost(lastRevision: last, why: "the member stopped the watch (gRPC code \(code))")
                    }
                    guard let result = object["result"] as? [String: Any] else { continue }
                    if Self.int64(result["compact_revision"]).map({ $0 > 0 }) == true { return .compacted }
                    if result["canceled"] as? Bool == true {
                        return .lost(lastRevision: last, why: "etcd cancelled the watch")
                    }
                    let events = ((result["events"] as? [[String: Any]]) ?? []).compactMap(Self.decodeEvent)
                    if let newest = events.map(\.kv.modRevision).max() { last = max(last ?? 0, newest) }
                    if !events.isEmpty { await handle(events) }
                }
            }
            nextEndpoint()
            return .lost(lastRevision: last, why: "\(endpoint.absoluteString) closed the watch")
        } catch let error as EtcdError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            nextEndpoint()
            return .lost(lastRevision: last, why: "\(endpoint.absoluteString): \(Self.connectionFailure(error))")
        }
    }

    static func decodeEvent(_ event: [String: Any]) -> EtcdEvent? {
        guard let kv = (event["kv"] as? [String: Any]).flatMap({ try? decodeKeyValue($0) }) else { return nil }
        return EtcdEvent(kind: event["type"] as? String == "DELETE" ? .delete : .put, kv: kv)
    }
}

/// Splits the watch stream into its JSON objects, one a line.
private struct WatchLines {
    var buffer = Data()

    mutating func append(_ part: ByteBuffer) -> [[String: Any]] {
        buffer.append(contentsOf: part.readableBytesView)
        var objects: [[String: Any]] = []
        while let end = buffer.firstIndex(of: 0x0A) {
            let line = buffer[buffer.startIndex..<end]
            buffer = Data(buffer[buffer.index(after: end)...])
            if let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] { objects.append(object) }
        }
        return objects
    }
}
