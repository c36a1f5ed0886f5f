import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncReconcile

/// How nat KUBE-SERVICES finds a service's rules (`--service-dispatch`).
public enum ServiceDispatch: String, Hashable, Sendable, CaseIterable {
    /// kube-proxy's layout: one rule per service address in KUBE-SERVICES, checked in turn.
    case linear
    /// A tree of chains keyed on destination prefixes: a first packet meets a few hundred rules
    /// at most, whatever the number of services.
    case tree
}

/// The `tree` layout of nat KUBE-SERVICES.
///
/// Three levels of chains keyed on the destination's prefix (IPv4 /8, /16, /24; IPv6 /104, /112,
/// /120, where service CIDRs vary), each level jumping on `-d PREFIX` to the next, and leaves
/// holding exactly kube-proxy's per-service rules for the addresses in their prefix, in kube-proxy's
/// order. Every level holds at most 256 rules per distinct prefix below it, so a packet meets at
/// most 3 x 256 jump rules plus its leaf, instead of one rule per service address. The shape
/// depends only on the set of addresses: a service change rewrites its leaf, and the chains above
/// it only when a prefix appears or disappears.
public enum DispatchTree {
    /// The prefix lengths of the levels below KUBE-SERVICES, per family.
    static func levels(_ family: IPFamily) -> [Int] { family == .ipv4 ? [8, 16, 24] : [104, 112, 120] }

    /// Chains natsync owns for the tree start with this.
    public static let chainPrefix = Ownership.Prefix.dispatchTree

    /// The chain of one prefix: `NATSYNC-DSP-0A600000-16` for 10.96.0.0/16 (IPv6: a hash).
    public static func chainName(_ prefix: CIDR) -> ChainName {
        switch prefix.address {
        case .v4(let value):
            let hex = String(value, radix: 16, uppercase: true)
            return ChainName(chainPrefix + String(repeating: "0", count: 8 - hex.count) + hex + "-\(prefix.prefixLength)")
        case .v6:
            return ChainName(chainPrefix + ChainNames.hash(prefix.description))
        }
    }

    /// The chains a packet to `address` passes, top level first.
    public static func path(to address: IPAddress) -> [ChainName] {
        levels(address.family).compactMap { CIDR(address: address, prefixLength: $0).map(chainName) }
    }

    /// Splits the per-service rules of nat KUBE-SERVICES into the top-level jumps and the tree's
    /// chains. Rules whose destination is not a single address stay at the top, in their place.
    public static func build(_ rules: [Rule], family: IPFamily) -> (top: [Rule], chains: [Chain]) {
        let levels = levels(family)
        var top: [Rule] = []
        // Children of each node in first-seen order; node nil is KUBE-SERVICES itself.
        var children: [CIDR?: [CIDR]] = [:]
        var leaves: [CIDR: [Rule]] = [:]
        var seen = Set<CIDR>()
        for rule in rules {
            guard let destination = rule.destination, !destination.inverted, destination.cidr.isHost,
                destination.cidr.family == family
            else {
                top.append(rule)
                continue
            }
            var parent: CIDR?
            for length in levels {
                let prefix = CIDR(address: destination.cidr.address, prefixLength: length)!
                if seen.insert(prefix).inserted { children[parent, default: []].append(prefix) }
                parent = prefix
            }
            leaves[parent!, default: []].append(rule)
        }
        var chains: [Chain] = []
        func jumps(below parent: CIDR?) -> [Rule] {
            (children[parent] ?? []).sorted().map { Rule(destination: AddressMatch($0), target: .jump(chainName($0))) }
        }
        func add(_ prefix: CIDR) {
            if let rules = leaves[prefix] {
                chains.append(Chain(chainName(prefix), rules: rules))
                return
            }
            chains.append(Chain(chainName(prefix), rules: jumps(below: prefix)))
            for child in (children[prefix] ?? []).sorted() { add(child) }
        }
        for root in (children[nil] ?? []).sorted() { add(root) }
        return (jumps(below: nil) + top, chains)
    }
}
