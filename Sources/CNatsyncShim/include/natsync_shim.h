// The C side of natsync's kernel access: what must be C because the kernel's structs are of
// variable length (iptables entries, netlink messages) or its interfaces are C-only. Only stdint
// types and opaque handles cross this header, so no kernel or libiptc type reaches Swift, and
// Swift reaches every function here through one file (NatsyncKernel's Shim.swift). Every symbol
// is prefixed natsync_.
//
// Its parts, in this header's order, and where each is written:
//   - Rules, flattened (natsync_rule, natsync_match): the one shape in which entries cross.
//   - Errors (natsync_last_errno/_error): each failure's errno and message, kept per thread.
//   - libiptc handles (natsync_table_*, chains, rules): reading for diff and writing a table
//     back after a failed sync. shim.c dispatches to one family's shim_ipv4.c or shim_ipv6.c,
//     both compiled from shim_family.inc with family_ipv4.h or family_ipv6.h.
//   - Entries encoded and decoded: shim_family.inc (the IP header and targets) and
//     shim_matches.c (the extension matches, the same for both families).
//   - The kernel's blob (natsync_blob_*): a table read with GET_ENTRIES and walked without
//     libiptc, the read of every sync. shim_family.inc; its layout in family_blob.h.
//   - The table writer (natsync_writer_*): a whole table built from the live blob and handed to
//     the kernel in one SET_REPLACE. shim_writer.inc, compiled per family as shim_writer_ipv4.c
//     and shim_writer_ipv6.c.
//   - Process helpers glibc hides from Swift (malloc_trim, pipe2, setns): shim.c.
//   - Conntrack (natsync_conntrack_*): dumps with a selector and deletes through
//     libnetfilter_conntrack and raw netlink: conntrack.c.
//   - nf_tables (natsync_nft_*): the ruleset generation, and one table's rules dumped with each
//     rule's expressions as the kernel holds them (raw netlink attributes): nftables.c. Rules
//     encoded as iptables-nft's expressions: nft_rules.c. Transactions (natsync_nft_batch_*),
//     one netlink batch each: nft_batch.c. Others' commits, as events: nft_monitor.c.
#ifndef NATSYNC_SHIM_H
#define NATSYNC_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An open libiptc handle on one table of the calling thread's network namespace.
typedef struct natsync_table natsync_table;

#define NATSYNC_MAX_MATCHES 8
#define NATSYNC_TEXT_SIZE 256
#define NATSYNC_CHAIN_SIZE 32
#define NATSYNC_IFACE_SIZE 16

enum natsync_match_kind {
    NATSYNC_MATCH_COMMENT = 1,
    NATSYNC_MATCH_TCP = 2,
    NATSYNC_MATCH_UDP = 3,
    NATSYNC_MATCH_SCTP = 4,
    NATSYNC_MATCH_STATISTIC = 5,
    NATSYNC_MATCH_MARK = 6,
    NATSYNC_MATCH_ADDRTYPE = 7,
    NATSYNC_MATCH_RECENT = 8,
    NATSYNC_MATCH_CONNTRACK = 9,
};

/// Bits of natsync_match.flags.
enum natsync_match_flag {
    NATSYNC_MF_INVERT = 1 << 0,           // mark, conntrack, statistic
    NATSYNC_MF_INVERT_SOURCE = 1 << 1,    // --sport, --src-type
    NATSYNC_MF_INVERT_DEST = 1 << 2,      // --dport, --dst-type
    NATSYNC_MF_HAS_SOURCE = 1 << 3,       // --sport, --src-type given
    NATSYNC_MF_HAS_DEST = 1 << 4,         // --dport, --dst-type given
    NATSYNC_MF_RECENT_SET = 1 << 5,
    NATSYNC_MF_RECENT_CHECK = 1 << 6,
    NATSYNC_MF_RECENT_REAP = 1 << 7,
    NATSYNC_MF_RECENT_SECONDS = 1 << 8,
};

/// One extension match, flattened. Ports are in host order.
struct natsync_match {
    uint32_t kind;
    uint32_t flags;
    uint16_t source_ports[2];
    uint16_t dest_ports[2];
    uint32_t value;     // mark value; statistic probability (kernel fixed point)
    uint32_t mask;      // mark mask
    uint16_t source_type; // addrtype bits (1 << RTN_*)
    uint16_t dest_type;
    uint16_t states;    // conntrack state bits (XT_CONNTRACK_STATE_*)
    uint32_t seconds;   // recent --seconds
    char text[NATSYNC_TEXT_SIZE]; // comment; recent --name
};

enum natsync_target_kind {
    NATSYNC_TARGET_NONE = 0,  // no target: fall through
    NATSYNC_TARGET_JUMP = 1,
    NATSYNC_TARGET_GOTO = 2,
    NATSYNC_TARGET_ACCEPT = 3,
    NATSYNC_TARGET_DROP = 4,
    NATSYNC_TARGET_RETURN = 5,
    NATSYNC_TARGET_REJECT = 6,
    NATSYNC_TARGET_DNAT = 7,
    NATSYNC_TARGET_MASQUERADE = 8,
    NATSYNC_TARGET_MARK = 9,
};

/// Bits of natsync_rule.flags.
enum natsync_rule_flag {
    NATSYNC_RF_INVERT_SOURCE = 1 << 0,
    NATSYNC_RF_INVERT_DEST = 1 << 1,
    NATSYNC_RF_INVERT_IN = 1 << 2,
    NATSYNC_RF_INVERT_OUT = 1 << 3,
    NATSYNC_RF_INVERT_PROTO = 1 << 4,
    NATSYNC_RF_DNAT_PORT = 1 << 5,
    NATSYNC_RF_RANDOM_FULLY = 1 << 6,
};

/// One rule, flattened: the IP header, up to NATSYNC_MAX_MATCHES matches, and the target.
/// Addresses and masks are in network order, IPv4 in bytes[0..3], IPv6 in all 16.
struct natsync_rule {
    uint8_t source[16], source_mask[16];
    uint8_t dest[16], dest_mask[16];
    char in_iface[NATSYNC_IFACE_SIZE];
    char out_iface[NATSYNC_IFACE_SIZE];
    uint16_t protocol;
    uint32_t flags;
    uint32_t match_count;
    struct natsync_match matches[NATSYNC_MAX_MATCHES];
    uint32_t target;
    char chain[NATSYNC_CHAIN_SIZE]; // jump/goto target
    uint32_t reject_with;           // enum ipt_reject_with / ip6t_reject_with
    uint8_t to_address[16];         // DNAT (IPv4 in bytes[0..3])
    uint16_t to_port;               // DNAT, host order
    uint32_t mark_value, mark_mask; // MARK revision 2: (mark & ~mask) ^ value
    uint64_t packets, bytes;        // counters, filled by decode
};

/// The errno and libiptc's message of the last failure on this thread. libiptc's message depends
/// on a global set by the failing call, so the shim captures it at once.
int natsync_last_errno(void);
const char *natsync_last_error(void);

/// iptc_init (family 4) or ip6tc_init (family 6): reads the table from the kernel. NULL on failure.
natsync_table *natsync_table_open(const char *name, int family);
/// iptc_free.
void natsync_table_free(natsync_table *table);
/// iptc_commit: replaces the table atomically (no kernel call when nothing changed). 0 or -1.
int natsync_table_commit(natsync_table *table);

/// iptc_first_chain / iptc_next_chain. The strings belong to the handle.
const char *natsync_first_chain(natsync_table *table);
const char *natsync_next_chain(natsync_table *table);
/// iptc_is_chain.
int natsync_chain_exists(natsync_table *table, const char *chain);

/// iptc_first_rule / iptc_next_rule: an opaque entry, valid until the handle changes.
const void *natsync_first_rule(natsync_table *table, const char *chain);
const void *natsync_next_rule(natsync_table *table, const void *previous);

/// Decodes an entry. Returns 0 when every part is one natsync writes (the result then re-encodes
/// to the same kernel entry), 1 for a foreign rule (out then holds the IP header and counters, and
/// whatever matches and target could be read).
int natsync_decode_rule(natsync_table *table, const void *entry, struct natsync_rule *out);

/// Names an entry's extensions as "-m NAME ... -j TARGET" (without their options), for showing a
/// foreign rule. Truncated to fit `size`.
void natsync_describe_extensions(natsync_table *table, const void *entry, char *text, size_t size);

/// iptc_get_policy: "ACCEPT" or "DROP" for a built-in chain, NULL for a user chain.
const char *natsync_chain_policy(natsync_table *table, const char *chain);

/// iptc_create_chain, iptc_flush_entries, iptc_delete_chain. 0 or -1.
int natsync_create_chain(natsync_table *table, const char *chain);
int natsync_flush_chain(natsync_table *table, const char *chain);
int natsync_delete_chain(natsync_table *table, const char *chain);
/// iptc_append_entry / iptc_insert_entry of an encoded rule. 0 or -1 (EINVAL for a rule that
/// cannot be encoded).
int natsync_append_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule);
int natsync_insert_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule, unsigned int index);
/// iptc_delete_num_entry.
int natsync_delete_rule(natsync_table *table, const char *chain, unsigned int index);

/// The number of entries and the blob size of a table (IPT_SO_GET_INFO): a constant-time way to
/// notice that someone else changed it, without reading the rules. 0 or -1.
int natsync_table_info(const char *name, int family, uint32_t *entries, uint32_t *size);

/// A table's blob (GET_INFO + GET_ENTRIES) walked without libiptc, for reading only: chains in
/// the blob's order, rules as opaque entries valid until natsync_blob_free.
typedef struct natsync_blob natsync_blob;

/// Reads table `name` of `family` (4 or 6). NULL on failure (see natsync_last_errno).
natsync_blob *natsync_blob_read(const char *name, int family);
void natsync_blob_free(natsync_blob *blob);
size_t natsync_blob_chain_count(const natsync_blob *blob);
/// The name of chain `chain` (0 ..< count); owned by the blob.
const char *natsync_blob_chain_name(const natsync_blob *blob, size_t chain);
/// Whether chain `chain` is a user chain (not one of the table's hooks).
int natsync_blob_chain_is_user(const natsync_blob *blob, size_t chain);
/// The first rule of chain `chain` and the one after `previous`; NULL at the chain's end.
const void *natsync_blob_first_rule(const natsync_blob *blob, size_t chain);
const void *natsync_blob_next_rule(const natsync_blob *blob, size_t chain, const void *previous);
/// As natsync_decode_rule, for an entry of the blob.
int natsync_blob_decode_rule(const natsync_blob *blob, const void *entry, struct natsync_rule *out);

/// The blob's entries as the kernel handed them out (counters included), for comparing tables.
const void *natsync_blob_entries(const natsync_blob *blob, size_t *size);
/// Whether the user chains come after the built-in ones in strcmp order, as libiptc lays them out.
int natsync_blob_users_sorted(const natsync_blob *blob);
/// The user chain called `name`: with the user chains sorted, the position of the first one not
/// before `name` (natsync_blob_chain_count when none) and whether it is the one; otherwise its
/// position found by walking them, natsync_blob_chain_count when there is none.
size_t natsync_blob_user_search(const natsync_blob *blob, const char *name, int *found);

/// A whole table written without libiptc: built from a live blob (read under the xtables lock,
/// which must be held until the commit) and handed to the kernel in one SET_REPLACE. Chains are
/// written in libiptc's order: the built-in ones of the live table in hook order, then user
/// chains in strcmp order. A built-in chain ends with its live policy. Entries copied from the
/// live blob keep their counters; jumps are resolved at the commit.
typedef struct natsync_writer natsync_writer;

/// A writer over `live`, which must outlive it. NULL on failure.
natsync_writer *natsync_writer_open(const natsync_blob *live);
void natsync_writer_free(natsync_writer *writer);
/// Starts a chain: a built-in chain's name, or a user chain's with the position of the live
/// chain it replaces (-1 for a new one), where the live table's kept jumps to that chain now go.
/// 0 or -1.
int natsync_writer_begin_chain(natsync_writer *writer, const char *chain, long live_chain);
/// Appends rule `position` of the live blob's chain `chain` as it is (its jump goes where its
/// chain went). 0 or -1.
int natsync_writer_copy_rule(natsync_writer *writer, size_t chain, size_t position);
/// Appends the live blob's user chains `first` ..< `first + count` whole, neighbours in the blob
/// (more than one only when natsync_blob_users_sorted), their jumps going where their targets
/// went. Chains written as libiptc writes them are copied as one run of bytes. 0 or -1.
int natsync_writer_copy_chains(natsync_writer *writer, size_t first, size_t count);
/// Appends an encoded rule (EINVAL when it cannot be encoded). 0 or -1.
int natsync_writer_rule(natsync_writer *writer, const struct natsync_rule *rule);
/// Ends the chain: a user chain's RETURN, or a built-in chain's live policy. 0 or -1.
int natsync_writer_end_chain(natsync_writer *writer);
/// Resolves jumps (ENOENT for a chain the table does not hold) and replaces the table (EAGAIN
/// when it changed since the live blob was read). 0 or -1.
int natsync_writer_commit(natsync_writer *writer);

/// malloc_trim(0): gives the heap's freed pages back to the system (glibc keeps them otherwise).
/// <malloc.h> is not part of Swift's Glibc module.
void natsync_release_free_memory(void);

/// pipe2(fds, O_CLOEXEC): a pipe whose ends no other thread's child can inherit between its
/// creation and a later fcntl. pipe2 is _GNU_SOURCE-only, which Swift's Glibc module does not expose.
int natsync_pipe(int fds[2]);

/// setns(open(path), CLONE_NEWNET) for the calling thread. 0 or -1. setns and CLONE_NEWNET are
/// _GNU_SOURCE-only, which Swift's Glibc module does not expose.
int natsync_enter_network_namespace(const char *path);

/// One IPv4 conntrack flow, as a selector sees it. Addresses in network order, ports in host order.
struct natsync_flow {
    uint8_t protocol;
    uint8_t family; // 4 or 6; IPv4 addresses in bytes[0..3]
    uint8_t original_source[16], original_dest[16];
    uint8_t reply_source[16], reply_dest[16];
    uint16_t original_source_port, original_dest_port;
};

/// Decides whether a flow is deleted: positive selects it, negative stops the dump (the call then
/// fails with ECANCELED and deletes nothing).
typedef int (*natsync_flow_selector)(const struct natsync_flow *flow, void *context);

/// What one cleanup pass did.
struct natsync_conntrack_result {
    uint64_t visited;  // flows of the family dumped
    uint64_t selected; // flows the selector chose
    uint64_t deleted;  // flows destroyed
    uint64_t vanished; // selected flows that expired before the delete (ENOENT): not an error
    uint64_t failed;   // deletes that failed otherwise
};

/// Dumps the conntrack table of one family (4 or 6) of the calling thread's namespace once, passes
/// every UDP flow to `select`, then deletes the selected flows (NFCT_Q_DESTROY on a second handle).
/// Memory is bounded by the selected flows. 0, or -1 when the table cannot be read.
int natsync_conntrack_delete_udp(
    int family, natsync_flow_selector select, void *context, struct natsync_conntrack_result *result);

/// A UDP frontend to dump: an address and port, or (`has_address` 0) a port on any address.
struct natsync_frontend {
    uint8_t address[16]; // IPv4 in bytes[0..3]
    uint8_t has_address;
    uint16_t port; // host order
};

/// As natsync_conntrack_delete_udp, but asks the kernel for the flows of each frontend only (one
/// filtered dump each, CTA_FILTER, Linux 5.8+), so the flows of other services are never copied
/// out. Returns 1 without side effects when the kernel does not support filtered dumps.
int natsync_conntrack_delete_udp_frontends(
    int family, const struct natsync_frontend *frontends, size_t count, natsync_flow_selector select, void *context,
    struct natsync_conntrack_result *result);

/// One rule of an nf_tables dump; its pointers are valid during the visit only.
struct natsync_nft_rule_view {
    const char *chain;
    uint64_t handle;
    /// The payload of NFTA_RULE_EXPRESSIONS: one NFTA_LIST_ELEM attribute per expression.
    const uint8_t *expressions;
    size_t expressions_length;
    /// NFTA_RULE_USERDATA (where iptables-nft keeps a rule's comment), or NULL.
    const uint8_t *userdata;
    size_t userdata_length;
};

/// Called for each rule of a dump; nonzero stops it (ECANCELED).
typedef int (*natsync_nft_rule_visitor)(void *context, const struct natsync_nft_rule_view *rule);

/// The nf_tables ruleset generation of the calling thread's namespace: every commit, by anyone,
/// moves it.
int natsync_nft_generation(uint32_t *generation);

/// Dumps the rules of nf_tables table `table` of family 4 (ip) or 6 (ip6), each rule in its
/// chain's order: of every chain in the kernel's order when `count` is 0, else of the `count`
/// chains named, in that order, one dump each. A table or chain that does not exist has no rules.
int natsync_nft_dump_rules(
    int family, const char *table, const char *const *chains, size_t count, natsync_nft_rule_visitor visit, void *context);

/// Looks up `count` chains of a table by name, and the table: kinds[i] is 0 for a chain that does
/// not exist, 1 for a user chain, 2 for a base chain; kinds[count] is 1 when the table exists.
/// Cheaper than listing a large table's chains. 0 or -1.
int natsync_nft_lookup(int family, const char *table, const char *const *chains, size_t count, uint8_t *kinds);

/// Called for each chain: its table, its name, and whether it is a base chain (has a hook).
typedef void (*natsync_nft_chain_visitor)(void *context, const char *table, const char *name, int base);

/// Lists the chains of every nf_tables table of family 4 or 6, in the kernel's order. The kernel
/// does not filter chain dumps by table, and each dump costs the square of the family's chains,
/// so one listing serves both tables.
int natsync_nft_dump_chains(int family, natsync_nft_chain_visitor visit, void *context);

/// A subscription to the namespace's nf_tables events, from the moment it is opened.
/// nft_monitor.c.
typedef struct natsync_nft_monitor natsync_nft_monitor;

/// One event; its pointers are valid during the visit only.
struct natsync_nft_event {
    /// NFT_MSG_NEWTABLE, NFT_MSG_NEWRULE, NFT_MSG_NEWGEN, ...
    int type;
    /// 4 (ip), 6 (ip6), or 0 for any other family.
    int family;
    /// "" when the message names none.
    const char *table;
    const char *chain;
    /// A rule's handle, 0 for other messages.
    uint64_t handle;
    /// NFT_MSG_NEWGEN: the generation the commit made; it follows the commit's other events.
    uint32_t generation;
    /// A rule's NFTA_RULE_EXPRESSIONS payload, NULL when absent.
    const uint8_t *expressions;
    size_t expressions_length;
};

typedef void (*natsync_nft_event_visitor)(void *context, const struct natsync_nft_event *event);

/// Joins the event group; NULL with the error set.
natsync_nft_monitor *natsync_nft_monitor_open(void);
void natsync_nft_monitor_close(natsync_nft_monitor *monitor);

/// Passes every event queued so far to `visit`, in order, without waiting. -1 with ENOBUFS when
/// the kernel dropped some (the receive buffer overflowed).
int natsync_nft_monitor_drain(natsync_nft_monitor *monitor, natsync_nft_event_visitor visit, void *context);

/// One nf_tables transaction being built: messages added in order, then sent as one batch.
typedef struct natsync_nft_batch natsync_nft_batch;

/// A batch that the kernel applies only if the ruleset generation is still `generation`. NULL
/// when out of memory. nft_batch.c.
natsync_nft_batch *natsync_nft_batch_begin(uint32_t generation);
void natsync_nft_batch_free(natsync_nft_batch *batch);
/// The messages added so far: a failure's index counts them from 0.
size_t natsync_nft_batch_messages(const natsync_nft_batch *batch);
/// What message `index` (0 for the first after the batch's begin) does, for an error that names
/// it: its NFT_MSG_* type, whether it names a rule's handle, and the table and chain it names
/// ("" when none), each copied into `size` bytes. -1 when there is no such message.
int natsync_nft_batch_message(
    const natsync_nft_batch *batch, size_t index, int *type, int *by_handle, char *table, char *chain, size_t size);
/// Makes the batch apply at `generation` instead: after commits by others during the read that
/// touched nothing it was planned from.
void natsync_nft_batch_set_generation(natsync_nft_batch *batch, uint32_t generation);
/// NFT_MSG_NEWTABLE, for a table that does not exist yet. 0, or -1 when out of memory (as all
/// the additions below).
int natsync_nft_batch_add_table(natsync_nft_batch *batch, int family, const char *table);
/// NFT_MSG_NEWCHAIN: a user chain when `type` is NULL, else a base chain of that type ("nat",
/// "filter") on netfilter hook `hook` at `priority`, policy accept.
int natsync_nft_batch_add_chain(
    natsync_nft_batch *batch, int family, const char *table, const char *chain, const char *type, int hook, int priority);
/// NFT_MSG_DELRULE of every rule of a chain.
int natsync_nft_batch_flush_chain(natsync_nft_batch *batch, int family, const char *table, const char *chain);
/// NFT_MSG_DELCHAIN of an empty chain nothing jumps to.
int natsync_nft_batch_delete_chain(natsync_nft_batch *batch, int family, const char *table, const char *chain);
/// NFT_MSG_NEWRULE of encoded expressions (natsync_nft_encode_rule) appended to the chain, or at
/// its top; `protocol` is the rule's -p (0 for none), which compat matches are checked against.
int natsync_nft_batch_add_rule(
    natsync_nft_batch *batch, int family, const char *table, const char *chain, const uint8_t *expressions, size_t length,
    uint32_t protocol, int invert_protocol, int at_top);
/// NFT_MSG_DELRULE of one rule by its handle.
int natsync_nft_batch_delete_rule(natsync_nft_batch *batch, int family, const char *table, const char *chain, uint64_t handle);
/// Sends the batch and reads the kernel's answer: 0 when it was applied, else -1 and nothing was
/// (ERESTART: the generation moved; other errnos name the message that failed, whose index is
/// put in `failed`, or -1 for the batch as a whole).
int natsync_nft_batch_commit(natsync_nft_batch *batch, long *failed);

/// A rule's expressions as iptables-nft 1.8.9 writes them and the kernel dumps them (the payload
/// of NFTA_RULE_EXPRESSIONS), written into `buffer`: its length, or -1 (EINVAL for a rule that
/// cannot be encoded, ENOSPC when `capacity` is too small). nft_rules.c.
long natsync_nft_encode_rule(const struct natsync_rule *rule, int family, uint8_t *buffer, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
