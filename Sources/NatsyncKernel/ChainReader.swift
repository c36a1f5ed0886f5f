import CNatsyncShim
import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncReconcile

#if canImport(Glibc)
import Glibc
import NatsyncUtilities
#endif

/// Reads chains through one source of entries, libiptc's handle (``IPTablesHandle``) or the
/// kernel's blob walked directly (``TableBlob``): which chains to decode, and the in-place
/// compare with the desired chains that spares decoding the ones already right.
struct ChainReader {
    let family: IPFamily
    /// The first rule entry of the chain at a position of the names being read.
    let first: (Int) -> UnsafeRawPointer?
    /// The entry after one of the chain at a position, nil at its end.
    let next: (Int, UnsafeRawPointer) -> UnsafeRawPointer?
    /// Decodes an entry (`natsync_decode_rule`): true for a foreign rule.
    let decode: (UnsafeRawPointer, UnsafeMutablePointer<natsync_rule>) -> Bool
    /// The source may be read from several threads at once (the blob: plain memory read by the
    /// shim's own code; never libiptc, which keeps iterator state in its handle).
    var concurrent = false

    /// The chains called `names` (in that order), as ``chains(count:key:name:decoding:comparingWith:)``
    /// reads them.
    func chains(_ names: [ChainName], decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents?)
        -> [LiveTable.LiveChain]
    {
        chains(
            count: names.count, key: { (ByteOrderKey(names[$0].rawValue), names[$0].rawValue.utf8.count) }, name: { names[$0] },
            decoding: decode, comparingWith: desired)
    }

    /// The chains at positions `0 ..< count` (in that order), with the rules of those `decode`
    /// selects. A user chain that `desired` also holds is first compared with it in place; when
    /// they are equal it is marked so and not decoded.
    ///
    /// Chains are paired with the desired ones by `key` (a name's ``ByteOrderKey`` and length in
    /// bytes), and a paired chain takes the desired chain's name: `name` makes one only for a
    /// chain the desired table does not hold, so a table as it should be is read without making
    /// or hashing a hundred thousand strings.
    func chains(
        count: Int, key: (Int) -> (key: ByteOrderKey, length: Int), name: (Int) -> ChainName, decoding decode: (ChainName) -> Bool,
        comparingWith desired: TableContents?
    ) -> [LiveTable.LiveChain] {
        let desiredChains = desired?.chains ?? []
        // The smaller side's keys are put in a dictionary: a fresh table's few chains are looked
        // for among the desired ones, not the other way round (a dictionary of a hundred thousand
        // keys is 15 MB at the peak of the full sync).
        var wanted: [ByteOrderKey: Int] = [:]
        var pairedLive: [Int?]? = nil
        if count < desiredChains.count / 2 {
            var live: [ByteOrderKey: Int] = [:]
            for position in 0..<count { live[key(position).key] = position }
            var pairs = [Int?](repeating: nil, count: count)
            for (index, chain) in desiredChains.enumerated() where !chain.name.isBuiltin {
                if let position = live[ByteOrderKey(chain.name.rawValue)] { pairs[position] = index }
            }
            pairedLive = pairs
        } else {
            wanted.reserveCapacity(desiredChains.count)
            for (index, chain) in desiredChains.enumerated() where !chain.name.isBuiltin {
                wanted[ByteOrderKey(chain.name.rawValue)] = index
            }
        }
        // The desired chains through a pointer: the threads would otherwise retain and release
        // the one array's storage for every chain, each taking its counter from the other core.
        return desiredChains.withUnsafeBufferPointer { desiredChains in
            let read = { [wanted, pairedLive] (position: Int) -> LiveTable.LiveChain in
                let (key, length) = key(position)
                var index = pairedLive.map { $0[position] } ?? wanted[key]
                let chainName: ChainName
                if let found = index, length < 48, desiredChains[found].name.rawValue.utf8.count == length {
                    chainName = desiredChains[found].name
                } else {
                    // Names the key does not hold whole are told apart by their bytes.
                    chainName = name(position)
                    if let found = index, desiredChains[found].name != chainName { index = nil }
                }
                guard decode(chainName) else { return LiveTable.LiveChain(name: chainName, rules: nil, desiredIndex: index) }
                if let index, holds(desiredChains[index].rules, inChainAt: position) {
                    return LiveTable.LiveChain(name: chainName, rules: nil, matchesDesired: true, desiredIndex: index)
                }
                return LiveTable.LiveChain(name: chainName, rules: rules(ofChainAt: position), desiredIndex: index)
            }
            guard concurrent else { return (0..<count).map(read) }
            // Each chain is read by one thread; the source and the desired rules are only read.
            return withoutActuallyEscaping(read) { read in
                let shared = SharedReader(read: read)
                return Array(0..<count).concurrentMap { shared.read($0) }
            }
        }
    }

    /// A NUL-terminated name's key and length in bytes.
    static func key(ofCString name: UnsafePointer<CChar>) -> (key: ByteOrderKey, length: Int) {
        let length = strlen(name)
        let key = name.withMemoryRebound(to: UInt8.self, capacity: length) { ByteOrderKey(UnsafeBufferPointer(start: $0, count: length)) }
        return (key, length)
    }

    /// Whether the chain at `position` holds exactly `rules`, compared in place (nothing decoded
    /// into Swift values).
    func holds(_ rules: [Rule], inChainAt position: Int) -> Bool {
        var raw = natsync_rule()
        return withUnsafeMutablePointer(to: &raw) { raw in
            rules.withUnsafeBufferPointer { rules in
                var entry = first(position)
                for index in rules.indices {
                    guard let current = entry, !decode(current, raw), RuleCodec.holds(raw, rules[index], family: family)
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
                body(raw, decode(current, raw), current)
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
    let read: (Int) -> LiveTable.LiveChain
}
