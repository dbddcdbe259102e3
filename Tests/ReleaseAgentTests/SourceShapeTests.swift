import Foundation
import Testing

/// The shape issue 28 asks of the code, kept by a test: no file in Sources over 300 lines, no
/// function, initializer or computed property there over 60 (test support included). The
/// count is a brace count from the declaration's line to the brace that closes it, string
/// literals and line comments left out: rough, but the same rough for every file.
@Suite("source shape: files and functions a reader takes in at once")
struct SourceShapeTests {
    static let maxFileLines = 300
    static let maxFunctionLines = 60

    /// The package's Sources directory, from this file's path.
    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
    }

    static func swiftFiles() throws -> [URL] {
        let walker = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        return walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
            .sorted { $0.path < $1.path }
    }

    /// A line that opens a function, an initializer, a deinit or a computed property.
    static func declares(_ line: Substring) -> Bool {
        var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })[...]
        let modifiers: Set<Substring> = [
            "public", "private", "fileprivate", "internal", "package", "static", "final", "override", "mutating",
            "nonisolated", "convenience", "required", "@discardableResult", "@inlinable", "@Sendable", "class",
        ]
        while let first = words.first, modifiers.contains(first) || first.hasPrefix("@") { words = words.dropFirst() }
        guard let keyword = words.first else { return false }
        if keyword == "func" || keyword == "deinit" || keyword.hasPrefix("init(") || keyword.hasPrefix("init<")
            || keyword == "init?(" || keyword.hasPrefix("init?(") || keyword.hasPrefix("init!(")
        {
            return true
        }
        // `var name: Type {` with no `=`: a computed property.
        return keyword == "var" && line.contains(":") && !line.contains("=") && line.hasSuffix("{")
    }

    /// The line without its string literals and its line comment, for the brace count.
    static func code(_ line: Substring) -> Substring {
        var result = ""
        var inString = false
        var escaped = false
        var previous: Character = " "
        for character in line {
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
            } else if character == "\"" {
                inString = true
            } else if character == "/" && previous == "/" {
                result.removeLast()
                break
            } else {
                result.append(character)
            }
            previous = character
        }
        return Substring(result)
    }

    /// (first line, length) of each declaration over `limit` lines.
    static func longDeclarations(_ text: String, limit: Int) -> [(Int, Int)] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var found: [(Int, Int)] = []
        for (start, line) in lines.enumerated() where declares(line.drop { $0 == " " }) {
            var depth = 0
            var opened = false
            var end = start
            while end < lines.count {
                let code = code(lines[end])
                depth += code.filter { $0 == "{" }.count - code.filter { $0 == "}" }.count
                if code.contains("{") { opened = true }
                if opened && depth <= 0 { break }
                end += 1
            }
            if end - start + 1 > limit { found.append((start + 1, end - start + 1)) }
        }
        return found
    }

    @Test("no file in Sources over 300 lines")
    func files() throws {
        let files = try Self.swiftFiles()
        #expect(files.count > 100, "found only \(files.count) files under \(Self.sources.path)")
        for file in files {
            let count = try String(contentsOf: file, encoding: .utf8).split(
                separator: "\n", omittingEmptySubsequences: false
            ).count
            #expect(count <= Self.maxFileLines, "\(file.path): \(count) lines")
        }
    }

    @Test("no function, initializer or computed property in Sources over 60 lines")
    func functions() throws {
        for file in try Self.swiftFiles() {
            for (line, length) in Self.longDeclarations(
                try String(contentsOf: file, encoding: .utf8), limit: Self.maxFunctionLines)
            {
                Issue.record("\(file.path):\(line): \(length) lines")
            }
        }
    }

    @Test("the scan finds a long function, and ignores braces in strings and comments")
    func scanner() {
        let body = (0..<70).map { _ in "    let x = \"}\" // }" }.joined(separator: "\n")
        let text = "struct A {\n    public func long() {\n\(body)\n    }\n    var short: Int { 1 }\n}\n"
        #expect(Self.longDeclarations(text, limit: 60).map(\.0) == [2])
        #expect(Self.longDeclarations(text, limit: 60).map(\.1) == [72])
    }
}
