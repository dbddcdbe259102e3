import ArgumentParser
import Testing

@testable import ReleaseAgent

/// What ArgumentParser makes of a line, in QuickLine's terms; nil when it refuses the line
/// or it is not a poll or rollback.
private func argumentParserReading(_ line: [String]) -> QuickLine? {
    guard let parsed = try? RootCommand.parseAsRoot(line) else { return nil }
    switch parsed {
    case let poll as PollCommand:
        return QuickLine(
            command: .poll(force: poll.force), flags: poll.settings.flagValues, config: poll.settings.config)
    case let rollback as RollbackCommand:
        return QuickLine(
            command: .rollback(target: rollback.target), flags: rollback.settings.flagValues,
            config: rollback.settings.config)
    default:
        return nil
    }
}

@Suite("the quick reading of poll and rollback lines")
struct QuickLineTests {
    @Test("every setting, both spellings, both commands: read as ArgumentParser reads it")
    func everySetting() {
        for command in ["poll", "rollback"] {
            for name in SettingNames.all.union(["config"]) {
                let lines: [[String]] =
                    QuickLine.flagSettings.contains(name)
                    ? [[command, "--\(name)"], [command, "--no-\(name)"]]
                    : [[command, "--\(name)", "v a,l"], [command, "--\(name)=v=1"]]
                for line in lines {
                    let quick = QuickLine.parse(line)
                    #expect(quick != nil, "\(line) fell back to ArgumentParser")
                    #expect(quick == argumentParserReading(line), "\(line)")
                }
                if !QuickLine.flagSettings.contains(name) {
                    #expect(QuickLine.parse([command, "--\(name)="]) == nil, "an empty value must fall back")
                }
            }
        }
    }

    @Test("a corpus of lines: the quick reading agrees with ArgumentParser, or leaves the line to it")
    func corpus() {
        let accepted: [[String]] = [
            ["poll"], ["poll", "--force"], ["poll", "--root", "/srv/app", "--repo", "/srv/r.git", "--force"],
            ["rollback"], ["rollback", "4f2a9c1"], ["rollback", "--root", "/r", "4f2a9c1", "--wait", "5s"],
            ["rollback", "4f2a9c1", "--root=/r"], ["poll", "--config", "/etc/ra.toml", "--branch", "release/v2"],
            ["poll", "--no-refuse-force-push", "--allow-unsigned"], ["poll", "--pin", "a,b", "--slots=5000,6000"],
        ]
        for line in accepted {
            let quick = QuickLine.parse(line)
            #expect(quick != nil, "\(line)")
            #expect(quick == argumentParserReading(line), "\(line)")
        }
        // ArgumentParser refuses these, words their help, or they are not poll or rollback.
        let fallBack: [[String]] = [
            ["poll", "--root"], ["poll", "--root", "--repo", "x"], ["poll", "--force=true"], ["poll", "x"],
            ["poll", "--bogus", "1"], ["poll", "-h"], ["poll", "--help"], ["rollback", "a", "b"],
            ["rollback", "--force"], ["poll", "--root", "a", "--root", "b"], ["poll", "--", "x"],
            ["poll", "--no-force"], ["poll", "--root", "-x"], ["rollback", "-4f2a"], ["poll", "--allow-unsigned=yes"],
            ["status"], ["deploy"], [], ["rollback", "help"], ["poll", "--no-root", "x"], ["poll", "--root", ""],
            ["poll", "--root="], ["poll", "--allow-unsigned", "--no-allow-unsigned"], ["poll", "--version"],
        ]
        for line in fallBack {
            #expect(QuickLine.parse(line) == nil, "\(line)")
        }
    }
}
