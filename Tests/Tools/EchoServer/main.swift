// natsync-echo: the pods and clients of natsync's traffic tests, speaking real TCP and UDP.
//
//   natsync-echo serve NAME PORT        answer HTTP on TCP PORT and datagrams on UDP PORT with
//                                       "Hello from NAME; you are CLIENT-IP"
//   natsync-echo get IP:PORT COUNT      COUNT HTTP requests; one line per request: the answer,
//                                       "refused" or "timeout"
//   natsync-echo udp IP:PORT FIRST LAST ROUNDS
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

func endpoint(_ text: String) -> sockaddr_in {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
        fail("bad address \(text)")
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, String(text[..<colon]), &address.sin_addr) == 1 else { fail("bad address \(text)") }
    return address
}

func withSockaddr<T>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var copy = address
    return withUnsafePointer(to: &copy) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

func ipString(_ address: sockaddr_in) -> String {
    var copy = address.sin_addr
    var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    inet_ntop(AF_INET, &copy, &buffer, socklen_t(buffer.count))
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func setTimeout(_ fd: Int32, milliseconds: Int) {
    var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
}

func bound(_ type: Int32, port: UInt16) -> Int32 {
    let fd = socket(AF_INET, type, 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    let result = withSockaddr(address) { bind(fd, $0, $1) }
    guard result == 0 else { fail("cannot bind port \(port): \(String(cString: strerror(errno)))") }
    return fd
}

func serve(name: String, port: UInt16) -> Never {
    let tcp = bound(Int32(SOCK_STREAM.rawValue), port: port)
    listen(tcp, 128)
    let udp = bound(Int32(SOCK_DGRAM.rawValue), port: port)
    var fds = [pollfd(fd: tcp, events: Int16(POLLIN), revents: 0), pollfd(fd: udp, events: Int16(POLLIN), revents: 0)]
    var buffer = [UInt8](repeating: 0, count: 2048)
    while true {
        guard poll(&fds, 2, -1) > 0 else { continue }
        if fds[0].revents != 0 {
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let client = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(tcp, $0, &length) }
            }
            if client >= 0 {
                setTimeout(client, milliseconds: 1000)
                _ = read(client, &buffer, buffer.count)
                let reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nHello from \(name); you are \(ipString(peer))\n"
                _ = reply.withCString { write(client, $0, strlen($0)) }
                close(client)
            }
        }
        if fds[1].revents != 0 {
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, &buffer, buffer.count, 0, $0, &length) }
            }
            if count >= 0 {
                let reply = "Hello from \(name); you are \(ipString(peer))"
                _ = reply.withCString { text in withSockaddr(peer) { sendto(udp, text, strlen(text), 0, $0, $1) } }
            }
        }
    }
}

func get(_ target: sockaddr_in, count: Int) {
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        setTimeout(fd, milliseconds: 3000)
        if withSockaddr(target, { connect(fd, $0, $1) }) != 0 {
            print(errno == ECONNREFUSED ? "refused" : errno == EHOSTUNREACH ? "unreachable" : "timeout")
            close(fd)
            continue
        }
        _ = "GET / HTTP/1.0\r\n\r\n".withCString { write(fd, $0, strlen($0)) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        close(fd)
        let text = String(decoding: response, as: UTF8.self)
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().first?.split(separator: "\n").first
        print(body.map(String.init) ?? "timeout")
    }
}

func udp(_ target: sockaddr_in, ports: ClosedRange<UInt16>, rounds: Int) {
    var sockets: [UInt16: Int32] = [:]
    for port in ports {
        let fd = bound(Int32(SOCK_DGRAM.rawValue), port: port)
        setTimeout(fd, milliseconds: 1000)
        sockets[port] = fd
    }
    var buffer = [UInt8](repeating: 0, count: 512)
    for _ in 0..<rounds {
        for port in ports {
            let fd = sockets[port]!
            _ = "ping".withCString { text in withSockaddr(target) { sendto(fd, text, 4, 0, $0, $1) } }
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
    get(endpoint(arguments[2]), count: Int(arguments[3]) ?? 1)
case ("udp", 6):
    guard let first = UInt16(arguments[3]), let last = UInt16(arguments[4]), first <= last else { fail("bad ports") }
    udp(endpoint(arguments[2]), ports: first...last, rounds: Int(arguments[5]) ?? 1)
default:
    fail("usage: serve NAME PORT | get IP:PORT COUNT | udp IP:PORT FIRST LAST ROUNDS")
}
