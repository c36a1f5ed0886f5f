// natsync-echo: the pods and clients of natsync's traffic tests, speaking real TCP and UDP over
// IPv4 and IPv6.
//
//   natsync-echo serve NAME PORT        answer HTTP on TCP PORT and datagrams on UDP PORT, IPv4 and
//                                       IPv6, with "Hello from NAME; you are CLIENT-IP"
//   natsync-echo get ADDRESS COUNT      COUNT HTTP requests to IP:PORT or [IPv6]:PORT; one line per
//                                       request: the answer, "refused", "unreachable" or "timeout"
//                                       (with how, when it connected but got no answer)
//   natsync-echo udp ADDRESS FIRST LAST ROUNDS
//                                       from each source port FIRST...LAST, ROUNDS datagrams;
//                                       one line per datagram: "PORT ANSWER" or "PORT timeout"
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let text = "natsync-echo: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// A socket address of either family.
struct Address {
    var storage = sockaddr_storage()
    var family: Int32 { Int32(storage.ss_family) }
    var length: socklen_t {
        socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    /// The wildcard address of `family` on `port`.
    init(any family: Int32, port: UInt16) {
        if family == AF_INET6 {
            withIPv6 {
                $0.sin6_family = sa_family_t(AF_INET6); $0.sin6_port = port.bigEndian
            }
        } else {
            withIPv4 {
                $0.sin_family = sa_family_t(AF_INET); $0.sin_port = port.bigEndian
            }
        }
    }

    /// `IP:PORT` or `[IPv6]:PORT`.
    init(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            fail("bad address \(text)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            self.init(any: AF_INET6, port: port)
            guard withIPv6({ inet_pton(AF_INET6, host, &$0.sin6_addr) }) == 1 else { fail("bad address \(text)") }
        } else {
            self.init(any: AF_INET, port: port)
            guard withIPv4({ inet_pton(AF_INET, host, &$0.sin_addr) }) == 1 else { fail("bad address \(text)") }
        }
    }

    init() {}

    mutating func withIPv4<T>(_ body: (inout sockaddr_in) -> T) -> T {
        withUnsafeMutableBytes(of: &storage) { body(&$0.baseAddress!.assumingMemoryBound(to: sockaddr_in.self).pointee) }
    }

    mutating func withIPv6<T>(_ body: (inout sockaddr_in6) -> T) -> T {
        withUnsafeMutableBytes(of: &storage) { body(&$0.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self).pointee) }
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = storage
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// The address without its port, as `inet_ntop` writes it.
    var ip: String {
        var copy = self
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if family == AF_INET6 {
            _ = copy.withIPv6 { inet_ntop(AF_INET6, &$0.sin6_addr, &buffer, socklen_t(buffer.count)) }
        } else {
            _ = copy.withIPv4 { inet_ntop(AF_INET, &$0.sin_addr, &buffer, socklen_t(buffer.count)) }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

func setTimeout(_ fd: Int32, milliseconds: Int) {
    var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
}

/// A socket of `family` bound to `port` (IPv6 sockets only take IPv6); -1 when `optional` and
/// the family is unavailable.
func bound(_ family: Int32, _ type: Int32, port: UInt16, optional: Bool = false) -> Int32 {
    let fd = socket(family, type, 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    if family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
    let result = Address(any: family, port: port).withSockaddr { bind(fd, $0, $1) }
    guard result == 0 else {
        if optional { close(fd); return -1 }
        fail("cannot bind port \(port): \(String(cString: strerror(errno)))")
    }
    return fd
}

func serve(name: String, port: UInt16) -> Never {
    var fds: [pollfd] = []
    for family in [AF_INET, AF_INET6] {
        let tcp = bound(family, Int32(SOCK_STREAM.rawValue), port: port, optional: family == AF_INET6)
        let udp = bound(family, Int32(SOCK_DGRAM.rawValue), port: port, optional: family == AF_INET6)
        guard tcp >= 0, udp >= 0 else { continue }
        listen(tcp, 128)
        fds += [pollfd(fd: tcp, events: Int16(POLLIN), revents: 0), pollfd(fd: udp, events: Int16(POLLIN), revents: 0)]
    }
    var buffer = [UInt8](repeating: 0, count: 2048)
    while true {
        guard poll(&fds, nfds_t(fds.count), -1) > 0 else { continue }
        for (index, entry) in fds.enumerated() where entry.revents != 0 {
            var peer = Address()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            if index % 2 == 0 {
                let client = withUnsafeMutablePointer(to: &peer.storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(entry.fd, $0, &length) }
                }
                guard client >= 0 else { continue }
                setTimeout(client, milliseconds: 1000)
                _ = read(client, &buffer, buffer.count)
                let reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nHello from \(name); you are \(peer.ip)\n"
                _ = reply.withCString { write(client, $0, strlen($0)) }
                close(client)
            } else {
                let count = withUnsafeMutablePointer(to: &peer.storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(entry.fd, &buffer, buffer.count, 0, $0, &length) }
                }
                guard count >= 0 else { continue }
                let reply = "Hello from \(name); you are \(peer.ip)"
                _ = reply.withCString { text in peer.withSockaddr { sendto(entry.fd, text, strlen(text), 0, $0, $1) } }
            }
        }
    }
}

func get(_ target: Address, count: Int) {
    for _ in 0..<count {
        let fd = socket(target.family, Int32(SOCK_STREAM.rawValue), 0)
        setTimeout(fd, milliseconds: 3000)
        if target.withSockaddr({ connect(fd, $0, $1) }) != 0 {
            print(errno == ECONNREFUSED ? "refused" : errno == EHOSTUNREACH ? "unreachable" : "timeout")
            close(fd)
            continue
        }
        _ = "GET / HTTP/1.0\r\n\r\n".withCString { write(fd, $0, strlen($0)) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        var failure: Int32 = 0
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { failure = errno }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        close(fd)
        let text = String(decoding: response, as: UTF8.self)
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().first?.split(separator: "\n").first
        // Connected, then no answer: say how, so a failure in a test run far away explains itself.
        let silence =
            failure == ECONNRESET
            ? "timeout (reset after connecting)" : failure == 0 ? "timeout (closed without an answer)" : "timeout (no answer)"
        print(body.map(String.init) ?? silence)
    }
}

func udp(_ target: Address, ports: ClosedRange<UInt16>, rounds: Int) {
    var sockets: [UInt16: Int32] = [:]
    for port in ports {
        let fd = bound(target.family, Int32(SOCK_DGRAM.rawValue), port: port)
        setTimeout(fd, milliseconds: 1000)
        sockets[port] = fd
    }
    var buffer = [UInt8](repeating: 0, count: 512)
    for _ in 0..<rounds {
        for port in ports {
            let fd = sockets[port]!
            _ = "ping".withCString { text in target.withSockaddr { sendto(fd, text, 4, 0, $0, $1) } }
            let n = recv(fd, &buffer, buffer.count, 0)
            print(n > 0 ? "\(port) \(String(decoding: buffer[0..<n], as: UTF8.self))" : "\(port) timeout")
        }
    }
}

extension String {
    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

let arguments = CommandLine.arguments
switch (arguments.count > 1 ? arguments[1] : "", arguments.count) {
case ("serve", 4):
    guard let port = UInt16(arguments[3]) else { fail("bad port") }
    serve(name: arguments[2], port: port)
case ("get", 4):
    get(Address(arguments[2]), count: Int(arguments[3]) ?? 1)
case ("udp", 6):
    guard let first = UInt16(arguments[3]), let last = UInt16(arguments[4]), first <= last else { fail("bad ports") }
    udp(Address(arguments[2]), ports: first...last, rounds: Int(arguments[5]) ?? 1)
default:
    fail("usage: serve NAME PORT | get ADDRESS COUNT | udp ADDRESS FIRST LAST ROUNDS")
}
