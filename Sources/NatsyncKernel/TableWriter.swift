import NatsyncIPTables
import NatsyncModel
import NatsyncReconcile
import NatsyncUtilities

extension TableBlob {
    /// Replaces the table with this live one changed by `plan`, in one `SET_REPLACE`, without
    /// libiptc: the chains the plan leaves alone are copied (their counters kept), neighbours a
    /// run of bytes at a time, the others written from its rules, in the layout libiptc gives a
    /// table (built-in chains in hook order, then user chains in strcmp order).
    ///
    /// libiptc would first build a structure for every rule of the table (`iptc_init`), then
    /// rebuild the blob from them; the blob already read holds everything the change keeps.
    ///
    /// - Parameter placingByName: read every live chain's name and place the chains by them, as
    ///   a table whose user chains someone else laid out out of strcmp order needs (any table can
    ///   be written so).
    /// - Warning: hold the ``XtablesLock`` from the read until this returns. If someone changed
    ///   the table since the read, the kernel refuses the replace (``KernelError/tableChanged``).
    func write(_ plan: TablePlan, placingByName: Bool = false) throws(KernelError) {
        let writer = try Shim.openWriter(pointer, table: table)
        defer { Shim.freeWriter(writer) }
        let blob = pointer
        let table = table
        let family = family

        func write(_ rule: Rule, in chain: ChainName) throws(KernelError) {
            var raw = try RuleCodec.encode(rule, family: family, table: table, chain: chain)
            try Shim.writeRule(writer, &raw, in: chain, table: table)
        }

        let builtins = (0..<Shim.chainCount(blob)).filter { !Shim.isUserChain(blob, $0) }
        let users =
            Shim.usersSorted(blob) && !placingByName ? userSegments(plan, after: builtins.count) : userSegmentsByName(plan)
        // The compare's, the plan's and the ordering's scratch is freed: give its pages back
        // before the new table's blob, the size of the live one, is built.
        ProcessMemory.returnFreedPages()

        for position in builtins {
            let name = ChainName(String(cString: Shim.chainName(blob, position)))
            enum Item {
                case live(Int)
                case rule(Rule)
            }
            var count = 0
            var entry = Shim.firstRule(blob, chain: position)
            while let current = entry {
                count += 1
                entry = Shim.nextRule(blob, chain: position, after: current)
            }
            var items = (0..<count).map(Item.live)
            for deletion in plan.jumpDeletions where deletion.chain == name { items.remove(at: deletion.index) }
            for insertion in plan.jumpInsertions where insertion.chain == name { items.insert(.rule(insertion.rule), at: 0) }
            try Shim.beginChain(writer, name, replacing: nil, table: table)
            for item in items {
                switch item {
                case .live(let index): try Shim.copyRule(writer, chain: position, position: index, name: name, table: table)
                case .rule(let rule): try write(rule, in: name)
                }
            }
            try Shim.endChain(writer, name, table: table)
        }
        for segment in users {
            switch segment {
            case .copy(let chains):
                try Shim.copyChains(writer, chains, table: table)
            case .write(let chain):
                try Shim.beginChain(writer, chain.name, replacing: chain.livePosition, table: table)
                for rule in chain.rules ?? [] { try write(rule, in: chain.name) }
                try Shim.endChain(writer, chain.name, table: table)
            }
        }
        try Shim.commitWriter(writer, table: table, family: family)
    }

    /// The user chains to write when the live ones are in strcmp order, from position
    /// `firstUser` on: the kept ones as runs of neighbours, and between them the rewritten and the
    /// new chains, placed by halving over the live names. No live chain's name is made into a
    /// string: a change mostly leaves all but a few of a hundred thousand chains alone.
    private func userSegments(_ plan: TablePlan, after firstUser: Int) -> [UserSegment] {
        let blob = pointer
        func search(_ name: ChainName) -> (position: Int, found: Bool) { Shim.searchUserChain(blob, name) }
        var changes: [(position: Int, chain: UserChain?)] = []
        var created = plan.created.map { UserChain(name: $0.name, livePosition: nil, rules: $0.rules) }
        for (name, _) in plan.deleted {
            let (position, found) = search(name)
            if found { changes.append((position, nil)) }
        }
        for (chain, _) in plan.rewritten {
            let (position, found) = search(chain.name)
            if found {
                changes.append((position, UserChain(name: chain.name, livePosition: position, rules: chain.rules)))
            } else {
                created.append(UserChain(name: chain.name, livePosition: nil, rules: chain.rules))
            }
        }
        changes.sort { $0.position < $1.position }
        var ordered = StrcmpOrdered(consume created)
        let places = (0..<ordered.count).map { search(ordered.name($0)).position }

        var segments: [UserSegment] = []
        var kept = firstUser
        func keep(upTo end: Int) {
            if kept < end { segments.append(.copy(kept..<end)) }
            kept = max(kept, end)
        }
        var next = 0
        func create(upTo end: Int) {
            while next < ordered.count && places[next] <= end {
                keep(upTo: places[next])
                segments.append(.write(ordered.take(next)))
                next += 1
            }
        }
        for (position, chain) in changes {
            create(upTo: position)
            keep(upTo: position)
            if let chain { segments.append(.write(chain)) }
            kept = position + 1
        }
        let end = Shim.chainCount(blob)
        create(upTo: end)
        keep(upTo: end)
        return segments
    }

    /// The user chains to write when someone else laid out the live ones: every name read, the
    /// kept and rewritten chains sorted, the new ones merged in, each live chain copied alone.
    private func userSegmentsByName(_ plan: TablePlan) -> [UserSegment] {
        let blob = pointer
        let deleted = Set(plan.deleted.map(\.name))
        var rewritten: [ChainName: [Rule]] = [:]
        for (chain, _) in plan.rewritten { rewritten[chain.name] = chain.rules }
        var live: [UserChain] = []
        for position in 0..<Shim.chainCount(blob) where Shim.isUserChain(blob, position) {
            let name = ChainName(String(cString: Shim.chainName(blob, position)))
            guard !deleted.contains(name) else { continue }
            live.append(UserChain(name: name, livePosition: position, rules: rewritten.removeValue(forKey: name)))
        }
        var created = plan.created.map { UserChain(name: $0.name, livePosition: nil, rules: $0.rules) }
        for (name, rules) in rewritten { created.append(UserChain(name: name, livePosition: nil, rules: rules)) }
        return UserChain.merged(consume live, consume created).map { chain in
            if chain.rules == nil, let position = chain.livePosition { .copy(position..<position + 1) } else { .write(chain) }
        }
    }
}

/// A stretch of the user chains of the table being written.
enum UserSegment {
    /// Live chains kept as they are, neighbours in the blob.
    case copy(Range<Int>)
    /// A chain written from its rules (a new one, or one rewritten in place of a live one).
    case write(UserChain)
}

/// A user chain of the table being written: copied from the live chain at `livePosition`, or
/// written from `rules` (a rewritten chain has both, a new one no live position).
struct UserChain {
    var name: ChainName
    var livePosition: Int?
    var rules: [Rule]?

    /// `live` and `created` (disjoint) in strcmp's order, which libiptc keeps and the writer
    /// checks. The live chains mostly are in that order already and the new ones are few (but for
    /// a fresh table), so each list is sorted only when it is not, and each new chain finds its
    /// place among the live ones by halving.
    static func merged(_ live: consuming [UserChain], _ created: consuming [UserChain]) -> [UserChain] {
        var live = StrcmpOrdered(consume live)
        var created = StrcmpOrdered(consume created)
        var positions: [Int] = []
        positions.reserveCapacity(created.count)
        var next = 0
        for index in 0..<created.count {
            var (low, high) = (next, live.count)
            while low < high {
                let middle = (low + high) / 2
                if StrcmpOrdered.precedes(live, middle, created, index) { low = middle + 1 } else { high = middle }
            }
            positions.append(low)
            next = low
        }
        var result: [UserChain] = []
        result.reserveCapacity(live.count + created.count)
        next = 0
        for (index, position) in positions.enumerated() {
            for kept in next..<position { result.append(live.take(kept)) }
            result.append(created.take(index))
            next = position
        }
        for kept in next..<live.count { result.append(live.take(kept)) }
        return result
    }

    /// A chain in no table, left behind by ``StrcmpOrdered/take(_:)``.
    static let taken = UserChain(name: ChainName(""), livePosition: nil, rules: nil)
}

/// Chains sorted by name in strcmp's order, by their names' ``ByteOrderKey``s (a chain name is
/// at most 28 bytes, so the key holds it whole; equal keys fall back to the names): comparing
/// the names as strings made sorting a fresh table's hundred thousand chains a tenth of a full
/// sync, and grow faster than the table.
struct StrcmpOrdered {
    private var chains: [UserChain]
    private var keys: [ByteOrderKey]

    init(_ chains: consuming [UserChain]) {
        var keys: [ByteOrderKey] = []
        keys.reserveCapacity(chains.count)
        for position in chains.indices { keys.append(ByteOrderKey(chains[position].name.rawValue)) }
        (self.chains, self.keys) = (consume chains, keys)
        if self.chains.indices.dropFirst().allSatisfy({ Self.precedes(self, $0 - 1, self, $0) }) { return }
        let order = self.chains.indices.sorted { Self.precedes(self, $0, self, $1) }
        // The chains are moved into their places, not copied: a copy retains what each holds.
        var unordered = self.chains
        self.chains = []
        self.chains = order.map { index in
            var chain = UserChain.taken
            swap(&chain, &unordered[index])
            return chain
        }
        self.keys = order.map { keys[$0] }
    }

    var count: Int { chains.count }

    /// The chain at `index`, moved out (its place keeps ``UserChain/taken``).
    mutating func take(_ index: Int) -> UserChain {
        var chain = UserChain.taken
        swap(&chain, &chains[index])
        return chain
    }

    func name(_ index: Int) -> ChainName { chains[index].name }

    /// Whether the chain at `i` of `a` comes before the one at `j` of `b`.
    static func precedes(_ a: StrcmpOrdered, _ i: Int, _ b: StrcmpOrdered, _ j: Int) -> Bool {
        guard a.keys[i] == b.keys[j] else { return a.keys[i] < b.keys[j] }
        return a.chains[i].name.rawValue.utf8.lexicographicallyPrecedes(b.chains[j].name.rawValue.utf8)
    }
}
