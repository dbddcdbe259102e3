extension String {
    /// Text from a repository or a request, safe to print on a terminal: C0 controls (but
    /// tab), DEL and C1 controls become `\xNN` / `\u{NNNN}`, so a commit subject cannot clear
    /// the screen, retitle the window or move the cursor. JSON output stays exact.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: Self.isControl) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            if Self.isControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                out += scalar.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex)}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return (value < 0x20 && value != 0x09) || value == 0x7F || (0x80...0x9F).contains(value)
            || value == 0x2028 || value == 0x2029
    }
}
