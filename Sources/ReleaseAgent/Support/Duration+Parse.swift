import Foundation

/// Durations as the SPEC writes them: `500ms`, `30s`, `10m`, `1h`; a bare number is seconds.
public enum DurationParser {
    /// The longest duration a setting takes (366 days): beyond it the milliseconds would
    /// overflow long before, and no timeout or interval means that much.
    public static let maximumSeconds: Double = 366 * 86400

    public static func parse(_ text: String) -> Duration? {
        let value = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(value)
        var scale: Double = 1
        for (suffix, factor) in units where value.hasSuffix(suffix) {
            number = value.dropLast(suffix.count)
            scale = factor
            break
        }
        // Plain decimal digits only: no "1e17", "inf", "nan" or hex floats.
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let amount = Double(number), amount.isFinite, amount >= 0, amount * scale <= maximumSeconds
        else { return nil }
        return .milliseconds(Int64((amount * scale * 1000).rounded()))
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
        if s < 60 { return Self.twoDecimals(s) + "s" }
        let rest = Int(s) % 60
        return "\(Int(s) / 60)m\(rest < 10 ? "0" : "")\(rest)s"
    }

    /// `%.2f` for a non-negative value, without Foundation's formatter (its first use costs
    /// about a millisecond of a rollback).
    static func twoDecimals(_ value: Double) -> String {
        let hundredths = Int((max(0, value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

extension String {
    /// Cut or padded with spaces to `width` characters, as NSString's `padding(toLength:)`.
    func fitted(to width: Int) -> String {
        count >= width ? String(prefix(width)) : self + String(repeating: " ", count: width - count)
    }
}
