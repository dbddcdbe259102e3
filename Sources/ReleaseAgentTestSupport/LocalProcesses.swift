import Foundation

/// Ports and processes of this machine, for tests of scripts that start daemons.
public enum LocalProcesses {
    /// A base port such that base+1 ... base+count are all free on 127.0.0.1 a moment ago
    /// (a script derives its ports from it), or nil after `attempts` random tries.
    public static func freePortBlock(_ count: Int, attempts: Int = 50) -> Int? {
        for _ in 0..<attempts {
            let base = Int.random(in: 20_000...(60_000 - count))
            if (1...count).allSatisfy({ canBind(base + $0) }) { return base }
        }
        return nil
    }

    /// True when 127.0.0.1:port can be bound now.
    public static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }

    /// Live processes (zombies left out) whose command line or working directory mentions
    /// `path`: pid and command line.
    public static func mentioning(_ path: String) -> [(pid: Int32, command: String)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> (Int32, String)? in
            guard let pid = Int32(name), pid != getpid() else { return nil }
            let dir = "/proc/\(name)"
            let status = (try? String(contentsOfFile: dir + "/status", encoding: .utf8)) ?? ""
            if status.split(separator: "\n").contains(where: { $0.hasPrefix("State:") && $0.contains("Z") }) {
                return nil
            }
            let raw = FileManager.default.contents(atPath: dir + "/cmdline") ?? Data()
            let command = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/cwd")) ?? ""
            guard command.contains(path) || cwd.hasPrefix(path) else { return nil }
            return (pid, command)
        }
    }
}
