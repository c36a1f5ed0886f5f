import CNatsyncShim
import NatsyncIPTables

#if canImport(Glibc)
import Glibc
import NatsyncNet
#endif

extension RuleCodec {
    /// Whether a decoded entry holds exactly `rule`: the same answer as
    /// `decode(pointer, foreign:, family:) == .rule(rule)`, without building a ``Rule``.
    ///
    /// A sync that finds the table as it should be compares every live rule with its desired one;
    /// decoding them into Swift values (arrays, strings, reference counts) was most of its time.
    static func holds(_ pointer: UnsafeMutablePointer<natsync_rule>, _ rule: Rule, family: IPFamily) -> Bool {
        let flags = pointer.pointee.flags
        func flag(_ bit: natsync_rule_flag) -> Bool { flags & UInt32(bit.rawValue) != 0 }
        guard holds(pointer.pointee.source, pointer.pointee.source_mask, flag(NATSYNC_RF_INVERT_SOURCE), rule.source, family),
            holds(pointer.pointee.dest, pointer.pointee.dest_mask, flag(NATSYNC_RF_INVERT_DEST), rule.destination, family)
        else { return false }

        let base = UnsafeRawPointer(pointer)
        guard holds(base + inInterface, capacity: Int(NATSYNC_IFACE_SIZE), flag(NATSYNC_RF_INVERT_IN), rule.inInterface),
            holds(base + outInterface, capacity: Int(NATSYNC_IFACE_SIZE), flag(NATSYNC_RF_INVERT_OUT), rule.outInterface)
        else { return false }

        if let proto = rule.protocol {
            guard pointer.pointee.protocol == UInt16(proto.protocol.number), flag(NATSYNC_RF_INVERT_PROTO) == proto.inverted else {
                return false
            }
        } else if pointer.pointee.protocol != 0 {
            return false
        }

        guard Int(pointer.pointee.match_count) == rule.matches.count else { return false }
        let matches = (base + matchList).assumingMemoryBound(to: natsync_match.self)
        for (index, match) in rule.matches.enumerated() where !holds(matches + index, match) {
            return false
        }
        return holdsTarget(pointer, rule.target, family: family)
    }

    // Computed once: a key path's offset looked up per rule costs runtime metadata lookups.
    private static let inInterface = MemoryLayout<natsync_rule>.offset(of: \.in_iface)!
    private static let outInterface = MemoryLayout<natsync_rule>.offset(of: \.out_iface)!
    private static let matchList = MemoryLayout<natsync_rule>.offset(of: \.matches)!
    private static let chain = MemoryLayout<natsync_rule>.offset(of: \.chain)!
    private static let text = MemoryLayout<natsync_match>.offset(of: \.text)!

    private static func holds(
        _ address: AddressBytes, _ mask: AddressBytes, _ inverted: Bool, _ match: AddressMatch?, _ family: IPFamily
    ) -> Bool {
        guard let match else {
            // decode ignores nothing here: an inverted "any" is foreign.
            return !inverted && isZero(mask, family)
        }
        guard match.inverted == inverted, match.cidr.family == family else { return false }
        if family == .ipv4, case .v4(let network) = match.cidr.address, case .v4(let netmask) = match.cidr.mask {
            let maskValue = UInt32(mask.0) << 24 | UInt32(mask.1) << 16 | UInt32(mask.2) << 8 | UInt32(mask.3)
            let value = UInt32(address.0) << 24 | UInt32(address.1) << 16 | UInt32(address.2) << 8 | UInt32(address.3)
            return maskValue == netmask && value == network && maskValue != 0
        }
        if case .prefix(let cidr) = prefix(address, mask, family) { return cidr == match.cidr }
        return false
    }

    private static func isZero(_ mask: AddressBytes, _ family: IPFamily) -> Bool {
        withUnsafeBytes(of: mask) { $0.prefix(family == .ipv4 ? 4 : 16).allSatisfy { $0 == 0 } }
    }

    /// An interface as decode reads it: an empty name is no match (and its inversion is ignored).
    private static func holds(_ bytes: UnsafeRawPointer, capacity: Int, _ inverted: Bool, _ match: InterfaceMatch?) -> Bool {
        guard let match else { return bytes.load(as: UInt8.self) == 0 }
        return !match.name.isEmpty && match.inverted == inverted && holds(bytes, capacity: capacity, match.name)
    }

    /// Whether the NUL-terminated text at `bytes` is `text`.
    static func holds(_ bytes: UnsafeRawPointer, capacity: Int, _ text: String) -> Bool {
        let fast = text.utf8.withContiguousStorageIfAvailable { utf8 in
            utf8.count < capacity && bytes.load(fromByteOffset: utf8.count, as: UInt8.self) == 0
                && (utf8.isEmpty || memcmp(bytes, utf8.baseAddress!, utf8.count) == 0)
        }
        if let fast { return fast }
        let stored = UnsafeRawBufferPointer(start: bytes, count: capacity).prefix { $0 != 0 }
        return String(decoding: stored, as: UTF8.self) == text
    }

    private static func holds(_ raw: UnsafePointer<natsync_match>, _ match: Match) -> Bool {
        let flags = raw.pointee.flags
        func has(_ flag: natsync_match_flag) -> Bool { flags & UInt32(flag.rawValue) != 0 }
        let kind = raw.pointee.kind
        switch match {
        case .comment(let text):
            return kind == UInt32(NATSYNC_MATCH_COMMENT.rawValue)
                && holds(UnsafeRawPointer(raw) + Self.text, capacity: Int(NATSYNC_TEXT_SIZE), text)
        case .ports(let proto, let ports):
            let expected: natsync_match_kind =
                switch proto {
                case .tcp: NATSYNC_MATCH_TCP
                case .udp: NATSYNC_MATCH_UDP
                case .sctp: NATSYNC_MATCH_SCTP
                }
            guard kind == UInt32(expected.rawValue), has(NATSYNC_MF_INVERT_SOURCE) == ports.invertSource,
                has(NATSYNC_MF_INVERT_DEST) == ports.invertDestination,
                has(NATSYNC_MF_HAS_SOURCE) == (ports.source != nil), has(NATSYNC_MF_HAS_DEST) == (ports.destination != nil)
            else { return false }
            if let range = ports.source, raw.pointee.source_ports != (range.lower, range.upper) { return false }
            if let range = ports.destination, raw.pointee.dest_ports != (range.lower, range.upper) { return false }
            return true
        case .statistic(let probability):
            return kind == UInt32(NATSYNC_MATCH_STATISTIC.rawValue) && !has(NATSYNC_MF_INVERT)
                && raw.pointee.value == probability.kernelValue
        case .mark(let mark):
            return kind == UInt32(NATSYNC_MATCH_MARK.rawValue) && raw.pointee.value == mark.value && raw.pointee.mask == mark.mask
                && has(NATSYNC_MF_INVERT) == mark.inverted
        case .addressType(let info):
            return kind == UInt32(NATSYNC_MATCH_ADDRTYPE.rawValue) && raw.pointee.source_type == (info.source.map(bit) ?? 0)
                && raw.pointee.dest_type == (info.destination.map(bit) ?? 0)
                && has(NATSYNC_MF_INVERT_SOURCE) == info.invertSource && has(NATSYNC_MF_INVERT_DEST) == info.invertDestination
        case .recent(let recent):
            guard kind == UInt32(NATSYNC_MATCH_RECENT.rawValue),
                holds(UnsafeRawPointer(raw) + Self.text, capacity: Int(NATSYNC_TEXT_SIZE), recent.name)
            else { return false }
            switch recent.action {
            case .set:
                return has(NATSYNC_MF_RECENT_SET) && !has(NATSYNC_MF_RECENT_CHECK) && !has(NATSYNC_MF_RECENT_REAP)
                    && !has(NATSYNC_MF_RECENT_SECONDS)
            case .check(let seconds, let reap):
                guard !has(NATSYNC_MF_RECENT_SET), has(NATSYNC_MF_RECENT_CHECK), has(NATSYNC_MF_RECENT_REAP) == reap,
                    has(NATSYNC_MF_RECENT_SECONDS) == (seconds != nil)
                else { return false }
                return seconds.map { $0 == raw.pointee.seconds } ?? true
            }
        case .conntrack(let conntrack):
            return kind == UInt32(NATSYNC_MATCH_CONNTRACK.rawValue) && raw.pointee.states == conntrack.states.rawValue
                && has(NATSYNC_MF_INVERT) == conntrack.inverted
        }
    }

    private static func holdsTarget(_ raw: UnsafeMutablePointer<natsync_rule>, _ target: Target, family: IPFamily) -> Bool {
        let kind = raw.pointee.target
        func chain(_ name: ChainName) -> Bool {
            holds(UnsafeRawPointer(raw) + Self.chain, capacity: Int(NATSYNC_CHAIN_SIZE), name.rawValue)
        }
        switch target {
        case .none: return kind == UInt32(NATSYNC_TARGET_NONE.rawValue)
        case .jump(let name): return kind == UInt32(NATSYNC_TARGET_JUMP.rawValue) && chain(name)
        case .goto(let name): return kind == UInt32(NATSYNC_TARGET_GOTO.rawValue) && chain(name)
        case .accept: return kind == UInt32(NATSYNC_TARGET_ACCEPT.rawValue)
        case .drop: return kind == UInt32(NATSYNC_TARGET_DROP.rawValue)
        case .return: return kind == UInt32(NATSYNC_TARGET_RETURN.rawValue)
        case .reject(let type):
            return kind == UInt32(NATSYNC_TARGET_REJECT.rawValue)
                && rejectCodes(family).first { $0.0 == raw.pointee.reject_with }?.1 == type
        case .dnat(let address, let port):
            guard kind == UInt32(NATSYNC_TARGET_DNAT.rawValue), address.family == family,
                (raw.pointee.flags & UInt32(NATSYNC_RF_DNAT_PORT.rawValue) != 0) == (port != nil),
                port.map({ $0 == raw.pointee.to_port }) ?? true
            else { return false }
            if case .v4(let value) = address {
                let bytes = raw.pointee.to_address
                return value == UInt32(bytes.0) << 24 | UInt32(bytes.1) << 16 | UInt32(bytes.2) << 8 | UInt32(bytes.3)
            }
            return load(raw.pointee.to_address, family) == address
        case .masquerade(let randomFully):
            return kind == UInt32(NATSYNC_TARGET_MASQUERADE.rawValue)
                && (raw.pointee.flags & UInt32(NATSYNC_RF_RANDOM_FULLY.rawValue) != 0) == randomFully
        case .mark(let value, let mask):
            return kind == UInt32(NATSYNC_TARGET_MARK.rawValue) && raw.pointee.mark_value == value && raw.pointee.mark_mask == mask
        }
    }
}
