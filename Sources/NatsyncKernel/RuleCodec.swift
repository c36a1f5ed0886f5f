import CNatsyncShim
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile

#if canImport(Glibc)
import Glibc
#endif

/// Converts between ``Rule`` and the shim's flat `natsync_rule`, for the IPv4 or the IPv6 tables.
enum RuleCodec {
    /// Why a rule cannot be written through the IPv4 shim.
    struct Unencodable: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static func encode(_ rule: Rule, family: IPFamily) throws(Unencodable) -> natsync_rule {
        var out = natsync_rule()
        if let source = rule.source {
            try address(source.cidr, family, &out.source, &out.source_mask)
            if source.inverted { out.flags |= UInt32(NATSYNC_RF_INVERT_SOURCE.rawValue) }
        }
        if let destination = rule.destination {
            try address(destination.cidr, family, &out.dest, &out.dest_mask)
            if destination.inverted { out.flags |= UInt32(NATSYNC_RF_INVERT_DEST.rawValue) }
        }
        if let match = rule.inInterface {
            try copy(match.name, into: &out.in_iface, limit: 15)
            if match.inverted { out.flags |= UInt32(NATSYNC_RF_INVERT_IN.rawValue) }
        }
        if let match = rule.outInterface {
            try copy(match.name, into: &out.out_iface, limit: 15)
            if match.inverted { out.flags |= UInt32(NATSYNC_RF_INVERT_OUT.rawValue) }
        }
        if let proto = rule.protocol {
            out.protocol = UInt16(proto.protocol.number)
            if proto.inverted { out.flags |= UInt32(NATSYNC_RF_INVERT_PROTO.rawValue) }
        }
        guard rule.matches.count <= Int(NATSYNC_MAX_MATCHES) else {
            throw Unencodable(reason: "more than \(NATSYNC_MAX_MATCHES) matches")
        }
        out.match_count = UInt32(rule.matches.count)
        try withUnsafeMutableBytes(of: &out.matches) { (raw) throws(Unencodable) in
            let matches = raw.bindMemory(to: natsync_match.self)
            for (index, match) in rule.matches.enumerated() {
                matches[index] = try encode(match)
            }
        }
        try encodeTarget(rule.target, family: family, into: &out)
        return out
    }

    static func encode(_ match: Match) throws(Unencodable) -> natsync_match {
        var out = natsync_match()
        switch match {
        case .comment(let text):
            out.kind = UInt32(NATSYNC_MATCH_COMMENT.rawValue)
            try copy(text, into: &out.text, limit: 255)
        case .ports(let proto, let ports):
            switch proto {
            case .tcp: out.kind = UInt32(NATSYNC_MATCH_TCP.rawValue)
            case .udp: out.kind = UInt32(NATSYNC_MATCH_UDP.rawValue)
            case .sctp: out.kind = UInt32(NATSYNC_MATCH_SCTP.rawValue)
            }
            if let range = ports.source {
                out.flags |= UInt32(NATSYNC_MF_HAS_SOURCE.rawValue)
                out.source_ports = (range.lower, range.upper)
            }
            if let range = ports.destination {
                out.flags |= UInt32(NATSYNC_MF_HAS_DEST.rawValue)
                out.dest_ports = (range.lower, range.upper)
            }
            if ports.invertSource { out.flags |= UInt32(NATSYNC_MF_INVERT_SOURCE.rawValue) }
            if ports.invertDestination { out.flags |= UInt32(NATSYNC_MF_INVERT_DEST.rawValue) }
        case .statistic(let probability):
            out.kind = UInt32(NATSYNC_MATCH_STATISTIC.rawValue)
            out.value = probability.kernelValue
        case .mark(let mark):
            out.kind = UInt32(NATSYNC_MATCH_MARK.rawValue)
            out.value = mark.value
            out.mask = mark.mask
            if mark.inverted { out.flags |= UInt32(NATSYNC_MF_INVERT.rawValue) }
        case .addressType(let info):
            out.kind = UInt32(NATSYNC_MATCH_ADDRTYPE.rawValue)
            if let type = info.source { out.source_type = bit(type) }
            if let type = info.destination { out.dest_type = bit(type) }
            if info.invertSource { out.flags |= UInt32(NATSYNC_MF_INVERT_SOURCE.rawValue) }
            if info.invertDestination { out.flags |= UInt32(NATSYNC_MF_INVERT_DEST.rawValue) }
        case .recent(let recent):
            out.kind = UInt32(NATSYNC_MATCH_RECENT.rawValue)
            try copy(recent.name, into: &out.text, limit: 199)
            switch recent.action {
            case .set:
                out.flags |= UInt32(NATSYNC_MF_RECENT_SET.rawValue)
            case .check(let seconds, let reap):
                out.flags |= UInt32(NATSYNC_MF_RECENT_CHECK.rawValue)
                if let seconds {
                    out.flags |= UInt32(NATSYNC_MF_RECENT_SECONDS.rawValue)
                    out.seconds = seconds
                }
                if reap { out.flags |= UInt32(NATSYNC_MF_RECENT_REAP.rawValue) }
            }
        case .conntrack(let conntrack):
            out.kind = UInt32(NATSYNC_MATCH_CONNTRACK.rawValue)
            out.states = conntrack.states.rawValue
            if conntrack.inverted { out.flags |= UInt32(NATSYNC_MF_INVERT.rawValue) }
        }
        return out
    }

    static func encodeTarget(_ target: Target, family: IPFamily, into out: inout natsync_rule) throws(Unencodable) {
        switch target {
        case .none: out.target = UInt32(NATSYNC_TARGET_NONE.rawValue)
        case .jump(let chain):
            out.target = UInt32(NATSYNC_TARGET_JUMP.rawValue)
            try copy(chain.rawValue, into: &out.chain, limit: ChainName.maximumLength)
        case .goto(let chain):
            out.target = UInt32(NATSYNC_TARGET_GOTO.rawValue)
            try copy(chain.rawValue, into: &out.chain, limit: ChainName.maximumLength)
        case .accept: out.target = UInt32(NATSYNC_TARGET_ACCEPT.rawValue)
        case .drop: out.target = UInt32(NATSYNC_TARGET_DROP.rawValue)
        case .return: out.target = UInt32(NATSYNC_TARGET_RETURN.rawValue)
        case .reject(let type):
            out.target = UInt32(NATSYNC_TARGET_REJECT.rawValue)
            out.reject_with = rejectCodes(family).first { $0.1 == type }!.0
        case .dnat(let address, let port):
            guard address.family == family else { throw Unencodable(reason: "DNAT target \(address) in an \(family) table") }
            out.target = UInt32(NATSYNC_TARGET_DNAT.rawValue)
            store(address.bytes, into: &out.to_address)
            if let port {
                out.flags |= UInt32(NATSYNC_RF_DNAT_PORT.rawValue)
                out.to_port = port
            }
        case .masquerade(let randomFully):
            out.target = UInt32(NATSYNC_TARGET_MASQUERADE.rawValue)
            if randomFully { out.flags |= UInt32(NATSYNC_RF_RANDOM_FULLY.rawValue) }
        case .mark(let value, let mask):
            out.target = UInt32(NATSYNC_TARGET_MARK.rawValue)
            out.mark_value = value
            out.mark_mask = mask
        }
    }

    /// The rule a decoded entry holds, or `.foreign` when any part of it is not one natsync writes.
    /// Decodes the shim's rule in place: at about 2.5 KB a `natsync_rule` is read through its
    /// pointer, never copied (copies of it were a third of a large table's compare).
    static func decode(_ pointer: UnsafeMutablePointer<natsync_rule>, foreign: Bool, family: IPFamily) -> LiveRule {
        guard !foreign else { return .foreign }
        var rule = Rule(target: .none)
        switch prefix(pointer.pointee.source, pointer.pointee.source_mask, family) {
        case .prefix(let cidr):
            rule.source = AddressMatch(cidr, inverted: pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_SOURCE.rawValue) != 0)
        case .any where pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_SOURCE.rawValue) == 0:
            break
        default:
            return .foreign
        }
        switch prefix(pointer.pointee.dest, pointer.pointee.dest_mask, family) {
        case .prefix(let cidr):
            rule.destination = AddressMatch(cidr, inverted: pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_DEST.rawValue) != 0)
        case .any where pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_DEST.rawValue) == 0:
            break
        default:
            return .foreign
        }
        let inName = string(&pointer.pointee.in_iface)
        if !inName.isEmpty {
            rule.inInterface = InterfaceMatch(inName, inverted: pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_IN.rawValue) != 0)
        }
        let outName = string(&pointer.pointee.out_iface)
        if !outName.isEmpty {
            rule.outInterface = InterfaceMatch(outName, inverted: pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_OUT.rawValue) != 0)
        }
        if pointer.pointee.protocol != 0 {
            guard let proto = TransportProtocol.allCases.first(where: { UInt16($0.number) == pointer.pointee.protocol }) else {
                return .foreign
            }
            rule.protocol = ProtocolMatch(proto, inverted: pointer.pointee.flags & UInt32(NATSYNC_RF_INVERT_PROTO.rawValue) != 0)
        }
        let count = Int(pointer.pointee.match_count)
        var matches: [Match] = []
        var decodable = true
        withUnsafeMutableBytes(of: &pointer.pointee.matches) { bytes in
            let all = bytes.bindMemory(to: natsync_match.self)
            for index in 0..<count {
                guard let match = decode(&all[index]) else {
                    decodable = false
                    return
                }
                matches.append(match)
            }
        }
        guard decodable else { return .foreign }
        rule.matches = matches
        guard let target = decodeTarget(&pointer.pointee, family: family) else { return .foreign }
        rule.target = target
        return .rule(rule)
    }

    static func decode(_ raw: inout natsync_match) -> Match? {
        let flags = raw.flags
        func has(_ flag: natsync_match_flag) -> Bool { flags & UInt32(flag.rawValue) != 0 }
        switch Int(raw.kind) {
        case Int(NATSYNC_MATCH_COMMENT.rawValue):
            return .comment(string(&raw.text))
        case Int(NATSYNC_MATCH_TCP.rawValue), Int(NATSYNC_MATCH_UDP.rawValue), Int(NATSYNC_MATCH_SCTP.rawValue):
            let proto: TransportProtocol =
                raw.kind == UInt32(NATSYNC_MATCH_TCP.rawValue) ? .tcp : raw.kind == UInt32(NATSYNC_MATCH_UDP.rawValue) ? .udp : .sctp
            var ports = PortMatch()
            if has(NATSYNC_MF_HAS_SOURCE) { ports.source = PortRange(raw.source_ports.0, raw.source_ports.1) }
            if has(NATSYNC_MF_HAS_DEST) { ports.destination = PortRange(raw.dest_ports.0, raw.dest_ports.1) }
            ports.invertSource = has(NATSYNC_MF_INVERT_SOURCE)
            ports.invertDestination = has(NATSYNC_MF_INVERT_DEST)
            return .ports(proto, ports)
        case Int(NATSYNC_MATCH_STATISTIC.rawValue):
            guard !has(NATSYNC_MF_INVERT) else { return nil }
            return .statistic(Probability(kernelValue: raw.value))
        case Int(NATSYNC_MATCH_MARK.rawValue):
            return .mark(MarkMatch(value: raw.value, mask: raw.mask, inverted: has(NATSYNC_MF_INVERT)))
        case Int(NATSYNC_MATCH_ADDRTYPE.rawValue):
            var info = AddressTypeMatch()
            if raw.source_type != 0 {
                guard let type = addressType(raw.source_type) else { return nil }
                info.source = type
            }
            if raw.dest_type != 0 {
                guard let type = addressType(raw.dest_type) else { return nil }
                info.destination = type
            }
            info.invertSource = has(NATSYNC_MF_INVERT_SOURCE)
            info.invertDestination = has(NATSYNC_MF_INVERT_DEST)
            return .addressType(info)
        case Int(NATSYNC_MATCH_RECENT.rawValue):
            let name = string(&raw.text)
            if has(NATSYNC_MF_RECENT_SET) {
                guard !has(NATSYNC_MF_RECENT_CHECK) && !has(NATSYNC_MF_RECENT_REAP) && !has(NATSYNC_MF_RECENT_SECONDS)
                else { return nil }
                return .recent(RecentMatch(name: name, action: .set))
            }
            guard has(NATSYNC_MF_RECENT_CHECK) else { return nil }
            let seconds = has(NATSYNC_MF_RECENT_SECONDS) ? raw.seconds : nil
            return .recent(RecentMatch(name: name, action: .check(seconds: seconds, reap: has(NATSYNC_MF_RECENT_REAP))))
        case Int(NATSYNC_MATCH_CONNTRACK.rawValue):
            return .conntrack(ConntrackMatch(states: ConntrackStates(rawValue: raw.states), inverted: has(NATSYNC_MF_INVERT)))
        default:
            return nil
        }
    }

    static func decodeTarget(_ raw: inout natsync_rule, family: IPFamily) -> Target? {
        switch Int(raw.target) {
        case Int(NATSYNC_TARGET_NONE.rawValue): return Target.none
        case Int(NATSYNC_TARGET_JUMP.rawValue): return .jump(ChainName(string(&raw.chain)))
        case Int(NATSYNC_TARGET_GOTO.rawValue): return .goto(ChainName(string(&raw.chain)))
        case Int(NATSYNC_TARGET_ACCEPT.rawValue): return .accept
        case Int(NATSYNC_TARGET_DROP.rawValue): return .drop
        case Int(NATSYNC_TARGET_RETURN.rawValue): return .return
        case Int(NATSYNC_TARGET_REJECT.rawValue):
            return rejectCodes(family).first { $0.0 == raw.reject_with }.map { .reject($0.1) }
        case Int(NATSYNC_TARGET_DNAT.rawValue):
            let address = load(raw.to_address, family)
            let port: UInt16? = raw.flags & UInt32(NATSYNC_RF_DNAT_PORT.rawValue) != 0 ? raw.to_port : nil
            return .dnat(address, port: port)
        case Int(NATSYNC_TARGET_MASQUERADE.rawValue):
            return .masquerade(randomFully: raw.flags & UInt32(NATSYNC_RF_RANDOM_FULLY.rawValue) != 0)
        case Int(NATSYNC_TARGET_MARK.rawValue):
            return .mark(value: raw.mark_value, mask: raw.mark_mask)
        default:
            return nil
        }
    }

    /// `enum ipt_reject_with` and `enum ip6t_reject_with` values natsync writes (the other
    /// variants are foreign).
    static func rejectCodes(_ family: IPFamily) -> [(UInt32, RejectType)] {
        switch family {
        case .ipv4:
            [
                (0, .netUnreachable), (1, .hostUnreachable), (2, .protocolUnreachable), (3, .portUnreachable), (7, .tcpReset),
                (8, .adminProhibited),
            ]
        case .ipv6:
            [(0, .netUnreachable), (1, .adminProhibited), (3, .hostUnreachable), (4, .portUnreachable), (6, .tcpReset)]
        }
    }

    /// `addrtype` stores types as bits `1 << RTN_*`; the enum's case order is the RTN order.
    static func bit(_ type: AddressType) -> UInt16 { 1 << UInt16(AddressType.allCases.firstIndex(of: type)!) }

    static func addressType(_ bits: UInt16) -> AddressType? {
        AddressType.allCases.first { bit($0) == bits }
    }

    /// An address or mask as the shim holds it: IPv4 in the first 4 bytes, IPv6 in all 16.
    typealias AddressBytes = (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
    )

    static func address(_ cidr: CIDR, _ family: IPFamily, _ address: inout AddressBytes, _ mask: inout AddressBytes)
        throws(Unencodable)
    {
        guard cidr.family == family else { throw Unencodable(reason: "prefix \(cidr) in an \(family) table") }
        store(cidr.address.bytes, into: &address)
        store(cidr.mask.bytes, into: &mask)
    }

    static func store(_ bytes: [UInt8], into tuple: inout AddressBytes) {
        withUnsafeMutableBytes(of: &tuple) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes)
        }
    }

    static func load(_ tuple: AddressBytes, _ family: IPFamily) -> IPAddress {
        withUnsafeBytes(of: tuple) { IPAddress(bytes: $0.prefix(family == .ipv4 ? 4 : 16))! }
    }

    enum KernelPrefix {
        /// Mask 0: any address.
        case any
        case prefix(CIDR)
        /// A mask that is not a prefix: iptables can write it, natsync cannot.
        case other
    }

    /// What a kernel address/mask pair holds.
    static func prefix(_ address: AddressBytes, _ mask: AddressBytes, _ family: IPFamily) -> KernelPrefix {
        if family == .ipv4 {
            // Without the arrays of the general path: every rule of a large table comes here.
            let maskValue = UInt32(mask.0) << 24 | UInt32(mask.1) << 16 | UInt32(mask.2) << 8 | UInt32(mask.3)
            guard maskValue != 0 else { return .any }
            let value = UInt32(address.0) << 24 | UInt32(address.1) << 16 | UInt32(address.2) << 8 | UInt32(address.3)
            guard (~maskValue & (~maskValue &+ 1)) == 0, value & ~maskValue == 0,
                let cidr = CIDR(address: .v4(value), prefixLength: maskValue.nonzeroBitCount)
            else { return .other }
            return .prefix(cidr)
        }
        let maskBytes = Array(withUnsafeBytes(of: mask) { $0.prefix(family == .ipv4 ? 4 : 16) })
        guard maskBytes.contains(where: { $0 != 0 }) else { return .any }
        let length = maskBytes.reduce(0) { $0 + $1.nonzeroBitCount }
        let value = load(address, family)
        guard let cidr = CIDR(address: value, prefixLength: length), cidr.mask.bytes == maskBytes, cidr.address == value else {
            return .other
        }
        return .prefix(cidr)
    }

    static func copy<T>(_ text: String, into buffer: inout T, limit: Int) throws(Unencodable) {
        let bytes = Array(text.utf8)
        guard bytes.count <= limit, !bytes.contains(0) else {
            throw Unencodable(reason: "\"\(text.prefix(40))\" is longer than \(limit) bytes")
        }
        withUnsafeMutableBytes(of: &buffer) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes)
        }
    }

    static func string<T>(_ buffer: inout T) -> String {
        withUnsafeBytes(of: &buffer) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

extension RuleCodec {
    /// ``encode(_:family:)`` for a rule of `chain` in `table`, failing as a kernel call would (EINVAL).
    static func encode(_ rule: Rule, family: IPFamily, table: TableName, chain: ChainName) throws(KernelError) -> natsync_rule {
        do {
            return try encode(rule, family: family)
        } catch {
            throw KernelError(errno: EINVAL, operation: "encode rule", table: table, chain: chain, message: error.reason)
        }
    }
}
