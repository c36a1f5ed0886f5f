import CNatsyncShim
import NatsyncIPTables
import NatsyncNet

#if canImport(Glibc)
import Glibc
#endif

/// Every call into the C shim, one wrapper per shim function: the rest of the module reaches the
/// kernel only through here, as swift-system routes every system call through one place.
///
/// A call that can fail says so by throwing a ``KernelError`` that names the operation (libiptc's
/// or the kernel's name for it) and where it happened; the errno and message are the ones the shim
/// captured on this thread when the call failed. Iterating over a table the shim already holds in
/// memory cannot fail and returns plain values. In debug builds each fallible call first asks
/// ``KernelFaults`` whether a test wants it to fail.
enum Shim {
    /// The shim functions that can fail, by their C names (the names `NATSYNC_KERNEL_FAULTS` uses).
    enum Call: String, CaseIterable, Sendable {
        case tableOpen = "natsync_table_open"
        case tableCommit = "natsync_table_commit"
        case createChain = "natsync_create_chain"
        case flushChain = "natsync_flush_chain"
        case deleteChain = "natsync_delete_chain"
        case appendRule = "natsync_append_rule"
        case insertRule = "natsync_insert_rule"
        case deleteRule = "natsync_delete_rule"
        case tableInfo = "natsync_table_info"
        case blobRead = "natsync_blob_read"
        case writerOpen = "natsync_writer_open"
        case writerBeginChain = "natsync_writer_begin_chain"
        case writerCopyRule = "natsync_writer_copy_rule"
        case writerCopyChains = "natsync_writer_copy_chains"
        case writerRule = "natsync_writer_rule"
        case writerEndChain = "natsync_writer_end_chain"
        case writerCommit = "natsync_writer_commit"
        case enterNetworkNamespace = "natsync_enter_network_namespace"
        case pipe = "natsync_pipe"
        case conntrackDeleteUDP = "natsync_conntrack_delete_udp"
        case conntrackDeleteUDPFrontends = "natsync_conntrack_delete_udp_frontends"
        case nftGeneration = "natsync_nft_generation"
        case nftDumpRules = "natsync_nft_dump_rules"
        case nftDumpChains = "natsync_nft_dump_chains"
        case nftBatchCommit = "natsync_nft_batch_commit"
    }

    /// The error of the shim call that just failed on this thread (libiptc's message depends on a
    /// global the next call overwrites, so the shim keeps it).
    static func lastError(_ operation: String, table: TableName? = nil, chain: ChainName? = nil) -> KernelError {
        KernelError(
            errno: natsync_last_errno(), operation: operation, table: table, chain: chain, message: String(cString: natsync_last_error()))
    }

    /// Runs `body`, a shim call that returns whether it succeeded, unless a test made `call` fail.
    @inline(__always)
    private static func check(
        _ call: Call, _ operation: @autoclosure () -> String, table: TableName? = nil, chain: ChainName? = nil, _ body: () -> Bool
    ) throws(KernelError) {
        if let injected = injectedFault(call, operation(), table: table, chain: chain) { throw injected }
        guard body() else { throw lastError(operation(), table: table, chain: chain) }
    }

    /// Runs `body`, a shim call that returns a new object or nil, unless a test made `call` fail.
    @inline(__always)
    private static func open(_ call: Call, _ operation: @autoclosure () -> String, table: TableName, _ body: () -> OpaquePointer?)
        throws(KernelError) -> OpaquePointer
    {
        var opened: OpaquePointer?
        try check(call, operation(), table: table) {
            opened = body()
            return opened != nil
        }
        return opened!
    }

    @inline(__always)
    private static func injectedFault(_ call: Call, _ operation: @autoclosure () -> String, table: TableName?, chain: ChainName?)
        -> KernelError?
    {
        #if DEBUG
        if let errno = KernelFaults.take(call) {
            return KernelError(errno: errno, operation: operation(), table: table, chain: chain, message: KernelError.describe(errno))
        }
        #endif
        return nil
    }

    private static func operation(_ legacy: String, _ family: IPFamily) -> String {
        family == .ipv4 ? legacy : legacy.replacingOccurrences(of: "IPT_", with: "IP6T_").replacingOccurrences(of: "iptc_", with: "ip6tc_")
    }

    // MARK: libiptc handles

    /// `iptc_init` or `ip6tc_init`: the table read from the kernel into a handle.
    static func openTable(_ table: TableName, family: IPFamily) throws(KernelError) -> OpaquePointer {
        try open(.tableOpen, operation("iptc_init", family), table: table) { natsync_table_open(table.rawValue, family.shimFamily) }
    }

    static func freeTable(_ handle: OpaquePointer) { natsync_table_free(handle) }

    /// `iptc_commit`: replaces the table with the handle's, or does nothing when it is unchanged.
    static func commit(_ handle: OpaquePointer, table: TableName, family: IPFamily) throws(KernelError) {
        try check(.tableCommit, operation("iptc_commit", family), table: table) { natsync_table_commit(handle) == 0 }
    }

    static func firstChain(_ handle: OpaquePointer) -> UnsafePointer<CChar>? { natsync_first_chain(handle) }
    static func nextChain(_ handle: OpaquePointer) -> UnsafePointer<CChar>? { natsync_next_chain(handle) }
    static func chainExists(_ handle: OpaquePointer, _ chain: ChainName) -> Bool { natsync_chain_exists(handle, chain.rawValue) != 0 }
    static func firstRule(_ handle: OpaquePointer, _ chain: ChainName) -> UnsafeRawPointer? { natsync_first_rule(handle, chain.rawValue) }
    static func nextRule(_ handle: OpaquePointer, after entry: UnsafeRawPointer) -> UnsafeRawPointer? { natsync_next_rule(handle, entry) }

    /// Decodes an entry into `raw`; true for a foreign rule (one natsync does not write).
    static func decodeRule(_ handle: OpaquePointer, _ entry: UnsafeRawPointer, into raw: UnsafeMutablePointer<natsync_rule>) -> Bool {
        natsync_decode_rule(handle, entry, raw) != 0
    }

    /// An entry's extensions as "-m NAME ... -j TARGET", without their options.
    static func describeExtensions(_ handle: OpaquePointer, _ entry: UnsafeRawPointer) -> String {
        var text = [CChar](repeating: 0, count: 512)
        natsync_describe_extensions(handle, entry, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A built-in chain's policy; nil for a user chain.
    static func policy(_ handle: OpaquePointer, _ chain: ChainName) -> String? {
        natsync_chain_policy(handle, chain.rawValue).map { String(cString: $0) }
    }

    static func createChain(_ handle: OpaquePointer, _ chain: ChainName, table: TableName) throws(KernelError) {
        try check(.createChain, "iptc_create_chain", table: table, chain: chain) { natsync_create_chain(handle, chain.rawValue) == 0 }
    }

    static func flushChain(_ handle: OpaquePointer, _ chain: ChainName, table: TableName) throws(KernelError) {
        try check(.flushChain, "iptc_flush_entries", table: table, chain: chain) { natsync_flush_chain(handle, chain.rawValue) == 0 }
    }

    /// `iptc_delete_chain`: EMLINK while a rule still jumps to it.
    static func deleteChain(_ handle: OpaquePointer, _ chain: ChainName, table: TableName) throws(KernelError) {
        try check(.deleteChain, "iptc_delete_chain", table: table, chain: chain) { natsync_delete_chain(handle, chain.rawValue) == 0 }
    }

    static func appendRule(_ handle: OpaquePointer, _ raw: inout natsync_rule, to chain: ChainName, table: TableName) throws(KernelError) {
        try check(.appendRule, "iptc_append_entry", table: table, chain: chain) { natsync_append_rule(handle, chain.rawValue, &raw) == 0 }
    }

    static func insertRule(_ handle: OpaquePointer, _ raw: inout natsync_rule, into chain: ChainName, at index: Int, table: TableName)
        throws(KernelError)
    {
        try check(.insertRule, "iptc_insert_entry", table: table, chain: chain) {
            natsync_insert_rule(handle, chain.rawValue, &raw, UInt32(index)) == 0
        }
    }

    static func deleteRule(_ handle: OpaquePointer, in chain: ChainName, at index: Int, table: TableName) throws(KernelError) {
        try check(.deleteRule, "iptc_delete_num_entry", table: table, chain: chain) {
            natsync_delete_rule(handle, chain.rawValue, UInt32(index)) == 0
        }
    }

    /// `IPT_SO_GET_INFO`: the table's entry count and blob size.
    static func tableInfo(_ table: TableName, family: IPFamily) throws(KernelError) -> (entries: UInt32, size: UInt32) {
        var entries: UInt32 = 0
        var size: UInt32 = 0
        try check(.tableInfo, operation("IPT_SO_GET_INFO", family), table: table) {
            natsync_table_info(table.rawValue, family.shimFamily, &entries, &size) == 0
        }
        return (entries, size)
    }

    // MARK: The kernel's blob

    /// `IPT_SO_GET_INFO` and `IPT_SO_GET_ENTRIES`: the table as the kernel hands it out.
    static func readBlob(_ table: TableName, family: IPFamily) throws(KernelError) -> OpaquePointer {
        try open(.blobRead, operation("IPT_SO_GET_ENTRIES", family), table: table) { natsync_blob_read(table.rawValue, family.shimFamily) }
    }

    static func freeBlob(_ blob: OpaquePointer) { natsync_blob_free(blob) }
    static func chainCount(_ blob: OpaquePointer) -> Int { natsync_blob_chain_count(blob) }
    static func chainName(_ blob: OpaquePointer, _ chain: Int) -> UnsafePointer<CChar> { natsync_blob_chain_name(blob, chain) }
    static func isUserChain(_ blob: OpaquePointer, _ chain: Int) -> Bool { natsync_blob_chain_is_user(blob, chain) != 0 }
    static func firstRule(_ blob: OpaquePointer, chain: Int) -> UnsafeRawPointer? { natsync_blob_first_rule(blob, chain) }
    static func nextRule(_ blob: OpaquePointer, chain: Int, after entry: UnsafeRawPointer) -> UnsafeRawPointer? {
        natsync_blob_next_rule(blob, chain, entry)
    }

    /// As ``decodeRule(_:_:into:)``, for an entry of the blob.
    static func decodeRule(blob: OpaquePointer, _ entry: UnsafeRawPointer, into raw: UnsafeMutablePointer<natsync_rule>) -> Bool {
        natsync_blob_decode_rule(blob, entry, raw) != 0
    }

    /// The entries as the kernel handed them out, counters included.
    static func entries(_ blob: OpaquePointer) -> UnsafeRawBufferPointer {
        var size = 0
        let start = natsync_blob_entries(blob, &size)
        return UnsafeRawBufferPointer(start: start, count: size)
    }

    /// Whether the user chains are in strcmp order, as libiptc lays them out.
    static func usersSorted(_ blob: OpaquePointer) -> Bool { natsync_blob_users_sorted(blob) != 0 }

    /// Where the user chain called `name` is, or (user chains sorted) would go.
    static func searchUserChain(_ blob: OpaquePointer, _ name: ChainName) -> (position: Int, found: Bool) {
        var found: Int32 = 0
        let position = natsync_blob_user_search(blob, name.rawValue, &found)
        return (position, found != 0)
    }

    // MARK: The table writer

    static func openWriter(_ blob: OpaquePointer, table: TableName) throws(KernelError) -> OpaquePointer {
        try open(.writerOpen, "open table writer", table: table) { natsync_writer_open(blob) }
    }

    static func freeWriter(_ writer: OpaquePointer) { natsync_writer_free(writer) }

    /// Starts a chain; `livePosition` is the live chain it replaces, nil for a new one.
    static func beginChain(_ writer: OpaquePointer, _ chain: ChainName, replacing livePosition: Int?, table: TableName) throws(KernelError)
    {
        try check(.writerBeginChain, "begin chain", table: table, chain: chain) {
            natsync_writer_begin_chain(writer, chain.rawValue, livePosition ?? -1) == 0
        }
    }

    static func copyRule(_ writer: OpaquePointer, chain: Int, position: Int, name: ChainName, table: TableName) throws(KernelError) {
        try check(.writerCopyRule, "copy rule", table: table, chain: name) { natsync_writer_copy_rule(writer, chain, position) == 0 }
    }

    static func copyChains(_ writer: OpaquePointer, _ chains: Range<Int>, table: TableName) throws(KernelError) {
        try check(.writerCopyChains, "copy chains", table: table) {
            natsync_writer_copy_chains(writer, chains.lowerBound, chains.count) == 0
        }
    }

    static func writeRule(_ writer: OpaquePointer, _ raw: inout natsync_rule, in chain: ChainName, table: TableName) throws(KernelError) {
        try check(.writerRule, "write rule", table: table, chain: chain) { natsync_writer_rule(writer, &raw) == 0 }
    }

    static func endChain(_ writer: OpaquePointer, _ chain: ChainName, table: TableName) throws(KernelError) {
        try check(.writerEndChain, "end chain", table: table, chain: chain) { natsync_writer_end_chain(writer) == 0 }
    }

    /// `IPT_SO_SET_REPLACE` of the written table: EAGAIN when the table changed since the blob was read.
    static func commitWriter(_ writer: OpaquePointer, table: TableName, family: IPFamily) throws(KernelError) {
        try check(.writerCommit, operation("IPT_SO_SET_REPLACE", family), table: table) { natsync_writer_commit(writer) == 0 }
    }

    // MARK: Processes and namespaces

    /// `malloc_trim(0)`.
    static func releaseFreeMemory() { natsync_release_free_memory() }

    /// `pipe2(O_CLOEXEC)`: the read and write ends.
    static func pipe() throws(KernelError) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        try check(.pipe, "pipe2") { natsync_pipe(&ends) == 0 }
        return (ends[0], ends[1])
    }

    /// `setns` of the calling thread into the network namespace at `path`.
    static func enterNetworkNamespace(_ path: String) throws(KernelError) {
        do {
            try check(.enterNetworkNamespace, "setns") { natsync_enter_network_namespace(path) == 0 }
        } catch {
            var failure = error
            failure.message = "cannot enter network namespace \(path): \(error.message)"
            throw failure
        }
    }

    // MARK: nf_tables

    /// The nf_tables ruleset generation of this thread's namespace.
    static func nftGeneration() throws(KernelError) -> UInt32 {
        var generation: UInt32 = 0
        try check(.nftGeneration, "NFT_MSG_GETGEN") { natsync_nft_generation(&generation) == 0 }
        return generation
    }

    /// The rules of nf_tables table `table` of `family` (of one chain, when given), each as the
    /// kernel dumps it.
    ///
    /// `bytes` says which rules (by chain and length of expressions) to return whole: the others
    /// come with their handle only, so a long foreign chain is not copied out.
    static func nftRules(
        family: IPFamily, table: TableName, chains: [ChainName] = [], bytes: @escaping (String, Int) -> Bool = { _, _ in true }
    ) throws(KernelError) -> [NFTRule] {
        var collector = RuleCollector(bytes)
        let visit: natsync_nft_rule_visitor = { context, view in
            Unmanaged<RuleCollector>.fromOpaque(context!).takeUnretainedValue().take(view!.pointee)
        }
        try withCStrings(chains.map(\.rawValue)) { (names) throws(KernelError) in
            try redoingInterruptedDumps { () throws(KernelError) in
                collector = RuleCollector(bytes)
                let context = Unmanaged.passUnretained(collector).toOpaque()
                try check(.nftDumpRules, "NFT_MSG_GETRULE", table: table, chain: chains.count == 1 ? chains[0] : nil) {
                    withExtendedLifetime(collector) {
                        natsync_nft_dump_rules(family.shimFamily, table.rawValue, names, chains.count, visit, context) == 0
                    }
                }
            }
        }
        guard !collector.malformed else {
            throw KernelError(
                errno: KernelError.malformedAnswer, operation: "NFT_MSG_GETRULE", table: table, message: "a rule's expressions do not parse"
            )
        }
        return collector.rules
    }

    /// Which of `chains` exist in `table` (nil, or whether each is a base chain), and whether the
    /// table does, looked up by name.
    static func nftLookup(family: IPFamily, table: TableName, chains: [ChainName]) throws(KernelError) -> (
        chains: [Bool?], tableExists: Bool
    ) {
        var kinds = [UInt8](repeating: 0, count: chains.count + 1)
        try withCStrings(chains.map(\.rawValue)) { (names) throws(KernelError) in
            try check(.nftDumpChains, "NFT_MSG_GETCHAIN", table: table) {
                natsync_nft_lookup(family.shimFamily, table.rawValue, names, chains.count, &kinds) == 0
            }
        }
        return (kinds.dropLast().map { $0 == 0 ? nil : $0 == 2 }, kinds[chains.count] != 0)
    }

    /// Runs `body` with `strings` as an array of C strings that lives as long as the call.
    private static func withCStrings<T>(
        _ strings: [String], _ body: ([UnsafePointer<CChar>?]) throws(KernelError) -> T
    ) throws(KernelError) -> T {
        let copies = strings.map { UnsafePointer(strdup($0)) }
        defer { for copy in copies { free(UnsafeMutablePointer(mutating: copy)) } }
        return try body(copies)
    }

    /// Gathers the rules of a dump through the C visitor's context pointer.
    private final class RuleCollector {
        var rules: [NFTRule] = []
        var malformed = false
        let wantsBytes: (String, Int) -> Bool
        /// The chain of the last rule: a chain's rules come together, so its name is made once.
        var chain = ""

        init(_ wantsBytes: @escaping (String, Int) -> Bool) { self.wantsBytes = wantsBytes }

        func take(_ view: natsync_nft_rule_view) -> Int32 {
            if strcmp(view.chain, chain) != 0 { chain = String(cString: view.chain) }
            guard wantsBytes(chain, view.expressions_length) else {
                rules.append(NFTRule(chain: chain, handle: view.handle, expressionBytes: [], userdata: []))
                return 0
            }
            let bytes = UnsafeRawBufferPointer(start: view.expressions, count: view.expressions_length)
            guard NFTExpression.isList(bytes) else {
                malformed = true
                return 1
            }
            rules.append(
                NFTRule(
                    chain: chain, handle: view.handle, expressionBytes: Array(bytes),
                    userdata: Array(UnsafeRawBufferPointer(start: view.userdata, count: view.userdata_length))))
            return 0
        }
    }

    /// The chains of every nf_tables table of `family`, in the kernel's order, and which are base chains.
    static func nftChains(family: IPFamily) throws(KernelError) -> [(table: String, name: String, base: Bool)] {
        final class Collector { var chains: [(table: String, name: String, base: Bool)] = [] }
        var collector = Collector()
        let visit: natsync_nft_chain_visitor = { context, table, name, base in
            Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue().chains.append(
                (String(cString: table!), String(cString: name!), base != 0))
        }
        try redoingInterruptedDumps { () throws(KernelError) in
            collector = Collector()
            let context = Unmanaged.passUnretained(collector).toOpaque()
            try check(.nftDumpChains, "NFT_MSG_GETCHAIN") {
                withExtendedLifetime(collector) { natsync_nft_dump_chains(family.shimFamily, visit, context) == 0 }
            }
        }
        return collector.chains
    }

    /// Runs a dump again while a commit by someone else interrupts it (the kernel marks such a
    /// dump NLM_F_DUMP_INTR, which libmnl reports as EINTR): what was read of it is inconsistent.
    private static func redoingInterruptedDumps(_ dump: () throws(KernelError) -> Void) throws(KernelError) {
        var attempts = 0
        while true {
            attempts += 1
            do {
                try dump()
                return
            } catch  where error.errno == KernelError.dumpInterrupted && attempts < 20 {
                continue
            }
        }
    }

    /// A new transaction that the kernel applies only while the generation is `generation`.
    static func nftBatchBegin(generation: UInt32) throws(KernelError) -> OpaquePointer {
        guard let batch = natsync_nft_batch_begin(generation) else { throw lastError("nf_tables batch") }
        return batch
    }

    static func nftBatchFree(_ batch: OpaquePointer) { natsync_nft_batch_free(batch) }

    /// Adds one message to a batch through `body` (a natsync_nft_batch_add_* call); fails only
    /// when out of memory.
    static func nftBatchAdd(_ body: () -> Int32) throws(KernelError) {
        guard body() == 0 else { throw lastError("nf_tables batch") }
    }

    static func nftBatchAddTable(_ batch: OpaquePointer, family: IPFamily, table: TableName) throws(KernelError) {
        try nftBatchAdd { natsync_nft_batch_add_table(batch, family.shimFamily, table.rawValue) }
    }

    static func nftBatchAddChain(
        _ batch: OpaquePointer, family: IPFamily, table: TableName, chain: ChainName, base: (type: String, hook: Int32, priority: Int32)?
    ) throws(KernelError) {
        try nftBatchAdd {
            natsync_nft_batch_add_chain(
                batch, family.shimFamily, table.rawValue, chain.rawValue, base?.type, base?.hook ?? 0, base?.priority ?? 0)
        }
    }

    static func nftBatchFlushChain(_ batch: OpaquePointer, family: IPFamily, table: TableName, chain: ChainName) throws(KernelError) {
        try nftBatchAdd { natsync_nft_batch_flush_chain(batch, family.shimFamily, table.rawValue, chain.rawValue) }
    }

    static func nftBatchDeleteChain(_ batch: OpaquePointer, family: IPFamily, table: TableName, chain: ChainName) throws(KernelError) {
        try nftBatchAdd { natsync_nft_batch_delete_chain(batch, family.shimFamily, table.rawValue, chain.rawValue) }
    }

    static func nftBatchAddRule(
        _ batch: OpaquePointer, family: IPFamily, table: TableName, chain: ChainName, expressions: [UInt8], protocol: ProtocolMatch?,
        atTop: Bool
    ) throws(KernelError) {
        try nftBatchAdd {
            natsync_nft_batch_add_rule(
                batch, family.shimFamily, table.rawValue, chain.rawValue, expressions, expressions.count,
                UInt32(`protocol`?.protocol.number ?? 0), `protocol`?.inverted == true ? 1 : 0, atTop ? 1 : 0)
        }
    }

    static func nftBatchDeleteRule(_ batch: OpaquePointer, family: IPFamily, table: TableName, chain: ChainName, handle: UInt64)
        throws(KernelError)
    {
        try nftBatchAdd { natsync_nft_batch_delete_rule(batch, family.shimFamily, table.rawValue, chain.rawValue, handle) }
    }

    /// Sends a batch. On failure, the index of the message the kernel refused (nil for the batch
    /// as a whole) comes with the error.
    static func nftBatchCommit(_ batch: OpaquePointer) -> (error: KernelError, message: Int?)? {
        if let injected = injectedFault(.nftBatchCommit, "nf_tables commit", table: nil, chain: nil) { return (injected, nil) }
        var failed = -1
        guard natsync_nft_batch_commit(batch, &failed) != 0 else { return nil }
        return (lastError("nf_tables commit"), failed >= 0 ? failed : nil)
    }

    static func nftBatchMessageCount(_ batch: OpaquePointer) -> Int { natsync_nft_batch_messages(batch) }

    /// Makes a batch apply at `generation` instead of the one it was begun with.
    static func nftBatchSetGeneration(_ batch: OpaquePointer, _ generation: UInt32) {
        natsync_nft_batch_set_generation(batch, generation)
    }

    /// What message `index` of a batch does, for an error that names it: the operation, and the
    /// table and chain the message names.
    static func nftBatchMessage(_ batch: OpaquePointer, _ index: Int) -> (operation: String, table: TableName?, chain: ChainName?)? {
        var type: Int32 = 0
        var byHandle: Int32 = 0
        var table = [CChar](repeating: 0, count: 64)
        var chain = [CChar](repeating: 0, count: 64)
        guard natsync_nft_batch_message(batch, index, &type, &byHandle, &table, &chain, 64) == 0 else { return nil }
        let operation = NFTMessage.name(UInt16(type), byHandle: byHandle != 0)
        let tableName = String(cString: table)
        let chainName = String(cString: chain)
        return (operation, TableName(rawValue: tableName), chainName.isEmpty ? nil : ChainName(chainName))
    }

    /// Joins the namespace's nf_tables event group.
    static func nftMonitorOpen() throws(KernelError) -> OpaquePointer {
        guard let monitor = natsync_nft_monitor_open() else { throw lastError("NFNLGRP_NFTABLES") }
        return monitor
    }

    static func nftMonitorClose(_ monitor: OpaquePointer) { natsync_nft_monitor_close(monitor) }

    /// The events queued on a monitor, in order; nil when the kernel dropped some.
    static func nftMonitorDrain(_ monitor: OpaquePointer) -> [NFTMonitor.Event]? {
        final class Box { var events: [NFTMonitor.Event] = [] }
        let collect: natsync_nft_event_visitor = { context, view in
            let view = view!.pointee
            Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue().events.append(
                NFTMonitor.Event(
                    type: UInt16(view.type), family: view.family == 4 ? .ipv4 : view.family == 6 ? .ipv6 : nil,
                    table: String(cString: view.table), chain: String(cString: view.chain), handle: view.handle,
                    generation: view.generation,
                    expressions: view.expressions.map { Array(UnsafeBufferPointer(start: $0, count: view.expressions_length)) } ?? []))
        }
        let box = Box()
        let drained = withExtendedLifetime(box) { natsync_nft_monitor_drain(monitor, collect, Unmanaged.passUnretained(box).toOpaque()) }
        return drained == 0 ? box.events : nil
    }

    /// A rule's expressions as iptables-nft writes them (the payload of `NFTA_RULE_EXPRESSIONS`),
    /// or nil when the shim cannot encode it. Pure: no kernel call.
    static func nftExpressions(of rule: inout natsync_rule, family: IPFamily) -> [UInt8]? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buffer in
            let length = natsync_nft_encode_rule(&rule, family.shimFamily, buffer.baseAddress, buffer.count)
            return length < 0 ? nil : Array(buffer[..<length])
        }
    }

    // MARK: Conntrack

    /// Deletes the UDP flows of `family` that `select` chooses: with one kernel-filtered dump per
    /// frontend when `frontends` is given, else with one dump of the table. Nil when the kernel
    /// cannot filter dumps (nothing was done).
    ///
    /// A fault armed for the dump lets it start and stops it after its first flow, as a dump that
    /// fails halfway does: nothing is deleted.
    static func deleteUDPFlows(
        family: IPFamily, frontends: [natsync_frontend]?, select: @escaping (UnsafePointer<natsync_flow>) -> Bool
    ) throws(KernelError) -> natsync_conntrack_result? {
        let call: Call = frontends == nil ? .conntrackDeleteUDP : .conntrackDeleteUDPFrontends
        let selector = FlowSelector(select)
        #if DEBUG
        selector.fault = KernelFaults.take(call)
        #endif
        let context = Unmanaged.passUnretained(selector).toOpaque()
        let callback: natsync_flow_selector = { flow, context in
            Unmanaged<FlowSelector>.fromOpaque(context!).takeUnretainedValue().consider(flow!)
        }
        var result = natsync_conntrack_result()
        let status = withExtendedLifetime(selector) {
            if let frontends {
                natsync_conntrack_delete_udp_frontends(family.shimFamily, frontends, frontends.count, callback, context, &result)
            } else {
                natsync_conntrack_delete_udp(family.shimFamily, callback, context, &result)
            }
        }
        if let fault = selector.fault {
            throw KernelError(errno: fault, operation: "conntrack dump", message: KernelError.describe(fault))
        }
        switch status {
        case 0: return result
        case 1: return nil
        default: throw lastError("conntrack dump")
        }
    }

    /// Carries the selector through the C callback's context pointer.
    private final class FlowSelector {
        let select: (UnsafePointer<natsync_flow>) -> Bool
        /// An injected failure: the dump stops at the first flow (the shim then deletes nothing).
        var fault: Int32?

        init(_ select: @escaping (UnsafePointer<natsync_flow>) -> Bool) { self.select = select }

        func consider(_ flow: UnsafePointer<natsync_flow>) -> Int32 {
            if fault != nil { return -1 }
            return select(flow) ? 1 : 0
        }
    }
}

extension IPFamily {
    /// The shim's family number: 4 or 6.
    var shimFamily: Int32 { self == .ipv4 ? 4 : 6 }
}
