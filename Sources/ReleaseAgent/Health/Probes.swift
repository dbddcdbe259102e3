import Foundation

/// A TCP connect with a timeout.
enum TCPProbe {
    static func connect(host: String, port: Int, timeout: Duration) -> String? {
        switch open(host: host, port: port, timeout: timeout) {
        case .connected(let fd):
            close(fd)
            return nil
        case .failed(let reason):
            return reason
        }
    }

    enum Connection {
        case connected(Int32)
        case failed(String)
    }

    /// A connected blocking socket (close-on-exec), or why there is none.
    static func open(host: String, port: Int, timeout: Duration) -> Connection {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failed("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var last = "no address for \(host)"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var error: Int32 = 0
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
                error = errno
                if error == EINPROGRESS {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&pfd, 1, Int32(timeout.seconds * 1000)) == 1 {
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    } else {
                        error = ETIMEDOUT
                    }
                }
            }
            if error == 0 {
                _ = fcntl(fd, F_SETFL, flags)
                return .connected(fd)
            }
            close(fd)
            last =
                error == ETIMEDOUT
                ? "connect to \(host):\(port) timed out after \(timeout.short)"
                : "connect to \(host):\(port): \(String(cString: strerror(error)))"
        }
        return .failed(last)
    }
}
