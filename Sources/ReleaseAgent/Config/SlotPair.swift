/// `slots`: blue-green's two ports, different by construction (the reader refuses one port,
/// three, or the same port twice), so nothing downstream indexes a list.
public struct SlotPair: Sendable, Equatable, CustomStringConvertible {
    public let first: Int
    public let second: Int

    /// nil unless the two ports differ.
    public init?(_ first: Int, _ second: Int) {
        guard first != second else { return nil }
        self.first = first
        self.second = second
    }

    public func contains(_ port: Int) -> Bool { port == first || port == second }

    /// The slot a new release starts on: the one that is not live (the first when none is).
    public func other(than live: Int?) -> Int { live == first ? second : first }

    /// As it is written in the settings: `5000,6000`.
    public var description: String { "\(first),\(second)" }
}
