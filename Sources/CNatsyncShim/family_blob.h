// What one family's two translation units share (shim_ipvN.c reads blobs and encodes entries,
// shim_writer_ipvN.c writes tables from them): the blob's layout and the encoder. Included after
// family_ipv4.h or family_ipv6.h, whose macros name everything here per family.

struct FAM(blob_chain) {
    const char *name;
    uint32_t head;  // offset of a user chain's ERROR head
    uint32_t first; // offset of the first rule (or of the tail/policy entry when empty)
    uint32_t end;   // offset of the tail (user chain) or policy (built-in chain) entry
    int is_user;
    uint32_t first_index, end_index; // the same entries' positions in the blob (for their counters)
};

struct FAM(blob) {
    GET_ENTRIES *entries;
    uint32_t size;
    GETINFO info;
    struct FAM(blob_chain) *chains;
    size_t count;
    size_t first_user; // position of the first user chain, count when there is none
    int users_sorted;  // the user chains come after the built-in ones, in strcmp order (as libiptc writes them)
};

/// The built-in chains, by hook number.
static const char *const FAM(hook_names)[] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};

/// The size of `rule`'s entry and the offset of its target in it; 0 when it cannot be encoded.
size_t FAM(entry_size)(const struct natsync_rule *rule, size_t *target_offset);
/// Encodes `rule` into `entry`, zeroed and of FAM(entry_size)'s size and target offset. 0 or -1.
int FAM(encode_rule_into)(ENTRY *entry, size_t size, size_t target_offset, const struct natsync_rule *rule);
/// The user chain whose first entry is at `offset`, or SIZE_MAX.
size_t FAM(blob_user_chain_at)(const struct FAM(blob) *blob, uint32_t offset);
