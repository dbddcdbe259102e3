import Foundation

/// One key of etcd with its revisions, as the v3 gateway returns it (decoded from base64).
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: Data
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64

    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// A range answer: the keys and the store revision it was read at.
public struct EtcdRange: Sendable, Equatable {
    public var kvs: [EtcdKeyValue]
    public var revision: Int64
    /// How many keys the range holds (all of them, also beyond a limit or with count only).
    public var count: Int64 = 0
}

/// A narrower range read: keys created before a revision, newest first, a few, or only counted.
public struct EtcdRangeQuery: Sendable {
    public var maxCreateRevision: Int64?
    public var newestCreatedFirst = false
    public var limit: Int64?
    public var countOnly = false
    /// The keys without their values.
    public var keysOnly = false

    public init(
        maxCreateRevision: Int64? = nil, newestCreatedFirst: Bool = false, limit: Int64? = nil, countOnly: Bool = false,
        keysOnly: Bool = false
    ) {
        self.maxCreateRevision = maxCreateRevision
        self.newestCreatedFirst = newestCreatedFirst
        self.limit = limit
        self.countOnly = countOnly
        self.keysOnly = keysOnly
    }
}

/// A txn comparison (`Compare` in etcd's rpc.proto).
public struct EtcdCompare: Sendable {
    public enum Target: Sendable {
        case modRevision(Int64)
        case createRevision(Int64)
        case version(Int64)
        case value(Data)
    }
    public enum Result: String, Sendable {
        case equal = "EQUAL"
        case notEqual = "NOT_EQUAL"
        case greater = "GREATER"
        case less = "LESS"
    }
    public var key: String
    public var target: Target
    public var result: Result

    public init(key: String, _ target: Target, _ result: Result = .equal) {
        self.key = key
        self.target = target
        self.result = result
    }

    /// The key does not exist (its create revision is 0).
    public static func absent(_ key: String) -> EtcdCompare { EtcdCompare(key: key, .createRevision(0)) }
}

/// A txn operation.
public enum EtcdOperation: Sendable {
    case put(key: String, value: Data, lease: Int64?)
    case delete(key: String)
    case range(key: String, prefix: Bool)
    /// Every key from `key` up to, not including, `end`.
    case deleteRange(key: String, end: String)

    public var key: String {
        switch self {
        case .put(let key, _, _), .delete(let key), .range(let key, _), .deleteRange(let key, _): return key
        }
    }
}

/// A txn answer: whether the comparisons held, the revision after it, and the ranges it read.
public struct EtcdTxnResult: Sendable {
    public var succeeded: Bool
    public var revision: Int64
    public var ranges: [EtcdRange]
}

/// One change a watch saw.
public struct EtcdEvent: Sendable, Equatable {
    public enum Kind: Sendable { case put, delete }
    public var kind: Kind
    public var kv: EtcdKeyValue
}

/// What the client could not do, named so an operator can act on it. Mapped from the
/// gateway's gRPC status code and from connection failures, never from message text.
public struct EtcdError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No endpoint answered (down, refused, timed out, or no leader).
        case unavailable
        /// The lease is gone (expired or revoked): the registration is lost.
        case leaseNotFound
        /// etcd refused the request (gRPC status code).
        case refused(code: Int)
        /// An answer that is not what the gateway sends.
        case badAnswer
        /// The cluster refused who the client is: a certificate either side does not trust,
        /// no or a wrong user or password, a user without the role. The fix is a setting.
        case accessRefused
        /// The user's token was not taken (renewed once by the client, never seen outside).
        case tokenRejected
    }
    public var kind: Kind
    public var detail: String
    /// etcd's gRPC status code, when etcd answered one.
    public var code: Int?

    public init(_ kind: Kind, _ detail: String, code: Int? = nil) {
        self.kind = kind
        self.detail = detail
        self.code = code
    }

    public var description: String { detail }
}

extension Data {
    var base64: String { base64EncodedString() }
}

extension String {
    var base64: String { Data(utf8).base64EncodedString() }

    /// The range end, in base64, of every key that starts with this one (etcd's prefix idiom).
    var prefixEnd: String {
        var bytes = Array(utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes).base64EncodedString()
            }
            bytes.removeLast()
        }
        return Data([0]).base64EncodedString()
    }
}
