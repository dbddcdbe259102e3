import Foundation

/// What `gpgv --status-fd` says about a detached signature (gpg's doc/DETAILS). gpgv exits 0
/// and prints `VALIDSIG` for a signature that is cryptographically valid even when the key
/// is revoked or expired (`REVKEYSIG`, `EXPKEYSIG`) or the signature expired (`EXPSIG`):
/// so every "do not trust" line is looked for first, and trust needs a `GOODSIG` for each
/// signature and a `VALIDSIG`, with no refusal anywhere in the output.
package enum GPGStatus {
    package enum Outcome: Equatable {
        /// The signing key's fingerprint.
        case trusted(fingerprint: String)
        case refused(key: String, why: String)
    }

    struct Line {
        var keyword: String
        var arguments: [String]
    }

    /// `output` is gpgv's status output (other lines, such as its stderr, are ignored),
    /// `exit` its exit status, `keyring` the gpg-keyring setting (named in the reasons).
    package static func judge(_ output: String, exit: Int32, keyring: String) -> Outcome {
        let lines = output.split(separator: "\n").compactMap { raw -> Line? in
            let words = raw.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.count >= 2, words[0] == "[GNUPG:]" else { return nil }
            return Line(keyword: words[1], arguments: Array(words.dropFirst(2)))
        }
        func first(_ keyword: String) -> Line? { lines.first { $0.keyword == keyword } }
        func count(_ keyword: String) -> Int { lines.filter { $0.keyword == keyword }.count }
        // The key, as precisely as gpgv named it: the fingerprint when it gave one.
        let errorFingerprint = first("ERRSIG").flatMap { $0.arguments.count > 6 ? $0.arguments[6] : nil }
        let fingerprint =
            first("VALIDSIG")?.arguments.first ?? errorFingerprint.flatMap { $0 == "-" ? nil : $0 }
        func key(_ line: Line?) -> String {
            "gpg " + (fingerprint ?? line?.arguments.first ?? "(no key id)")
        }
        let resign = "sign it again with a key that is valid in gpg-keyring \(keyring)"
        // In order of what matters most to an operator reading the one line.
        if let line = first("BADSIG") {
            return .refused(key: key(line), why: "the signature does not match the commit (gpgv BADSIG); \(resign)")
        }
        if let line = first("REVKEYSIG") ?? first("KEYREVOKED") {
            return .refused(
                key: key(line),
                why: "the key is revoked (gpgv \(line.keyword)); \(resign) and treat the commit as suspect"
            )
        }
        if let line = first("EXPKEYSIG") {
            return .refused(key: key(line), why: "the key is expired (gpgv EXPKEYSIG); \(resign)")
        }
        if let line = first("EXPSIG") {
            return .refused(key: key(line), why: "the signature is expired (gpgv EXPSIG); \(resign)")
        }
        if let line = first("NO_PUBKEY") {
            return .refused(
                key: key(line),
                why: "the key is not in gpg-keyring \(keyring) (gpgv NO_PUBKEY); add it if it is trusted")
        }
        if let line = first("ERRSIG") {
            let code = line.arguments.count > 5 ? line.arguments[5] : "?"
            let cause =
                switch code {
                case "9": "the key is not in gpg-keyring \(keyring)"
                case "4": "gpgv does not know the signature's algorithm"
                default: "gpgv could not check the signature"
                }
            return .refused(key: key(line), why: "\(cause) (gpgv ERRSIG, code \(code)); \(resign)")
        }
        guard exit == 0 else {
            return .refused(
                key: key(nil),
                why: "gpgv could not verify it (exit \(exit)); run gpgv --keyring \(keyring) by hand to see why")
        }
        guard let valid = first("VALIDSIG")?.arguments.first, count("GOODSIG") >= max(1, count("NEWSIG")) else {
            return .refused(key: key(nil), why: "gpgv reported no good signature; \(resign)")
        }
        return .trusted(fingerprint: valid)
    }
}
