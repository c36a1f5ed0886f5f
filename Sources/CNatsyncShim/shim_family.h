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
int FAM(is_builtin)(void *handle, const char *chain) { return TC(builtin)(chain, handle); }
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

// Builds a zeroed, complete entry for `rule`; the caller frees it.
static ENTRY *encode_rule(const struct natsync_rule *rule) {
    if (rule->match_count > NATSYNC_MAX_MATCHES) return NULL;
    size_t size = sizeof(ENTRY);
    for (uint32_t i = 0; i < rule->match_count; i++) {
        size_t payload = natsync_match_payload_size(&rule->matches[i]);
        if (payload == 0) return NULL;
        size += natsync_match_size(payload);
    }
    size_t target_offset = size;
    size_t target_size = XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(target_payload_size(rule->target));
    size += target_size;

    ENTRY *entry = calloc(1, size);
    if (entry == NULL) return NULL;
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
        if (natsync_encode_match(em, &rule->matches[i], FAMILY) != 0) { free(entry); return NULL; }
        offset += msize;
    }
    struct xt_entry_target *et = (struct xt_entry_target *)((char *)entry + target_offset);
    et->u.target_size = (uint16_t)target_size;
    if (encode_target(et, rule) != 0) { free(entry); return NULL; }
    entry->target_offset = (uint16_t)target_offset;
    entry->next_offset = (uint16_t)size;
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

static int decode_target(void *handle, const ENTRY *entry, struct natsync_rule *out) {
    const struct xt_entry_target *et = (const void *)((const char *)entry + entry->target_offset);
    const char *name = TC(get_target)(entry, handle);
    size_t payload = et->u.target_size - XT_ALIGN(sizeof(struct xt_entry_target));
    unsigned revision = et->u.user.revision;
    if (name == NULL) return 1;
    if (name[0] == '\0') { out->target = NATSYNC_TARGET_NONE; return 0; }
    if (strcmp(name, LABEL_ACCEPT) == 0) { out->target = NATSYNC_TARGET_ACCEPT; return 0; }
    if (strcmp(name, LABEL_DROP) == 0) { out->target = NATSYNC_TARGET_DROP; return 0; }
    if (strcmp(name, LABEL_RETURN) == 0) { out->target = NATSYNC_TARGET_RETURN; return 0; }
    if (TC(is_chain)(name, handle)) {
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

int FAM(decode_rule)(void *handle, const void *opaque, struct natsync_rule *out) {
    const ENTRY *entry = opaque;
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
    if (decode_target(handle, entry, out) != 0) foreign = 1;
    return foreign;
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

static double FAM(seconds_since)(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int FAM(replace_unchanged)(const char *name, double *read_seconds, double *replace_seconds, uint32_t *entry_count, uint32_t *size) {
    int fd = socket(SOCKET_FAMILY, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) {
        natsync_set_error(errno, strerror(errno));
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    GETINFO info;
    GET_ENTRIES *entries = NULL;
    REPLACE *replace = NULL;
    struct xt_counters *counters = NULL;
    int result = FAM(get_info)(fd, name, &info);
    if (result == 0) {
        entries = malloc(sizeof(*entries) + info.size);
        replace = malloc(sizeof(*replace) + info.size);
        counters = calloc(info.num_entries ? info.num_entries : 1, sizeof(*counters));
        if (entries == NULL || replace == NULL || counters == NULL) {
            errno = ENOMEM;
            result = -1;
        }
    }
    if (result == 0) {
        memset(entries, 0, sizeof(*entries));
        snprintf(entries->name, sizeof(entries->name), "%s", name);
        entries->size = info.size;
        socklen_t length = sizeof(*entries) + info.size;
        result = getsockopt(fd, SOCKET_LEVEL, SO_GET_ENTRIES, entries, &length);
    }
    if (result == 0) {
        *read_seconds = FAM(seconds_since)(&start);
        *entry_count = info.num_entries;
        *size = info.size;
        memset(replace, 0, sizeof(*replace));
        snprintf(replace->name, sizeof(replace->name), "%s", name);
        replace->valid_hooks = info.valid_hooks;
        replace->num_entries = info.num_entries;
        replace->size = info.size;
        memcpy(replace->hook_entry, info.hook_entry, sizeof(replace->hook_entry));
        memcpy(replace->underflow, info.underflow, sizeof(replace->underflow));
        replace->num_counters = info.num_entries;
        replace->counters = counters;
        memcpy(replace->entries, entries->entrytable, info.size);
        clock_gettime(CLOCK_MONOTONIC, &start);
        result = setsockopt(fd, SOCKET_LEVEL, SO_SET_REPLACE, replace, sizeof(*replace) + info.size);
        *replace_seconds = FAM(seconds_since)(&start);
    }
    int saved = errno;
    free(entries);
    free(replace);
    free(counters);
    close(fd);
    if (result != 0) {
        natsync_set_error(saved, strerror(saved));
        return -1;
    }
    return 0;
}
