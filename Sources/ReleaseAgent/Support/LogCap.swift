import Foundation

/// Keeps a release log bounded while a child writes to it: past `head + tail + slack` bytes,
/// the middle is replaced by one line saying how much was cut, and the newest `tail` bytes
/// are kept. The child holds the file with O_APPEND, so after the truncate its next write
/// lands at the new end. Bytes it writes during the few microseconds of a compaction may be
/// lost; they were part of the cut anyway, so the count says "about".
struct LogCap {
    let path: String
    var head = LogCap.defaultHead
    var tail = LogCap.defaultTail
    var slack = LogCap.defaultSlack

    static let defaultHead = 4 << 20
    static let defaultTail = 4 << 20
    static let defaultSlack = 8 << 20

    /// The marker has a fixed width, so a later compaction finds it at `head` and adds to it.
    static func marker(cut: Int) -> [UInt8] {
        let digits = String(cut)
        let padded = String(repeating: " ", count: max(0, 20 - digits.count)) + digits
        return Array("\n[release-agent: about \(padded) bytes of output cut here]\n".utf8)
    }
    static let markerLength = marker(cut: 0).count

    /// True when it compacted the file.
    @discardableResult
    func compactIfNeeded() -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        let size = Int(st.st_size)
        guard size > head + tail + slack else { return false }
        let previousCut = Self.cutRecorded(fd: fd, at: head)
        let keptMarker = previousCut == nil ? 0 : Self.markerLength
        let cut = (previousCut ?? 0) + (size - head - keptMarker - tail)
        var tailBytes = [UInt8](repeating: 0, count: tail)
        let got = pread(fd, &tailBytes, tail, off_t(size - tail))
        guard got == tail else { return false }
        let marker = Self.marker(cut: cut)
        guard pwrite(fd, marker, marker.count, off_t(head)) == marker.count,
            pwrite(fd, tailBytes, tail, off_t(head + marker.count)) == tail
        else { return false }
        ftruncate(fd, off_t(head + marker.count + tail))
        return true
    }

    /// The count in a marker written at `offset` by an earlier compaction.
    static func cutRecorded(fd: Int32, at offset: Int) -> Int? {
        var bytes = [UInt8](repeating: 0, count: markerLength)
        guard pread(fd, &bytes, markerLength, off_t(offset)) == markerLength else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let prefix = "\n[release-agent: about "
        guard text.hasPrefix(prefix), text.hasSuffix(" bytes of output cut here]\n") else { return nil }
        let number = text.dropFirst(prefix.count).prefix(20).trimmingCharacters(in: .whitespaces)
        return Int(number)
    }
}
