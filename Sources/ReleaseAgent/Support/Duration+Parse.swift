import Foundation

/// Durations as the SPEC writes them: `500ms`, `30s`, `10m`, `1h`; a bare number is seconds.
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let value = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where value.hasSuffix(suffix) {
            let number = value.dropLast(suffix.count)
            guard let amount = Double(number), amount >= 0, amount.isFinite else { return nil }
            return .milliseconds(Int64((amount * scale * 1000).rounded()))
        }
        guard let seconds = Double(value), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}

extension Duration {
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// `0.42s`, `3.1s`, `2m05s`: what the stage lines print.
    public var short: String {
        let s = seconds
        if s < 60 { return String(format: "%.2fs", s) }
        return "\(Int(s) / 60)m\(String(format: "%02d", Int(s) % 60))s"
    }
}
