/// The store's rules as pure functions, so unit tests can check them without a disk.
public enum Policies {
    /// The release live before `current`: the newest earlier activation of another sha.
    public static func previous(activations: [String], current: String?) -> String? {
        activations.reversed().first { $0 != current }
    }

    /// The default rollback target: walking back through what was live, the newest sha that
    /// is not current, still complete on disk, and not quarantined. After C -> B, C is
    /// quarantined, so a second rollback reaches A, never C.
    public static func rollbackTarget(activations: [String], current: String?, eligible: Set<String>) -> String? {
        activations.reversed().first { $0 != current && eligible.contains($0) }
    }

    /// Which release directories prune removes.
    /// - Complete releases (ready, active, retired): the newest `keep` stay, whatever else is kept.
    /// - Current, the one before it, `alsoKeep` (the default rollback target) and pinned ones
    ///   (full sha or prefix) always stay.
    /// - Failed releases do not count toward `keep`; the newest failed one stays for its log.
    public static func pruneVictims(
        records: [ReleaseRecord], current: String?, previous: String?, pins: [String], keep: Int,
        alsoKeep: Set<String> = []
    ) -> [String] {
        func protected(_ sha: String) -> Bool {
            sha == current || sha == previous || alsoKeep.contains(sha)
                || pins.contains { !$0.isEmpty && sha.hasPrefix($0.lowercased()) }
        }
        let newestFirst = records.sorted { ($0.createdAt, $0.sha) > ($1.createdAt, $1.sha) }
        var victims: [String] = []
        var keptComplete = 0
        var keptFailed = false
        for record in newestFirst {
            switch record.state {
            case .ready, .active, .retired:
                if keptComplete < keep {
                    keptComplete += 1
                } else if !protected(record.sha) {
                    victims.append(record.sha)
                }
            case .failed:
                if protected(record.sha) { continue }
                if keptFailed { victims.append(record.sha) } else { keptFailed = true }
            case .building:
                continue
            }
        }
        return victims
    }
}
