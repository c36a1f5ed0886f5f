import CNatsyncShim
import NatsyncModel
import NatsyncIPTables
import NatsyncReconcile

/// Reads chains through one source of entries, libiptc's handle (``IPTablesHandle``) or the
/// kernel's blob walked directly (``TableBlob``): which chains to decode, and the in-place
/// compare with the desired chains that spares decoding the ones already right.
struct ChainReader {
    let family: IPFamily
    /// The first rule entry of the chain at a position of the names being read.
    let first: (Int) -> UnsafeRawPointer?
    /// The entry after one of the chain at a position, nil at its end.
    let next: (Int, UnsafeRawPointer) -> UnsafeRawPointer?
    /// Decodes an entry (`natsync_decode_rule`): nonzero for a foreign rule.
    let decode: (UnsafeRawPointer, UnsafeMutablePointer<natsync_rule>) -> Int32
    /// The source may be read from several threads at once (the blob: plain memory read by the
    /// shim's own code; never libiptc, which keeps iterator state in its handle).
    var concurrent = false

    /// The chains called `names` (in that order), with the rules of those `decode` selects. A
    /// user chain that `desired` also holds is first compared with it in place; when they are
    /// equal it is marked so and not decoded.
    func chains(_ names: [ChainName], decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents?)
        -> [LiveTable.LiveChain]
    {
        var wanted: [ChainName: Int] = [:]
        if let desired {
            wanted.reserveCapacity(desired.chains.count)
            for (index, chain) in desired.chains.enumerated() where !chain.name.isBuiltin { wanted[chain.name] = index }
        }
        let read = { (position: Int, name: ChainName) -> LiveTable.LiveChain in
            guard decode(name) else { return LiveTable.LiveChain(name: name, rules: nil) }
            if let index = wanted[name], holds(desired!.chains[index].rules, inChainAt: position) {
                return LiveTable.LiveChain(name: name, rules: nil, matchesDesired: true)
            }
            return LiveTable.LiveChain(name: name, rules: rules(ofChainAt: position))
        }
        guard concurrent else { return names.enumerated().map(read) }
        // Each chain is read by one thread; the source and the desired rules are only read.
        return withoutActuallyEscaping(read) { read in
            let shared = SharedReader(read: read)
            return Array(names.enumerated()).concurrentMap { shared.read($0.offset, $0.element) }
        }
    }

    /// Whether the chain at `position` holds exactly `rules`, compared in place (nothing decoded
    /// into Swift values).
    func holds(_ rules: [Rule], inChainAt position: Int) -> Bool {
        var raw = natsync_rule()
        return withUnsafeMutablePointer(to: &raw) { raw in
            rules.withUnsafeBufferPointer { rules in
                var entry = first(position)
                for index in rules.indices {
                    guard let current = entry, decode(current, raw) == 0, RuleCodec.holds(raw, rules[index], family: family)
                    else { return false }
                    entry = next(position, current)
                }
                return entry == nil
            }
        }
    }

    /// Calls `body` with each entry of the chain at `position`, decoded into `raw` (and whether
    /// it is foreign).
    func forEachEntry(
        ofChainAt position: Int,
        _ body: (_ raw: UnsafeMutablePointer<natsync_rule>, _ foreign: Bool, _ entry: UnsafeRawPointer) -> Void
    ) {
        var raw = natsync_rule()
        withUnsafeMutablePointer(to: &raw) { raw in
            var entry = first(position)
            while let current = entry {
                body(raw, decode(current, raw) != 0, current)
                entry = next(position, current)
            }
        }
    }

    /// The rules of the chain at `position`, decoded.
    func rules(ofChainAt position: Int) -> [LiveRule] {
        var result: [LiveRule] = []
        forEachEntry(ofChainAt: position) { raw, foreign, _ in result.append(RuleCodec.decode(raw, foreign: foreign, family: family)) }
        return result
    }
}

/// The per-chain read of a concurrent source, handed to the threads of one `concurrentMap`.
private struct SharedReader: @unchecked Sendable {
    let read: (Int, ChainName) -> LiveTable.LiveChain
}
