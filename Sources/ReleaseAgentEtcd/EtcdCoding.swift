import Foundation

/// JSON shapes of the v3 gateway: keys and values in base64, 64-bit numbers as strings.
extension EtcdClient {
    static func int64(_ value: Any?) -> Int64? {
        switch value {
        case let text as String: return Int64(text)
        case let number as NSNumber: return number.int64Value
        default: return nil
        }
    }

    static func revision(_ answer: [String: Any]) -> Int64 {
        int64((answer["header"] as? [String: Any])?["revision"]) ?? 0
    }

    static func rangeBody(_ key: String, prefix: Bool) -> [String: Any] {
        var body: [String: Any] = ["key": key.base64]
        if prefix { body["range_end"] = key.prefixEnd }
        return body
    }

    static func decodeKeyValue(_ object: [String: Any]) throws -> EtcdKeyValue {
        guard let key64 = object["key"] as? String, let key = Data(base64Encoded: key64) else {
            throw EtcdError(.badAnswer, "etcd sent a key that is not base64")
        }
        let value = (object["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return EtcdKeyValue(
            key: String(decoding: key, as: UTF8.self), value: value,
            createRevision: int64(object["create_revision"]) ?? 0, modRevision: int64(object["mod_revision"]) ?? 0,
            version: int64(object["version"]) ?? 0, lease: int64(object["lease"]) ?? 0)
    }

    static func decodeRange(_ answer: [String: Any]) throws -> EtcdRange {
        let kvs = try (answer["kvs"] as? [[String: Any]] ?? []).map(decodeKeyValue)
        return EtcdRange(kvs: kvs, revision: revision(answer), count: int64(answer["count"]) ?? Int64(kvs.count))
    }

    static func compareBody(_ compare: EtcdCompare) -> [String: Any] {
        var body: [String: Any] = ["key": compare.key.base64, "result": compare.result.rawValue]
        switch compare.target {
        case .modRevision(let revision):
            body["target"] = "MOD"
            body["mod_revision"] = String(revision)
        case .createRevision(let revision):
            body["target"] = "CREATE"
            body["create_revision"] = String(revision)
        case .version(let version):
            body["target"] = "VERSION"
            body["version"] = String(version)
        case .value(let value):
            body["target"] = "VALUE"
            body["value"] = value.base64
        }
        return body
    }

    static func operationBody(_ operation: EtcdOperation) -> [String: Any] {
        switch operation {
        case .put(let key, let value, let lease):
            var put: [String: Any] = ["key": key.base64, "value": value.base64]
            if let lease { put["lease"] = String(lease) }
            return ["request_put": put]
        case .delete(let key):
            return ["request_delete_range": ["key": key.base64]]
        case .deleteRange(let key, let end):
            return ["request_delete_range": ["key": key.base64, "range_end": end.base64]]
        case .range(let key, let prefix):
            return ["request_range": rangeBody(key, prefix: prefix)]
        }
    }
}
