import NatsyncIPTables
import NatsyncNet

/// natsync's rules as nf_tables expressions, in the form iptables-nft writes them: `iptables-nft-save`
/// prints them as it prints its own, and a live rule equals a desired one exactly when the bytes
/// the kernel dumps equal the encoded ones (counter values aside).
enum NFTRuleEncoding {
    /// The payload of a rule's `NFTA_RULE_EXPRESSIONS`, as the kernel dumps it.
    static func expressions(of rule: Rule, family: IPFamily) throws(RuleCodec.Unencodable) -> [UInt8] {
        var raw = try RuleCodec.encode(rule, family: family)
        guard let bytes = Shim.nftExpressions(of: &raw, family: family) else {
            throw RuleCodec.Unencodable(reason: "no nf_tables form for \(RestoreText.arguments(of: rule, family: family))")
        }
        return bytes
    }
}
