import Foundation

/// A TCP relay on 127.0.0.1 in front of one upstream port, for faults on one host's path to
/// a server (etcd): `stall()` stops forwarding (bytes wait, connections stay open, as a
/// partition or a hung middlebox does), `resume()` goes on, `drop()` closes every connection.
/// Plain sockets and a thread per direction: a test has a handful of connections.
public final class StallingProxy: @unchecked Sendable {
    public let port: Int
    let upstream: Int
    private let listener: Int32
    private let lock = NSLock()
    private var stalled = false
    private var closed = false
    private var sockets: Set<Int32> = []
    /// Per connection (keyed by its client descriptor): the pumps still running. Both
    /// descriptors are closed, under the lock, only when both pumps ended, so neither a pump
    /// nor `drop` ever shuts down a descriptor number that was closed and reused meanwhile.
    private var pumps: [Int32: Int] = [:]

    public var url: String { "http://127.0.0.1:\(port)" }

    public init(upstream: Int) throws {
        self.upstream = upstream
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw FixtureError("proxy: cannot listen") }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: actual.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { close() }

    public func stall() { lock.withLock { stalled = true } }
    public func resume() { lock.withLock { stalled = false } }

    /// Closes every open connection (new ones are still taken).
    public func drop() {
        lock.withLock {
            for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    public func close() {
        let already = lock.withLock { () -> Bool in
            defer { closed = true }
            return closed
        }
        guard !already else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        drop()
    }

    private var isStalled: Bool { lock.withLock { stalled } }
    private var isClosed: Bool { lock.withLock { closed } }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while !isClosed {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if isClosed { return }
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstream)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            lock.withLock {
                sockets.insert(client)
                sockets.insert(server)
                pumps[client] = 2
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server, connection: client) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, connection: client) }
        }
    }

    /// Copies until either side closes; while stalled, holds what it read (bounded waits).
    private func pump(from source: Int32, to sink: Int32, connection: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        defer {
            lock.withLock {
                // The other pump, blocked in read or send, ends too.
                shutdown(source, Int32(SHUT_RDWR))
                shutdown(sink, Int32(SHUT_RDWR))
                let left = (pumps[connection] ?? 1) - 1
                pumps[connection] = left > 0 ? left : nil
                if left <= 0 {
                    sockets.remove(source)
                    sockets.remove(sink)
                    Glibc.close(source)
                    Glibc.close(sink)
                }
            }
        }
        while true {
            while isStalled && !isClosed { usleep(20_000) }
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { return }
            while isStalled && !isClosed { usleep(20_000) }
            var sent = 0
            while sent < count {
                // send, not write: a peer that closed (a dropped or ended connection) must not
                // raise SIGPIPE, which kills the whole test process.
                let written = buffer[sent..<count].withUnsafeBytes {
                    send(sink, $0.baseAddress, count - sent, Int32(MSG_NOSIGNAL))
                }
                guard written > 0 else { return }
                sent += written
            }
        }
    }
}
