import Foundation
import Synchronization

/// Ports and processes of this machine, for tests of scripts that start daemons.
public enum LocalProcesses {
    /// A base port such that base+1 ... base+count are all free on 127.0.0.1 a moment ago
    /// (a script derives its ports from it), or nil after `attempts` random tries. The ports
    /// are reserved like `freePort`'s.
    public static func freePortBlock(_ count: Int, attempts: Int = 50) -> Int? {
        for _ in 0..<attempts {
            if let base = tryReserve(count) { return base - 1 }
        }
        return nil
    }

    /// Ports handed out in this process: two tests running at once never get the same one.
    private static let handedOut = Mutex<Set<Int>>([])
    /// Below the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 on
    /// Linux), so that no outgoing connection takes a port between its pick and its bind.
    private static let range = 10_000..<32_000

    /// The first of `count` consecutive ports, free now and never handed out before.
    static func reservePorts(_ count: Int) -> Int {
        for _ in 0..<10_000 {
            if let first = tryReserve(count) { return first }
        }
        fatalError("no \(count) free consecutive ports in \(range) on 127.0.0.1")
    }

    private static func tryReserve(_ count: Int) -> Int? {
        let first = Int.random(in: range.lowerBound...(range.upperBound - count))
        let ports = Set(first..<(first + count))
        return handedOut.withLock { taken in
            guard taken.isDisjoint(with: ports), ports.allSatisfy(canBind) else { return nil }
            taken.formUnion(ports)
            return first
        }
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
