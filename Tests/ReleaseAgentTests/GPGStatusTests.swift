import Foundation
import ReleaseAgent
import Testing

/// gpgv's status lines as gpg's doc/DETAILS defines them. The end-to-end tests make real keys
/// for REVKEYSIG, EXPKEYSIG, EXPSIG, BADSIG and NO_PUBKEY; these cover the lines that gpgv
/// cannot be made to print with a test key (KEYREVOKED comes from gpg's trust check, ERRSIG
/// code 4 from an algorithm gpg does not know) and the rules around them.
@Suite("gpgv status lines")
struct GPGStatusTests {
    let fpr = "4B58BB6849C0B6E66AE9FC4B50AF38B5CCEB9795"
    var validsig: String { "[GNUPG:] VALIDSIG \(fpr) 2026-12-02 1796235680 0 4 0 22 8 00 \(fpr)" }

    func judge(_ lines: [String], exit: Int32 = 0) -> GPGStatus.Outcome {
        GPGStatus.judge(lines.joined(separator: "\n") + "\n", exit: exit, keyring: "/etc/keys.gpg")
    }

    @Test("GOODSIG and VALIDSIG, exit 0: trusted, by the fingerprint")
    func good() {
        let outcome = judge(["[GNUPG:] NEWSIG", "[GNUPG:] GOODSIG 50AF38B5CCEB9795 Rev", validsig])
        #expect(outcome == .trusted(fingerprint: fpr))
    }

    @Test("every do-not-trust line refuses even beside VALIDSIG and exit 0, naming the key and the cause")
    func refusals() {
        let cases: [(String, String)] = [
            ("[GNUPG:] REVKEYSIG 50AF38B5CCEB9795 Rev", "revoked"),
            ("[GNUPG:] KEYREVOKED", "revoked"),
            ("[GNUPG:] EXPKEYSIG 50AF38B5CCEB9795 Rev", "key is expired"),
            ("[GNUPG:] EXPSIG 50AF38B5CCEB9795 Rev", "signature is expired"),
            ("[GNUPG:] BADSIG 50AF38B5CCEB9795 Rev", "does not match"),
            ("[GNUPG:] ERRSIG 50AF38B5CCEB9795 22 8 00 1577840400 4 \(fpr)", "does not know the signature's algorithm"),
            ("[GNUPG:] NO_PUBKEY 50AF38B5CCEB9795", "not in gpg-keyring /etc/keys.gpg"),
        ]
        for (line, word) in cases {
            let outcome = judge(["[GNUPG:] NEWSIG", "[GNUPG:] GOODSIG 50AF38B5CCEB9795 Rev", line, validsig])
            guard case .refused(let key, let why) = outcome else {
                Issue.record("\(line): trusted")
                continue
            }
            #expect(key == "gpg \(fpr)", "\(line)")
            #expect(why.contains(word), "\(line): \(why)")
        }
    }

    @Test("ERRSIG without VALIDSIG names the fingerprint it carries; without one, the key id")
    func errsig() {
        let missing = judge(
            [
                "[GNUPG:] NEWSIG", "[GNUPG:] ERRSIG 5621A7790C49C3A0 22 8 00 1577840400 9 \(fpr)",
                "[GNUPG:] NO_PUBKEY 5621A7790C49C3A0",
            ], exit: 2)
        #expect(
            missing
                == .refused(
                    key: "gpg \(fpr)",
                    why: "the key is not in gpg-keyring /etc/keys.gpg (gpgv NO_PUBKEY); add it if it is trusted"))
        let old = judge(["[GNUPG:] ERRSIG 5621A7790C49C3A0 22 8 00 1577840400 4"], exit: 2)
        guard case .refused(let key, let why) = old else {
            Issue.record("trusted")
            return
        }
        #expect(key == "gpg 5621A7790C49C3A0")
        #expect(why.contains("does not know the signature's algorithm"), "\(why)")
    }

    @Test("no good signature for each signature, a non-zero exit, or text that only looks like status: refused")
    func failClosed() {
        // Two signatures, one good: the other one is not.
        #expect(
            judge(["[GNUPG:] NEWSIG", "[GNUPG:] GOODSIG A B", validsig, "[GNUPG:] NEWSIG"])
                != .trusted(fingerprint: fpr))
        #expect(judge(["[GNUPG:] NEWSIG", "[GNUPG:] GOODSIG A B", validsig], exit: 1) != .trusted(fingerprint: fpr))
        #expect(judge(["[GNUPG:] NEWSIG", validsig]) != .trusted(fingerprint: fpr))
        // gpgv's own text (stderr is read with the status) never counts.
        #expect(judge(["gpgv: [GNUPG:] GOODSIG A B", "x [GNUPG:] VALIDSIG \(fpr)"]) != .trusted(fingerprint: fpr))
        #expect(judge([]) != .trusted(fingerprint: fpr))
    }
}
