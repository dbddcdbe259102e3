/// A full 40-hex commit id. Plain value: safe to pass anywhere.
public struct CommitID: Hashable, Sendable, CustomStringConvertible, Codable {
    public let hex: String

    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.count == 40, lower.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.hex = lower
    }

    public var short: String { String(hex.prefix(12)) }
    public var description: String { hex }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = CommitID(hex: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a commit id: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// What `status` and `history` show of a commit.
public struct CommitInfo: Sendable, Codable, Equatable {
    public var id: CommitID
    public var author: String
    public var date: Int64
    public var subject: String

    public init(id: CommitID, author: String, date: Int64, subject: String) {
        self.id = id
        self.author = author
        self.date = date
        self.subject = subject
    }
}
