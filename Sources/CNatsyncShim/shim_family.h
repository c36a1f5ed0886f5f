// One family's half of the shim: libiptc handles and entries of IPv4 (ipt_entry) or IPv6
// (ip6t_entry), included once by shim_ipv4.c and once by shim_ipv6.c with their macros:
//   FAM(name)      the family's function name (natsync4_name)
//   TC(name)       the family's libiptc call (iptc_name, ip6tc_name)
//   ENTRY, HDR     the entry type and its IP header member (ipt_entry/ip, ip6t_entry/ipv6)
//   INV_*, F_GOTO  the header's inversion and goto flags; F_KNOWN every flag natsync writes
//   LABEL_*        the standard target names
//   ADDRESS_SIZE   4 or 16; FAMILY 4 or 6
// Only stdint types and opaque pointers leave this file.

struct FAM(table) {
    struct xtc_handle *handle;
};

// Records errno and libiptc's text for it at once: the strerror reads a global the next call overwrites.
static void capture_error(void) {
    int code = errno;
    natsync_set_error(code, TC(strerror)(code));
}

void *FAM(table_open)(const char *name) {
    struct xtc_handle *handle = TC(init)(name);
    if (handle == NULL) capture_error();
    return handle;
}

void FAM(table_free)(void *handle) { TC(free)(handle); }

int FAM(table_commit)(void *handle) {
    if (!TC(commit)(handle)) { capture_error(); return -1; }
    return 0;
}

const char *FAM(first_chain)(void *handle) { return TC(first_chain)(handle); }
const char *FAM(next_chain)(void *handle) { return TC(next_chain)(handle); }
int FAM(chain_exists)(void *handle, const char *chain) { return TC(is_chain)(chain, handle); }
const void *FAM(first_rule)(void *handle, const char *chain) { return TC(first_rule)(chain, handle); }
const void *FAM(next_rule)(void *handle, const void *previous) { return TC(next_rule)(previous, handle); }

int FAM(create_chain)(void *handle, const char *chain) {
    if (!TC(create_chain)(chain, handle)) { capture_error(); return -1; }
    return 0;
}

int FAM(flush_chain)(void *handle, const char *chain) {
    if (!TC(flush_entries)(chain, handle)) { capture_error(); return -1; }
    return 0;
}

int FAM(delete_chain)(void *handle, const char *chain) {
    if (!TC(delete_chain)(chain, handle)) { capture_error(); return -1; }
    return 0;
}

int FAM(delete_rule)(void *handle, const char *chain, unsigned int index) {
    if (!TC(delete_num_entry)(chain, index, handle)) { capture_error(); return -1; }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Encoding

static size_t target_payload_size(uint32_t kind) {
    switch (kind) {
    case NATSYNC_TARGET_REJECT: return sizeof(REJECT_INFO);
    case NATSYNC_TARGET_DNAT: return sizeof(struct nf_nat_range2);
    case NATSYNC_TARGET_MASQUERADE: return sizeof(MASQUERADE_INFO);
    case NATSYNC_TARGET_MARK: return sizeof(struct xt_mark_tginfo2);
    default: return sizeof(struct xt_standard_target) - sizeof(struct xt_entry_target);
    }
}

static int encode_target(struct xt_entry_target *et, const struct natsync_rule *rule) {
    void *data = et->data;
    switch (rule->target) {
    case NATSYNC_TARGET_NONE:
        break; // empty name: libiptc maps it to a fall-through rule
    case NATSYNC_TARGET_JUMP:
    case NATSYNC_TARGET_GOTO:
        // libiptc resolves a chain name into a jump when the rule is added; the chain must exist.
        snprintf(et->u.user.name, sizeof(et->u.user.name), "%s", rule->chain);
        break;
    case NATSYNC_TARGET_ACCEPT: strcpy(et->u.user.name, LABEL_ACCEPT); break;
    case NATSYNC_TARGET_DROP: strcpy(et->u.user.name, LABEL_DROP); break;
    case NATSYNC_TARGET_RETURN: strcpy(et->u.user.name, LABEL_RETURN); break;
    case NATSYNC_TARGET_REJECT: {
        strcpy(et->u.user.name, "REJECT");
        REJECT_INFO *info = data;
        info->with = rule->reject_with;
        break;
    }
    case NATSYNC_TARGET_DNAT: {
        strcpy(et->u.user.name, "DNAT");
        et->u.user.revision = 2;
        struct nf_nat_range2 *range = data;
        range->flags = NF_NAT_RANGE_MAP_IPS;
        memcpy(&range->min_addr, rule->to_address, ADDRESS_SIZE);
        memcpy(&range->max_addr, rule->to_address, ADDRESS_SIZE);
        if (rule->flags & NATSYNC_RF_DNAT_PORT) {
            range->flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
            range->min_proto.all = htons(rule->to_port);
            range->max_proto.all = htons(rule->to_port);
        }
        break;
    }
    case NATSYNC_TARGET_MASQUERADE: {
        strcpy(et->u.user.name, "MASQUERADE");
#if FAMILY == 4
        struct nf_nat_ipv4_multi_range_compat *compat = data;
        compat->rangesize = 1;
        if (rule->flags & NATSYNC_RF_RANDOM_FULLY) compat->range[0].flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
#else
        struct nf_nat_range *range = data;
        if (rule->flags & NATSYNC_RF_RANDOM_FULLY) range->flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
#endif
        break;
    }
    case NATSYNC_TARGET_MARK: {
        strcpy(et->u.user.name, "MARK");
        et->u.user.revision = 2;
        struct xt_mark_tginfo2 *info = data;
        info->mark = rule->mark_value;
        info->mask = rule->mark_mask;
        break;
    }
    default:
        return -1;
    }
    return 0;
}

// The size of `rule`'s entry and the offset of its target in it; 0 when it cannot be encoded.
static size_t entry_size(const struct natsync_rule *rule, size_t *target_offset) {
    if (rule->match_count > NATSYNC_MAX_MATCHES) return 0;
    size_t size = sizeof(ENTRY);
    for (uint32_t i = 0; i < rule->match_count; i++) {
        size_t payload = natsync_match_payload_size(&rule->matches[i]);
        if (payload == 0) return 0;
        size += natsync_match_size(payload);
    }
    *target_offset = size;
    return size + XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(target_payload_size(rule->target));
}

// Encodes `rule` into `entry`, zeroed and of entry_size's size and target offset. 0 or -1.
static int encode_rule_into(ENTRY *entry, size_t size, size_t target_offset, const struct natsync_rule *rule) {
    unsigned char *src = (unsigned char *)&entry->HDR.src, *smsk = (unsigned char *)&entry->HDR.smsk;
    unsigned char *dst = (unsigned char *)&entry->HDR.dst, *dmsk = (unsigned char *)&entry->HDR.dmsk;
    memcpy(src, rule->source, ADDRESS_SIZE);
    memcpy(smsk, rule->source_mask, ADDRESS_SIZE);
    memcpy(dst, rule->dest, ADDRESS_SIZE);
    memcpy(dmsk, rule->dest_mask, ADDRESS_SIZE);
    // The kernel tests (addr & mask) == value, so a value with host bits set would never match.
    for (int i = 0; i < ADDRESS_SIZE; i++) {
        src[i] &= smsk[i];
        dst[i] &= dmsk[i];
    }
    natsync_set_interface(entry->HDR.iniface, entry->HDR.iniface_mask, rule->in_iface);
    natsync_set_interface(entry->HDR.outiface, entry->HDR.outiface_mask, rule->out_iface);
    entry->HDR.proto = rule->protocol;
#if FAMILY == 6
    // ip6tables marks a header that names a protocol.
    if (rule->protocol != 0) entry->HDR.flags |= IP6T_F_PROTO;
#endif
    if (rule->flags & NATSYNC_RF_INVERT_SOURCE) entry->HDR.invflags |= INV_SRCIP;
    if (rule->flags & NATSYNC_RF_INVERT_DEST) entry->HDR.invflags |= INV_DSTIP;
    if (rule->flags & NATSYNC_RF_INVERT_IN) entry->HDR.invflags |= INV_VIA_IN;
    if (rule->flags & NATSYNC_RF_INVERT_OUT) entry->HDR.invflags |= INV_VIA_OUT;
    if (rule->flags & NATSYNC_RF_INVERT_PROTO) entry->HDR.invflags |= XT_INV_PROTO;
    if (rule->target == NATSYNC_TARGET_GOTO) entry->HDR.flags |= F_GOTO;

    size_t offset = sizeof(ENTRY);
    for (uint32_t i = 0; i < rule->match_count; i++) {
        struct xt_entry_match *em = (struct xt_entry_match *)((char *)entry + offset);
        size_t msize = natsync_match_size(natsync_match_payload_size(&rule->matches[i]));
        em->u.match_size = (uint16_t)msize;
        if (natsync_encode_match(em, &rule->matches[i], FAMILY) != 0) return -1;
        offset += msize;
    }
    struct xt_entry_target *et = (struct xt_entry_target *)((char *)entry + target_offset);
    et->u.target_size = (uint16_t)(size - target_offset);
    if (encode_target(et, rule) != 0) return -1;
    entry->target_offset = (uint16_t)target_offset;
    entry->next_offset = (uint16_t)size;
    return 0;
}

// Builds a zeroed, complete entry for `rule`; the caller frees it.
static ENTRY *encode_rule(const struct natsync_rule *rule) {
    size_t target_offset;
    size_t size = entry_size(rule, &target_offset);
    if (size == 0) return NULL;
    ENTRY *entry = calloc(1, size);
    if (entry == NULL) return NULL;
    if (encode_rule_into(entry, size, target_offset, rule) != 0) {
        free(entry);
        return NULL;
    }
    return entry;
}

int FAM(append_rule)(void *handle, const char *chain, const struct natsync_rule *rule) {
    ENTRY *entry = encode_rule(rule);
    if (entry == NULL) { natsync_set_error(EINVAL, "rule cannot be encoded"); return -1; }
    int ok = TC(append_entry)(chain, entry, handle);
    if (!ok) capture_error();
    free(entry);
    return ok ? 0 : -1;
}

int FAM(insert_rule)(void *handle, const char *chain, const struct natsync_rule *rule, unsigned int index) {
    ENTRY *entry = encode_rule(rule);
    if (entry == NULL) { natsync_set_error(EINVAL, "rule cannot be encoded"); return -1; }
    int ok = TC(insert_entry)(chain, entry, index, handle);
    if (!ok) capture_error();
    free(entry);
    return ok ? 0 : -1;
}

// ---------------------------------------------------------------------------------------------
// Decoding: every field natsync writes is read back; anything else makes the rule foreign.

/// Decodes the target of an entry whose target `name` is already known (as libiptc names it:
/// "" for none, a standard verdict's label, a chain, or the extension's name); `is_jump` says
/// whether `name` is a chain.
static int decode_target(const ENTRY *entry, const char *name, int is_jump, struct natsync_rule *out) {
    const struct xt_entry_target *et = (const void *)((const char *)entry + entry->target_offset);
    size_t payload = et->u.target_size - XT_ALIGN(sizeof(struct xt_entry_target));
    unsigned revision = et->u.user.revision;
    if (name == NULL) return 1;
    if (name[0] == '\0') { out->target = NATSYNC_TARGET_NONE; return 0; }
    if (strcmp(name, LABEL_ACCEPT) == 0) { out->target = NATSYNC_TARGET_ACCEPT; return 0; }
    if (strcmp(name, LABEL_DROP) == 0) { out->target = NATSYNC_TARGET_DROP; return 0; }
    if (strcmp(name, LABEL_RETURN) == 0) { out->target = NATSYNC_TARGET_RETURN; return 0; }
    if (is_jump) {
        out->target = (entry->HDR.flags & F_GOTO) ? NATSYNC_TARGET_GOTO : NATSYNC_TARGET_JUMP;
        snprintf(out->chain, sizeof(out->chain), "%s", name);
        return 0;
    }
    if (strcmp(name, "REJECT") == 0 && revision == 0 && payload >= sizeof(REJECT_INFO)) {
        const REJECT_INFO *info = (const void *)et->data;
        out->target = NATSYNC_TARGET_REJECT;
        out->reject_with = info->with;
        return 0;
    }
    if (strcmp(name, "DNAT") == 0 && revision == 2 && payload >= sizeof(struct nf_nat_range2)) {
        const struct nf_nat_range2 *range = (const void *)et->data;
        unsigned known = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
        if ((range->flags & ~known) || !(range->flags & NF_NAT_RANGE_MAP_IPS)
            || memcmp(&range->min_addr, &range->max_addr, sizeof(range->min_addr)) != 0
            || range->min_proto.all != range->max_proto.all || range->base_proto.all != 0)
            return 1;
        out->target = NATSYNC_TARGET_DNAT;
        memcpy(out->to_address, &range->min_addr, ADDRESS_SIZE);
        if (range->flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
            out->flags |= NATSYNC_RF_DNAT_PORT;
            out->to_port = ntohs(range->min_proto.all);
        }
        return 0;
    }
    if (strcmp(name, "MASQUERADE") == 0 && revision == 0 && payload >= sizeof(MASQUERADE_INFO)) {
#if FAMILY == 4
        const struct nf_nat_ipv4_multi_range_compat *compat = (const void *)et->data;
        const struct nf_nat_ipv4_range *range = &compat->range[0];
        if (compat->rangesize != 1 || (range->flags & ~NF_NAT_RANGE_PROTO_RANDOM_FULLY) || range->min_ip || range->max_ip
            || range->min.all || range->max.all)
            return 1;
#else
        const struct nf_nat_range *range = (const void *)et->data;
        struct nf_nat_range empty;
        memset(&empty, 0, sizeof(empty));
        empty.flags = range->flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY;
        if (memcmp(range, &empty, sizeof(empty)) != 0) return 1;
#endif
        out->target = NATSYNC_TARGET_MASQUERADE;
        if (range->flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) out->flags |= NATSYNC_RF_RANDOM_FULLY;
        return 0;
    }
    if (strcmp(name, "MARK") == 0 && revision == 2 && payload >= sizeof(struct xt_mark_tginfo2)) {
        const struct xt_mark_tginfo2 *info = (const void *)et->data;
        out->target = NATSYNC_TARGET_MARK;
        out->mark_value = info->mark;
        out->mark_mask = info->mask;
        return 0;
    }
    return 1;
}

/// Decodes an entry whose target is named `target` (see decode_target).
static int decode_entry(const ENTRY *entry, const char *target, int is_jump, struct natsync_rule *out) {
    // Everything but the match slots, which natsync_decode_match clears one by one as it fills
    // them: clearing all eight cost more than decoding the rule.
    size_t matches = offsetof(struct natsync_rule, matches);
    size_t rest = matches + sizeof(out->matches);
    memset(out, 0, matches);
    memset((char *)out + rest, 0, sizeof(*out) - rest);
    int foreign = 0;
    memcpy(out->source, &entry->HDR.src, ADDRESS_SIZE);
    memcpy(out->source_mask, &entry->HDR.smsk, ADDRESS_SIZE);
    memcpy(out->dest, &entry->HDR.dst, ADDRESS_SIZE);
    memcpy(out->dest_mask, &entry->HDR.dmsk, ADDRESS_SIZE);
    memcpy(out->in_iface, entry->HDR.iniface, IFNAMSIZ);
    memcpy(out->out_iface, entry->HDR.outiface, IFNAMSIZ);
    out->in_iface[IFNAMSIZ - 1] = out->out_iface[IFNAMSIZ - 1] = '\0';
    // Interface masks natsync writes cover the name and its NUL (or stop before a trailing '+').
    unsigned char expected[IFNAMSIZ];
    char scratch[IFNAMSIZ];
    memset(expected, 0, sizeof(expected));
    memset(scratch, 0, sizeof(scratch));
    natsync_set_interface(scratch, expected, out->in_iface);
    if (memcmp(expected, entry->HDR.iniface_mask, IFNAMSIZ) != 0) foreign = 1;
    memset(expected, 0, sizeof(expected));
    natsync_set_interface(scratch, expected, out->out_iface);
    if (memcmp(expected, entry->HDR.outiface_mask, IFNAMSIZ) != 0) foreign = 1;
    out->protocol = entry->HDR.proto;
    uint8_t inv = entry->HDR.invflags;
    if (inv & INV_SRCIP) out->flags |= NATSYNC_RF_INVERT_SOURCE;
    if (inv & INV_DSTIP) out->flags |= NATSYNC_RF_INVERT_DEST;
    if (inv & INV_VIA_IN) out->flags |= NATSYNC_RF_INVERT_IN;
    if (inv & INV_VIA_OUT) out->flags |= NATSYNC_RF_INVERT_OUT;
    if (inv & XT_INV_PROTO) out->flags |= NATSYNC_RF_INVERT_PROTO;
    if (inv & ~(INV_SRCIP | INV_DSTIP | INV_VIA_IN | INV_VIA_OUT | XT_INV_PROTO)) foreign = 1;
    if (entry->HDR.flags & ~F_KNOWN) foreign = 1;
#if FAMILY == 6
    if (entry->HDR.tos != 0) foreign = 1;
    if (((entry->HDR.flags & IP6T_F_PROTO) != 0) != (entry->HDR.proto != 0)) foreign = 1;
#endif
    out->packets = entry->counters.pcnt;
    out->bytes = entry->counters.bcnt;

    for (size_t offset = sizeof(ENTRY); offset < entry->target_offset;) {
        const struct xt_entry_match *em = (const void *)((const char *)entry + offset);
        if (em->u.match_size < sizeof(struct xt_entry_match)) return 1;
        if (out->match_count == NATSYNC_MAX_MATCHES) return 1;
        if (natsync_decode_match(em, &out->matches[out->match_count], FAMILY) != 0) foreign = 1;
        else out->match_count++;
        offset += em->u.match_size;
    }
    if (decode_target(entry, target, is_jump, out) != 0) foreign = 1;
    return foreign;
}

int FAM(decode_rule)(void *handle, const void *opaque, struct natsync_rule *out) {
    const ENTRY *entry = opaque;
    const char *target = TC(get_target)(entry, handle);
    // A standard label is never a chain; only ask libiptc (a lookup) for other names.
    int is_jump = target != NULL && target[0] != '\0' && strcmp(target, LABEL_ACCEPT) != 0 && strcmp(target, LABEL_DROP) != 0
        && strcmp(target, LABEL_RETURN) != 0 && TC(is_chain)(target, handle);
    return decode_entry(entry, target, is_jump, out);
}

void FAM(describe_extensions)(void *handle, const void *opaque, char *text, size_t size) {
    const ENTRY *entry = opaque;
    size_t used = 0;
    text[0] = '\0';
    for (size_t offset = sizeof(ENTRY); offset < entry->target_offset;) {
        const struct xt_entry_match *em = (const void *)((const char *)entry + offset);
        if (em->u.match_size < sizeof(struct xt_entry_match)) break;
        int written = snprintf(text + used, size - used, "%s-m %.*s", used ? " " : "", XT_EXTENSION_MAXNAMELEN, em->u.user.name);
        if (written < 0 || (size_t)written >= size - used) return;
        used += (size_t)written;
        offset += em->u.match_size;
    }
    const char *target = TC(get_target)(entry, handle);
    if (target != NULL && target[0] != '\0') {
        const char *flag = (entry->HDR.flags & F_GOTO) ? "-g" : "-j";
        snprintf(text + used, size - used, "%s%s %s", used ? " " : "", flag, target);
    }
}

const char *FAM(chain_policy)(void *handle, const char *chain) {
    struct xt_counters counters;
    return TC(get_policy)(chain, &counters, handle);
}

/// GET_INFO of table `name` on an open raw socket. 0, or -1 with errno set.
static int FAM(get_info)(int fd, const char *name, GETINFO *info) {
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", name);
    socklen_t length = sizeof(*info);
    return getsockopt(fd, SOCKET_LEVEL, SO_GET_INFO, info, &length);
}

int FAM(table_info)(const char *name, uint32_t *entries, uint32_t *size) {
    int fd = socket(SOCKET_FAMILY, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) {
        natsync_set_error(errno, strerror(errno));
        return -1;
    }
    GETINFO info;
    int result = FAM(get_info)(fd, name, &info);
    int saved = errno;
    close(fd);
    if (result != 0) {
        natsync_set_error(saved, strerror(saved));
        return -1;
    }
    *entries = info.num_entries;
    *size = info.size;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The table's blob as GET_ENTRIES hands it out, walked without libiptc: a reader for syncs that
// mostly find the table as it should be (iptc_init also builds a structure per rule and chain,
// which only a change needs). Chains and jumps are found the way libiptc finds them: built-in
// chains from the hook offsets, user chains after their ERROR heads, a jump's verdict is the
// offset of the target chain's first entry, and a verdict to the next entry is no target.

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

static const char *const FAM(hook_names)[] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};

void FAM(blob_free)(void *opaque) {
    struct FAM(blob) *blob = opaque;
    if (blob == NULL) return;
    free(blob->entries);
    free(blob->chains);
    free(blob);
}

void *FAM(blob_read)(const char *name) {
    int fd = socket(SOCKET_FAMILY, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) {
        natsync_set_error(errno, strerror(errno));
        return NULL;
    }
    struct FAM(blob) *blob = calloc(1, sizeof(*blob));
    GETINFO info;
    int result = blob == NULL ? -1 : FAM(get_info)(fd, name, &info);
    if (blob == NULL) errno = ENOMEM;
    if (result == 0) {
        // Zeroed: the kernel writes only the used part of each extension's name, and the blob's
        // bytes are compared (calloc of this size maps fresh pages, which costs nothing more).
        blob->entries = calloc(1, sizeof(*blob->entries) + info.size);
        if (blob->entries == NULL) {
            errno = ENOMEM;
            result = -1;
        }
    }
    if (result == 0) {
        memset(blob->entries, 0, sizeof(*blob->entries));
        snprintf(blob->entries->name, sizeof(blob->entries->name), "%s", name);
        blob->entries->size = info.size;
        socklen_t length = sizeof(*blob->entries) + info.size;
        result = getsockopt(fd, SOCKET_LEVEL, SO_GET_ENTRIES, blob->entries, &length);
    }
    int saved = errno;
    close(fd);
    if (result != 0) {
        FAM(blob_free)(blob);
        natsync_set_error(saved, strerror(saved));
        return NULL;
    }
    blob->size = info.size;
    blob->info = info;

    const char *base = (const char *)blob->entries->entrytable;
    size_t capacity = 64;
    blob->chains = malloc(capacity * sizeof(*blob->chains));
    struct FAM(blob_chain) *open = NULL;
    uint32_t previous = 0;
    uint32_t index = 0;
    blob->first_user = SIZE_MAX;
    blob->users_sorted = 1;
    for (uint32_t offset = 0; offset + sizeof(ENTRY) <= info.size; index++) {
        const ENTRY *entry = (const void *)(base + offset);
        const struct xt_entry_target *target = (const void *)((const char *)entry + entry->target_offset);
        if (entry->next_offset < sizeof(ENTRY) || entry->target_offset + sizeof(*target) > entry->next_offset) break;
        int starts = -1;
        for (int hook = 0; hook < 5; hook++) {
            if ((info.valid_hooks & (1u << hook)) && info.hook_entry[hook] == offset) starts = hook;
        }
        int is_error = strcmp(target->u.user.name, XT_ERROR_TARGET) == 0;
        if (open != NULL && open->is_user && (is_error || starts >= 0)) {
            open->end = previous;
            open->end_index = index - 1;
            open = NULL;
        }
        if ((starts >= 0 || is_error) && blob->count == capacity) {
            capacity *= 2;
            struct FAM(blob_chain) *grown = realloc(blob->chains, capacity * sizeof(*blob->chains));
            if (grown == NULL) {
                FAM(blob_free)(blob);
                natsync_set_error(ENOMEM, "out of memory");
                return NULL;
            }
            blob->chains = grown;
        }
        if (starts >= 0) {
            if (blob->first_user != SIZE_MAX) blob->users_sorted = 0;
            open = &blob->chains[blob->count++];
            *open = (struct FAM(blob_chain)){FAM(hook_names)[starts], offset, offset, info.underflow[starts], 0, index, index};
            if (info.underflow[starts] == offset) open = NULL;
        } else if (is_error && offset + entry->next_offset < info.size) {
            const char *name = (const char *)target->data;
            if (blob->first_user == SIZE_MAX) blob->first_user = blob->count;
            else if (strcmp(blob->chains[blob->count - 1].name, name) >= 0) blob->users_sorted = 0;
            open = &blob->chains[blob->count++];
            *open = (struct FAM(blob_chain)){name, offset, offset + entry->next_offset, 0, 1, index + 1, 0};
        }
        if (open != NULL && !open->is_user && open->end == offset) {
            open->end_index = index;
            open = NULL;
        }
        previous = offset;
        offset += entry->next_offset;
    }
    if (blob->first_user == SIZE_MAX) blob->first_user = blob->count;
    return blob;
}

int FAM(blob_users_sorted)(const void *opaque) { return ((const struct FAM(blob) *)opaque)->users_sorted; }

size_t FAM(blob_user_search)(const void *opaque, const char *name, int *found) {
    const struct FAM(blob) *blob = opaque;
    size_t low = blob->first_user, high = blob->count;
    if (!blob->users_sorted) {
        for (; low < high; low++) {
            if (blob->chains[low].is_user && strcmp(blob->chains[low].name, name) == 0) break;
        }
        *found = low < high;
        return low;
    }
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (strcmp(blob->chains[middle].name, name) < 0) low = middle + 1;
        else high = middle;
    }
    *found = low < blob->count && strcmp(blob->chains[low].name, name) == 0;
    return low;
}

size_t FAM(blob_chain_count)(const void *opaque) { return ((const struct FAM(blob) *)opaque)->count; }

const char *FAM(blob_chain_name)(const void *opaque, size_t chain) { return ((const struct FAM(blob) *)opaque)->chains[chain].name; }

int FAM(blob_chain_is_user)(const void *opaque, size_t chain) { return ((const struct FAM(blob) *)opaque)->chains[chain].is_user; }

const void *FAM(blob_first_rule)(const void *opaque, size_t chain) {
    const struct FAM(blob) *blob = opaque;
    const struct FAM(blob_chain) *c = &blob->chains[chain];
    return c->first < c->end ? (const char *)blob->entries->entrytable + c->first : NULL;
}

const void *FAM(blob_next_rule)(const void *opaque, size_t chain, const void *previous) {
    const struct FAM(blob) *blob = opaque;
    const ENTRY *entry = previous;
    uint32_t next = (uint32_t)((const char *)previous - (const char *)blob->entries->entrytable) + entry->next_offset;
    return next < blob->chains[chain].end ? (const char *)blob->entries->entrytable + next : NULL;
}

/// The user chain whose first entry is at `offset`, or SIZE_MAX.
static size_t FAM(blob_user_chain_at)(const struct FAM(blob) *blob, uint32_t offset) {
    // Chains are in offset order: binary search for the one starting there.
    size_t low = 0, high = blob->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (blob->chains[middle].first < offset) low = middle + 1;
        else high = middle;
    }
    for (; low < blob->count && blob->chains[low].first == offset; low++) {
        if (blob->chains[low].is_user) return low;
    }
    return SIZE_MAX;
}

/// The target's name as libiptc gives it, and whether it is a chain.
static const char *FAM(blob_target)(const struct FAM(blob) *blob, const ENTRY *entry, int *is_jump) {
    const struct xt_entry_target *target = (const void *)((const char *)entry + entry->target_offset);
    *is_jump = 0;
    if (strcmp(target->u.user.name, XT_STANDARD_TARGET) != 0) return target->u.user.name;
    if (target->u.target_size < sizeof(struct xt_standard_target)) return NULL;
    int verdict = ((const struct xt_standard_target *)target)->verdict;
    if (verdict < 0) {
        if (verdict == -NF_ACCEPT - 1) return LABEL_ACCEPT;
        if (verdict == -NF_DROP - 1) return LABEL_DROP;
        if (verdict == XT_RETURN) return LABEL_RETURN;
        return NULL;
    }
    uint32_t offset = (uint32_t)((const char *)entry - (const char *)blob->entries->entrytable);
    if ((uint32_t)verdict == offset + entry->next_offset) return "";
    size_t chain = FAM(blob_user_chain_at)(blob, (uint32_t)verdict);
    if (chain == SIZE_MAX) return NULL;
    *is_jump = 1;
    return blob->chains[chain].name;
}

int FAM(blob_decode_rule)(const void *opaque, const void *entry, struct natsync_rule *out) {
    int is_jump;
    const char *target = FAM(blob_target)(opaque, entry, &is_jump);
    return decode_entry(entry, target, is_jump, out);
}

const void *FAM(blob_entries)(const void *opaque, size_t *size) {
    const struct FAM(blob) *blob = opaque;
    *size = blob->size;
    return blob->entries->entrytable;
}
