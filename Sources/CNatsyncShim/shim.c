// natsync's C shim over libip4tc. Everything here touches variable-length kernel structs (an
// ipt_entry followed by XT_ALIGNed matches and a target) or C-only APIs; all else is Swift.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

// glibc's net headers must precede libiptc.h and every linux/ header (else in_addr is redefined).
#include <netinet/in.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_sctp.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natsync_shim.h"

// The sizes the encoder relies on (libiptc-notes.md), checked at build time.
_Static_assert(sizeof(struct ipt_entry) == 112, "ipt_entry");
_Static_assert(sizeof(struct xt_entry_match) == 32, "xt_entry_match");
_Static_assert(sizeof(struct xt_entry_target) == 32, "xt_entry_target");
_Static_assert(sizeof(struct xt_standard_target) == 40, "xt_standard_target");
_Static_assert(sizeof(struct xt_comment_info) == 256, "xt_comment_info");
_Static_assert(sizeof(struct xt_statistic_info) == 24, "xt_statistic_info");
_Static_assert(sizeof(struct xt_recent_mtinfo_v1) == 228, "xt_recent_mtinfo_v1");
_Static_assert(sizeof(struct nf_nat_range2) == 44, "nf_nat_range2");
_Static_assert(NATSYNC_TEXT_SIZE == XT_MAX_COMMENT_LEN, "comment size");

struct natsync_table {
    struct xtc_handle *handle;
};

static _Thread_local int last_errno;
static _Thread_local char last_message[256];

// Records errno and libiptc's text for it at once: iptc_strerror reads a global the next call overwrites.
static void capture_error(void) {
    last_errno = errno;
    snprintf(last_message, sizeof(last_message), "%s", iptc_strerror(errno));
}

static void set_error(int code, const char *message) {
    last_errno = code;
    snprintf(last_message, sizeof(last_message), "%s", message);
    errno = code;
}

// For conntrack.c, which keeps its own headers apart from libiptc's.
void natsync_set_error(int code, const char *message) { set_error(code, message); }

int natsync_last_errno(void) { return last_errno; }
const char *natsync_last_error(void) { return last_message; }

natsync_table *natsync_table_open(const char *name) {
    struct xtc_handle *handle = iptc_init(name);
    if (handle == NULL) {
        capture_error();
        return NULL;
    }
    natsync_table *table = calloc(1, sizeof(*table));
    if (table == NULL) {
        iptc_free(handle);
        set_error(ENOMEM, "out of memory");
        return NULL;
    }
    table->handle = handle;
    return table;
}

void natsync_table_free(natsync_table *table) {
    if (table == NULL) return;
    iptc_free(table->handle);
    free(table);
}

int natsync_table_commit(natsync_table *table) {
    if (!iptc_commit(table->handle)) {
        capture_error();
        return -1;
    }
    return 0;
}

const char *natsync_first_chain(natsync_table *table) { return iptc_first_chain(table->handle); }
const char *natsync_next_chain(natsync_table *table) { return iptc_next_chain(table->handle); }
int natsync_is_builtin(natsync_table *table, const char *chain) { return iptc_builtin(chain, table->handle); }
int natsync_chain_exists(natsync_table *table, const char *chain) { return iptc_is_chain(chain, table->handle); }

const void *natsync_first_rule(natsync_table *table, const char *chain) {
    return iptc_first_rule(chain, table->handle);
}

const void *natsync_next_rule(natsync_table *table, const void *previous) {
    return iptc_next_rule(previous, table->handle);
}

int natsync_create_chain(natsync_table *table, const char *chain) {
    if (!iptc_create_chain(chain, table->handle)) { capture_error(); return -1; }
    return 0;
}

int natsync_flush_chain(natsync_table *table, const char *chain) {
    if (!iptc_flush_entries(chain, table->handle)) { capture_error(); return -1; }
    return 0;
}

int natsync_delete_chain(natsync_table *table, const char *chain) {
    if (!iptc_delete_chain(chain, table->handle)) { capture_error(); return -1; }
    return 0;
}

int natsync_delete_rule(natsync_table *table, const char *chain, unsigned int index) {
    if (!iptc_delete_num_entry(chain, index, table->handle)) { capture_error(); return -1; }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Encoding

static size_t match_size(size_t payload) {
    return XT_ALIGN(sizeof(struct xt_entry_match)) + XT_ALIGN(payload);
}

static size_t match_payload_size(const struct natsync_match *m) {
    switch (m->kind) {
    case NATSYNC_MATCH_COMMENT: return sizeof(struct xt_comment_info);
    case NATSYNC_MATCH_TCP: return sizeof(struct xt_tcp);
    case NATSYNC_MATCH_UDP: return sizeof(struct xt_udp);
    case NATSYNC_MATCH_SCTP: return sizeof(struct xt_sctp_info);
    case NATSYNC_MATCH_STATISTIC: return sizeof(struct xt_statistic_info);
    case NATSYNC_MATCH_MARK: return sizeof(struct xt_mark_mtinfo1);
    case NATSYNC_MATCH_ADDRTYPE: return sizeof(struct xt_addrtype_info_v1);
    case NATSYNC_MATCH_RECENT: return sizeof(struct xt_recent_mtinfo_v1);
    case NATSYNC_MATCH_CONNTRACK: return sizeof(struct xt_conntrack_mtinfo3);
    default: return 0;
    }
}

static size_t target_payload_size(uint32_t kind) {
    switch (kind) {
    case NATSYNC_TARGET_REJECT: return sizeof(struct ipt_reject_info);
    case NATSYNC_TARGET_DNAT: return sizeof(struct nf_nat_range2);
    case NATSYNC_TARGET_MASQUERADE: return sizeof(struct nf_nat_ipv4_multi_range_compat);
    case NATSYNC_TARGET_MARK: return sizeof(struct xt_mark_tginfo2);
    default: return sizeof(struct xt_standard_target) - sizeof(struct xt_entry_target);
    }
}

static void set_interface(char *name, unsigned char *mask, const char *value) {
    size_t length = strnlen(value, IFNAMSIZ - 1);
    memcpy(name, value, length);
    if (length == 0) return;
    // A trailing '+' matches every interface with the prefix: the mask stops before it.
    size_t covered = value[length - 1] == '+' ? length - 1 : length + 1;
    memset(mask, 0xFF, covered);
}

// Fills the port ranges of a tcp or udp match (absent ranges are 0-65535, as iptables writes
// them) and returns its inversion flags.
static uint8_t set_ports(uint16_t *spts, uint16_t *dpts, const struct natsync_match *m, uint8_t inv_src, uint8_t inv_dst) {
    spts[0] = 0; spts[1] = 0xFFFF;
    dpts[0] = 0; dpts[1] = 0xFFFF;
    if (m->flags & NATSYNC_MF_HAS_SOURCE) { spts[0] = m->source_ports[0]; spts[1] = m->source_ports[1]; }
    if (m->flags & NATSYNC_MF_HAS_DEST) { dpts[0] = m->dest_ports[0]; dpts[1] = m->dest_ports[1]; }
    uint8_t flags = 0;
    if (m->flags & NATSYNC_MF_INVERT_SOURCE) flags |= inv_src;
    if (m->flags & NATSYNC_MF_INVERT_DEST) flags |= inv_dst;
    return flags;
}

static int encode_match(struct xt_entry_match *em, const struct natsync_match *m) {
    void *data = em->data;
    switch (m->kind) {
    case NATSYNC_MATCH_COMMENT: {
        strcpy(em->u.user.name, "comment");
        struct xt_comment_info *info = data;
        snprintf((char *)info->comment, sizeof(info->comment), "%s", m->text);
        break;
    }
    case NATSYNC_MATCH_TCP: {
        strcpy(em->u.user.name, "tcp");
        struct xt_tcp *info = data;
        info->invflags = set_ports(info->spts, info->dpts, m, XT_TCP_INV_SRCPT, XT_TCP_INV_DSTPT);
        break;
    }
    case NATSYNC_MATCH_UDP: {
        strcpy(em->u.user.name, "udp");
        struct xt_udp *info = data;
        info->invflags = set_ports(info->spts, info->dpts, m, XT_UDP_INV_SRCPT, XT_UDP_INV_DSTPT);
        break;
    }
    case NATSYNC_MATCH_SCTP: {
        strcpy(em->u.user.name, "sctp");
        struct xt_sctp_info *info = data;
        info->spts[0] = 0; info->spts[1] = 0xFFFF;
        info->dpts[0] = 0; info->dpts[1] = 0xFFFF;
        if (m->flags & NATSYNC_MF_HAS_SOURCE) {
            info->spts[0] = m->source_ports[0]; info->spts[1] = m->source_ports[1];
            info->flags |= XT_SCTP_SRC_PORTS;
            if (m->flags & NATSYNC_MF_INVERT_SOURCE) info->invflags |= XT_SCTP_SRC_PORTS;
        }
        if (m->flags & NATSYNC_MF_HAS_DEST) {
            info->dpts[0] = m->dest_ports[0]; info->dpts[1] = m->dest_ports[1];
            info->flags |= XT_SCTP_DEST_PORTS;
            if (m->flags & NATSYNC_MF_INVERT_DEST) info->invflags |= XT_SCTP_DEST_PORTS;
        }
        break;
    }
    case NATSYNC_MATCH_STATISTIC: {
        strcpy(em->u.user.name, "statistic");
        struct xt_statistic_info *info = data;
        info->mode = XT_STATISTIC_MODE_RANDOM;
        info->flags = (m->flags & NATSYNC_MF_INVERT) ? XT_STATISTIC_INVERT : 0;
        info->u.random.probability = m->value;
        break;
    }
    case NATSYNC_MATCH_MARK: {
        strcpy(em->u.user.name, "mark");
        em->u.user.revision = 1;
        struct xt_mark_mtinfo1 *info = data;
        info->mark = m->value;
        info->mask = m->mask;
        info->invert = (m->flags & NATSYNC_MF_INVERT) ? 1 : 0;
        break;
    }
    case NATSYNC_MATCH_ADDRTYPE: {
        strcpy(em->u.user.name, "addrtype");
        em->u.user.revision = 1;
        struct xt_addrtype_info_v1 *info = data;
        info->source = m->source_type;
        info->dest = m->dest_type;
        if (m->flags & NATSYNC_MF_INVERT_SOURCE) info->flags |= XT_ADDRTYPE_INVERT_SOURCE;
        if (m->flags & NATSYNC_MF_INVERT_DEST) info->flags |= XT_ADDRTYPE_INVERT_DEST;
        break;
    }
    case NATSYNC_MATCH_RECENT: {
        strcpy(em->u.user.name, "recent");
        em->u.user.revision = 1;
        struct xt_recent_mtinfo_v1 *info = data;
        if (strlen(m->text) >= XT_RECENT_NAME_LEN) return -1;
        snprintf(info->name, sizeof(info->name), "%s", m->text);
        info->side = XT_RECENT_SOURCE;
        memset(&info->mask.in, 0xFF, sizeof(info->mask.in));
        if (m->flags & NATSYNC_MF_RECENT_SET) info->check_set |= XT_RECENT_SET;
        if (m->flags & NATSYNC_MF_RECENT_CHECK) info->check_set |= XT_RECENT_CHECK;
        if (m->flags & NATSYNC_MF_RECENT_REAP) info->check_set |= XT_RECENT_REAP;
        if (m->flags & NATSYNC_MF_RECENT_SECONDS) info->seconds = m->seconds;
        break;
    }
    case NATSYNC_MATCH_CONNTRACK: {
        strcpy(em->u.user.name, "conntrack");
        em->u.user.revision = 3;
        struct xt_conntrack_mtinfo3 *info = data;
        info->match_flags = XT_CONNTRACK_STATE;
        info->state_mask = m->states;
        if (m->flags & NATSYNC_MF_INVERT) info->invert_flags = XT_CONNTRACK_STATE;
        break;
    }
    default:
        return -1;
    }
    return 0;
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
    case NATSYNC_TARGET_ACCEPT: strcpy(et->u.user.name, IPTC_LABEL_ACCEPT); break;
    case NATSYNC_TARGET_DROP: strcpy(et->u.user.name, IPTC_LABEL_DROP); break;
    case NATSYNC_TARGET_RETURN: strcpy(et->u.user.name, IPTC_LABEL_RETURN); break;
    case NATSYNC_TARGET_REJECT: {
        strcpy(et->u.user.name, "REJECT");
        struct ipt_reject_info *info = data;
        info->with = rule->reject_with;
        break;
    }
    case NATSYNC_TARGET_DNAT: {
        strcpy(et->u.user.name, "DNAT");
        et->u.user.revision = 2;
        struct nf_nat_range2 *range = data;
        range->flags = NF_NAT_RANGE_MAP_IPS;
        memcpy(&range->min_addr.ip, rule->to_address, 4);
        memcpy(&range->max_addr.ip, rule->to_address, 4);
        if (rule->flags & NATSYNC_RF_DNAT_PORT) {
            range->flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
            range->min_proto.all = htons(rule->to_port);
            range->max_proto.all = htons(rule->to_port);
        }
        break;
    }
    case NATSYNC_TARGET_MASQUERADE: {
        strcpy(et->u.user.name, "MASQUERADE");
        struct nf_nat_ipv4_multi_range_compat *compat = data;
        compat->rangesize = 1;
        if (rule->flags & NATSYNC_RF_RANDOM_FULLY) compat->range[0].flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
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

// Builds a zeroed, complete ipt_entry for `rule`; the caller frees it.
static struct ipt_entry *encode_rule(const struct natsync_rule *rule) {
    if (rule->match_count > NATSYNC_MAX_MATCHES) return NULL;
    size_t size = sizeof(struct ipt_entry);
    for (uint32_t i = 0; i < rule->match_count; i++) {
        size_t payload = match_payload_size(&rule->matches[i]);
        if (payload == 0) return NULL;
        size += match_size(payload);
    }
    size_t target_offset = size;
    size_t target_size = XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(target_payload_size(rule->target));
    size += target_size;

    struct ipt_entry *entry = calloc(1, size);
    if (entry == NULL) return NULL;
    memcpy(&entry->ip.src, rule->source, 4);
    memcpy(&entry->ip.smsk, rule->source_mask, 4);
    memcpy(&entry->ip.dst, rule->dest, 4);
    memcpy(&entry->ip.dmsk, rule->dest_mask, 4);
    // The kernel tests (addr & mask) == value, so a value with host bits set would never match.
    entry->ip.src.s_addr &= entry->ip.smsk.s_addr;
    entry->ip.dst.s_addr &= entry->ip.dmsk.s_addr;
    set_interface(entry->ip.iniface, entry->ip.iniface_mask, rule->in_iface);
    set_interface(entry->ip.outiface, entry->ip.outiface_mask, rule->out_iface);
    entry->ip.proto = rule->protocol;
    if (rule->flags & NATSYNC_RF_INVERT_SOURCE) entry->ip.invflags |= IPT_INV_SRCIP;
    if (rule->flags & NATSYNC_RF_INVERT_DEST) entry->ip.invflags |= IPT_INV_DSTIP;
    if (rule->flags & NATSYNC_RF_INVERT_IN) entry->ip.invflags |= IPT_INV_VIA_IN;
    if (rule->flags & NATSYNC_RF_INVERT_OUT) entry->ip.invflags |= IPT_INV_VIA_OUT;
    if (rule->flags & NATSYNC_RF_INVERT_PROTO) entry->ip.invflags |= XT_INV_PROTO;
    if (rule->target == NATSYNC_TARGET_GOTO) entry->ip.flags |= IPT_F_GOTO;

    size_t offset = sizeof(struct ipt_entry);
    for (uint32_t i = 0; i < rule->match_count; i++) {
        struct xt_entry_match *em = (struct xt_entry_match *)((char *)entry + offset);
        size_t msize = match_size(match_payload_size(&rule->matches[i]));
        em->u.match_size = (uint16_t)msize;
        if (encode_match(em, &rule->matches[i]) != 0) { free(entry); return NULL; }
        offset += msize;
    }
    struct xt_entry_target *et = (struct xt_entry_target *)((char *)entry + target_offset);
    et->u.target_size = (uint16_t)target_size;
    if (encode_target(et, rule) != 0) { free(entry); return NULL; }
    entry->target_offset = (uint16_t)target_offset;
    entry->next_offset = (uint16_t)size;
    return entry;
}

int natsync_append_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule) {
    struct ipt_entry *entry = encode_rule(rule);
    if (entry == NULL) { set_error(EINVAL, "rule cannot be encoded"); return -1; }
    int ok = iptc_append_entry(chain, entry, table->handle);
    if (!ok) capture_error();
    free(entry);
    return ok ? 0 : -1;
}

int natsync_insert_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule, unsigned int index) {
    struct ipt_entry *entry = encode_rule(rule);
    if (entry == NULL) { set_error(EINVAL, "rule cannot be encoded"); return -1; }
    int ok = iptc_insert_entry(chain, entry, index, table->handle);
    if (!ok) capture_error();
    free(entry);
    return ok ? 0 : -1;
}

// ---------------------------------------------------------------------------------------------
// Decoding: every field natsync writes is read back; anything else makes the rule foreign.

static int all_zero(const void *data, size_t size) {
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++) if (bytes[i] != 0) return 0;
    return 1;
}

static int decode_ports(struct natsync_match *m, const uint16_t *spts, const uint16_t *dpts, int inv_src, int inv_dst) {
    if (spts[0] != 0 || spts[1] != 0xFFFF || inv_src) {
        m->flags |= NATSYNC_MF_HAS_SOURCE;
        m->source_ports[0] = spts[0];
        m->source_ports[1] = spts[1];
        if (inv_src) m->flags |= NATSYNC_MF_INVERT_SOURCE;
    }
    if (dpts[0] != 0 || dpts[1] != 0xFFFF || inv_dst) {
        m->flags |= NATSYNC_MF_HAS_DEST;
        m->dest_ports[0] = dpts[0];
        m->dest_ports[1] = dpts[1];
        if (inv_dst) m->flags |= NATSYNC_MF_INVERT_DEST;
    }
    return 0;
}

// Returns 0 when understood, 1 when foreign.
static int decode_match(const struct xt_entry_match *em, struct natsync_match *m) {
    const char *name = em->u.user.name;
    unsigned revision = em->u.user.revision;
    size_t payload = em->u.match_size - XT_ALIGN(sizeof(struct xt_entry_match));
    const void *data = em->data;
    memset(m, 0, sizeof(*m));
    if (strcmp(name, "comment") == 0 && revision == 0 && payload >= sizeof(struct xt_comment_info)) {
        const struct xt_comment_info *info = data;
        m->kind = NATSYNC_MATCH_COMMENT;
        snprintf(m->text, sizeof(m->text), "%.*s", (int)sizeof(info->comment), (const char *)info->comment);
        return 0;
    }
    if (strcmp(name, "tcp") == 0 && revision == 0 && payload >= sizeof(struct xt_tcp)) {
        const struct xt_tcp *info = data;
        if (info->option || info->flg_mask || info->flg_cmp || (info->invflags & ~(XT_TCP_INV_SRCPT | XT_TCP_INV_DSTPT))) return 1;
        m->kind = NATSYNC_MATCH_TCP;
        return decode_ports(m, info->spts, info->dpts, info->invflags & XT_TCP_INV_SRCPT, info->invflags & XT_TCP_INV_DSTPT);
    }
    if (strcmp(name, "udp") == 0 && revision == 0 && payload >= sizeof(struct xt_udp)) {
        const struct xt_udp *info = data;
        if (info->invflags & ~(XT_UDP_INV_SRCPT | XT_UDP_INV_DSTPT)) return 1;
        m->kind = NATSYNC_MATCH_UDP;
        return decode_ports(m, info->spts, info->dpts, info->invflags & XT_UDP_INV_SRCPT, info->invflags & XT_UDP_INV_DSTPT);
    }
    if (strcmp(name, "sctp") == 0 && revision == 0 && payload >= sizeof(struct xt_sctp_info)) {
        const struct xt_sctp_info *info = data;
        if (info->flags & ~(XT_SCTP_SRC_PORTS | XT_SCTP_DEST_PORTS)) return 1;
        m->kind = NATSYNC_MATCH_SCTP;
        uint16_t spts[2] = {0, 0xFFFF}, dpts[2] = {0, 0xFFFF};
        if (info->flags & XT_SCTP_SRC_PORTS) { spts[0] = info->spts[0]; spts[1] = info->spts[1]; }
        if (info->flags & XT_SCTP_DEST_PORTS) { dpts[0] = info->dpts[0]; dpts[1] = info->dpts[1]; }
        return decode_ports(m, spts, dpts, info->invflags & XT_SCTP_SRC_PORTS, info->invflags & XT_SCTP_DEST_PORTS);
    }
    if (strcmp(name, "statistic") == 0 && revision == 0 && payload >= sizeof(struct xt_statistic_info)) {
        const struct xt_statistic_info *info = data;
        if (info->mode != XT_STATISTIC_MODE_RANDOM || (info->flags & ~XT_STATISTIC_INVERT)) return 1;
        m->kind = NATSYNC_MATCH_STATISTIC;
        m->value = info->u.random.probability;
        if (info->flags & XT_STATISTIC_INVERT) m->flags |= NATSYNC_MF_INVERT;
        return 0;
    }
    if (strcmp(name, "mark") == 0 && revision == 1 && payload >= sizeof(struct xt_mark_mtinfo1)) {
        const struct xt_mark_mtinfo1 *info = data;
        m->kind = NATSYNC_MATCH_MARK;
        m->value = info->mark;
        m->mask = info->mask;
        if (info->invert) m->flags |= NATSYNC_MF_INVERT;
        return 0;
    }
    if (strcmp(name, "addrtype") == 0 && revision == 1 && payload >= sizeof(struct xt_addrtype_info_v1)) {
        const struct xt_addrtype_info_v1 *info = data;
        if (info->flags & ~(XT_ADDRTYPE_INVERT_SOURCE | XT_ADDRTYPE_INVERT_DEST)) return 1;
        m->kind = NATSYNC_MATCH_ADDRTYPE;
        m->source_type = info->source;
        m->dest_type = info->dest;
        if (info->source) m->flags |= NATSYNC_MF_HAS_SOURCE;
        if (info->dest) m->flags |= NATSYNC_MF_HAS_DEST;
        if (info->flags & XT_ADDRTYPE_INVERT_SOURCE) m->flags |= NATSYNC_MF_INVERT_SOURCE;
        if (info->flags & XT_ADDRTYPE_INVERT_DEST) m->flags |= NATSYNC_MF_INVERT_DEST;
        return 0;
    }
    if (strcmp(name, "recent") == 0 && revision == 1 && payload >= sizeof(struct xt_recent_mtinfo_v1)) {
        const struct xt_recent_mtinfo_v1 *info = data;
        uint8_t known = XT_RECENT_SET | XT_RECENT_CHECK | XT_RECENT_REAP;
        struct in_addr full = { .s_addr = 0xFFFFFFFF };
        if ((info->check_set & ~known) || info->invert || info->hit_count || info->side != XT_RECENT_SOURCE
            || memcmp(&info->mask.in, &full, sizeof(full)) != 0)
            return 1;
        m->kind = NATSYNC_MATCH_RECENT;
        snprintf(m->text, sizeof(m->text), "%.*s", (int)sizeof(info->name), info->name);
        if (info->check_set & XT_RECENT_SET) m->flags |= NATSYNC_MF_RECENT_SET;
        if (info->check_set & XT_RECENT_CHECK) m->flags |= NATSYNC_MF_RECENT_CHECK;
        if (info->check_set & XT_RECENT_REAP) m->flags |= NATSYNC_MF_RECENT_REAP;
        if (info->seconds) { m->flags |= NATSYNC_MF_RECENT_SECONDS; m->seconds = info->seconds; }
        return 0;
    }
    if (strcmp(name, "conntrack") == 0 && revision == 3 && payload >= sizeof(struct xt_conntrack_mtinfo3)) {
        const struct xt_conntrack_mtinfo3 *info = data;
        if (info->match_flags != XT_CONNTRACK_STATE || (info->invert_flags & ~XT_CONNTRACK_STATE)) return 1;
        m->kind = NATSYNC_MATCH_CONNTRACK;
        m->states = info->state_mask;
        if (info->invert_flags & XT_CONNTRACK_STATE) m->flags |= NATSYNC_MF_INVERT;
        return 0;
    }
    return 1;
}

static int decode_target(natsync_table *table, const struct ipt_entry *entry, struct natsync_rule *out) {
    const struct xt_entry_target *et = (const void *)((const char *)entry + entry->target_offset);
    const char *name = iptc_get_target(entry, table->handle);
    size_t payload = et->u.target_size - XT_ALIGN(sizeof(struct xt_entry_target));
    unsigned revision = et->u.user.revision;
    if (name == NULL) return 1;
    if (name[0] == '\0') { out->target = NATSYNC_TARGET_NONE; return 0; }
    if (strcmp(name, IPTC_LABEL_ACCEPT) == 0) { out->target = NATSYNC_TARGET_ACCEPT; return 0; }
    if (strcmp(name, IPTC_LABEL_DROP) == 0) { out->target = NATSYNC_TARGET_DROP; return 0; }
    if (strcmp(name, IPTC_LABEL_RETURN) == 0) { out->target = NATSYNC_TARGET_RETURN; return 0; }
    if (iptc_is_chain(name, table->handle)) {
        out->target = (entry->ip.flags & IPT_F_GOTO) ? NATSYNC_TARGET_GOTO : NATSYNC_TARGET_JUMP;
        snprintf(out->chain, sizeof(out->chain), "%s", name);
        return 0;
    }
    if (strcmp(name, "REJECT") == 0 && revision == 0 && payload >= sizeof(struct ipt_reject_info)) {
        const struct ipt_reject_info *info = (const void *)et->data;
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
        memcpy(out->to_address, &range->min_addr.ip, 4);
        if (range->flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
            out->flags |= NATSYNC_RF_DNAT_PORT;
            out->to_port = ntohs(range->min_proto.all);
        }
        return 0;
    }
    if (strcmp(name, "MASQUERADE") == 0 && revision == 0 && payload >= sizeof(struct nf_nat_ipv4_multi_range_compat)) {
        const struct nf_nat_ipv4_multi_range_compat *compat = (const void *)et->data;
        const struct nf_nat_ipv4_range *range = &compat->range[0];
        if (compat->rangesize != 1 || (range->flags & ~NF_NAT_RANGE_PROTO_RANDOM_FULLY) || range->min_ip || range->max_ip
            || range->min.all || range->max.all)
            return 1;
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

int natsync_decode_rule(natsync_table *table, const void *opaque, struct natsync_rule *out) {
    const struct ipt_entry *entry = opaque;
    memset(out, 0, sizeof(*out));
    int foreign = 0;
    memcpy(out->source, &entry->ip.src, 4);
    memcpy(out->source_mask, &entry->ip.smsk, 4);
    memcpy(out->dest, &entry->ip.dst, 4);
    memcpy(out->dest_mask, &entry->ip.dmsk, 4);
    memcpy(out->in_iface, entry->ip.iniface, IFNAMSIZ);
    memcpy(out->out_iface, entry->ip.outiface, IFNAMSIZ);
    out->in_iface[IFNAMSIZ - 1] = out->out_iface[IFNAMSIZ - 1] = '\0';
    // Interface masks natsync writes cover the name and its NUL (or stop before a trailing '+').
    unsigned char expected[IFNAMSIZ];
    char scratch[IFNAMSIZ];
    memset(expected, 0, sizeof(expected));
    memset(scratch, 0, sizeof(scratch));
    set_interface(scratch, expected, out->in_iface);
    if (memcmp(expected, entry->ip.iniface_mask, IFNAMSIZ) != 0) foreign = 1;
    memset(expected, 0, sizeof(expected));
    set_interface(scratch, expected, out->out_iface);
    if (memcmp(expected, entry->ip.outiface_mask, IFNAMSIZ) != 0) foreign = 1;
    out->protocol = entry->ip.proto;
    uint8_t inv = entry->ip.invflags;
    if (inv & IPT_INV_SRCIP) out->flags |= NATSYNC_RF_INVERT_SOURCE;
    if (inv & IPT_INV_DSTIP) out->flags |= NATSYNC_RF_INVERT_DEST;
    if (inv & IPT_INV_VIA_IN) out->flags |= NATSYNC_RF_INVERT_IN;
    if (inv & IPT_INV_VIA_OUT) out->flags |= NATSYNC_RF_INVERT_OUT;
    if (inv & XT_INV_PROTO) out->flags |= NATSYNC_RF_INVERT_PROTO;
    if (inv & ~(IPT_INV_SRCIP | IPT_INV_DSTIP | IPT_INV_VIA_IN | IPT_INV_VIA_OUT | XT_INV_PROTO)) foreign = 1;
    if (entry->ip.flags & ~IPT_F_GOTO) foreign = 1;
    out->packets = entry->counters.pcnt;
    out->bytes = entry->counters.bcnt;

    for (size_t offset = sizeof(struct ipt_entry); offset < entry->target_offset;) {
        const struct xt_entry_match *em = (const void *)((const char *)entry + offset);
        if (em->u.match_size < sizeof(struct xt_entry_match)) return 1;
        if (out->match_count == NATSYNC_MAX_MATCHES) return 1;
        if (decode_match(em, &out->matches[out->match_count]) != 0) foreign = 1;
        else out->match_count++;
        offset += em->u.match_size;
    }
    if (decode_target(table, entry, out) != 0) foreign = 1;
    return foreign;
}

void natsync_describe_extensions(natsync_table *table, const void *opaque, char *text, size_t size) {
    const struct ipt_entry *entry = opaque;
    size_t used = 0;
    text[0] = '\0';
    for (size_t offset = sizeof(struct ipt_entry); offset < entry->target_offset;) {
        const struct xt_entry_match *em = (const void *)((const char *)entry + offset);
        if (em->u.match_size < sizeof(struct xt_entry_match)) break;
        int written = snprintf(text + used, size - used, "%s-m %.*s", used ? " " : "", XT_EXTENSION_MAXNAMELEN, em->u.user.name);
        if (written < 0 || (size_t)written >= size - used) return;
        used += (size_t)written;
        offset += em->u.match_size;
    }
    const char *target = iptc_get_target(entry, table->handle);
    if (target != NULL && target[0] != '\0') {
        const char *flag = (entry->ip.flags & IPT_F_GOTO) ? "-g" : "-j";
        snprintf(text + used, size - used, "%s%s %s", used ? " " : "", flag, target);
    }
}

const char *natsync_chain_policy(natsync_table *table, const char *chain) {
    struct xt_counters counters;
    return iptc_get_policy(chain, &counters, table->handle);
}

int natsync_table_info(const char *name, uint32_t *entries, uint32_t *size) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) {
        set_error(errno, strerror(errno));
        return -1;
    }
    struct ipt_getinfo info;
    memset(&info, 0, sizeof(info));
    snprintf(info.name, sizeof(info.name), "%s", name);
    socklen_t length = sizeof(info);
    int result = getsockopt(fd, IPPROTO_IP, IPT_SO_GET_INFO, &info, &length);
    int saved = errno;
    close(fd);
    if (result != 0) {
        set_error(saved, strerror(saved));
        return -1;
    }
    *entries = info.num_entries;
    *size = info.size;
    return 0;
}

int natsync_enter_network_namespace(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_error(errno, strerror(errno));
        return -1;
    }
    int result = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    if (result != 0) {
        set_error(saved, strerror(saved));
        return -1;
    }
    return 0;
}
