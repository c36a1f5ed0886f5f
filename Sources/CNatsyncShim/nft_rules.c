// natsync's rules as nf_tables expressions, in the form iptables-nft 1.8.9 writes them (nft.c,
// nft-ipv4.c, nft-ipv6.c, nft-shared.c): native payload, meta and cmp expressions for the IP
// header, tcp and udp ports and marks; xt compat `match` and `target` expressions, holding the same
// payloads as the legacy tables, for every other extension; a counter on every rule; `immediate`
// verdicts for jumps and the standard targets. Each expression's attributes are laid out as the
// kernel dumps them (its order, nests without NLA_F_NESTED), so an encoded rule equals, byte for
// byte, the dump of the rule iptables-nft-restore wrote, counter values aside.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <net/if.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_sctp.h>
#include <linux/netfilter/xt_statistic.h>

#include <errno.h>
#include <string.h>

#include "shim_internal.h"

/// The expressions being written: a buffer and how much of it is used; `failed` once it is full.
struct encoder {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
    int failed;
};

/// Appends an attribute header and its payload, padded to 4 bytes; returns its offset.
static size_t put(struct encoder *e, uint16_t type, const void *payload, size_t size) {
    size_t start = e->length;
    size_t padded = (4 + size + 3) & ~(size_t)3;
    if (e->failed || size > 0xFFFF - 4 || e->length + padded > e->capacity) {
        e->failed = 1;
        return start;
    }
    uint16_t header[2] = {(uint16_t)(4 + size), type};
    memcpy(e->bytes + start, header, 4);
    if (size > 0) memcpy(e->bytes + start + 4, payload, size);
    memset(e->bytes + start + 4 + size, 0, padded - 4 - size);
    e->length += padded;
    return start;
}

static void put_u32(struct encoder *e, uint16_t type, uint32_t value) {
    uint32_t big = htonl(value);
    put(e, type, &big, sizeof(big));
}

static void put_string(struct encoder *e, uint16_t type, const char *text) { put(e, type, text, strlen(text) + 1); }

/// Opens a nested attribute; `end` sets its length to what was written since.
static size_t begin(struct encoder *e, uint16_t type) { return put(e, type, NULL, 0); }

static void end(struct encoder *e, size_t start) {
    if (e->failed) return;
    uint16_t length = (uint16_t)(e->length - start);
    memcpy(e->bytes + start, &length, sizeof(length));
}

/// One expression: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }. `expression_end`
/// closes both.
struct expression {
    size_t element, data;
};

static struct expression expression(struct encoder *e, const char *name) {
    struct expression x;
    x.element = begin(e, NFTA_LIST_ELEM);
    put_string(e, NFTA_EXPR_NAME, name);
    x.data = begin(e, NFTA_EXPR_DATA);
    return x;
}

static void expression_end(struct encoder *e, struct expression x) {
    end(e, x.data);
    end(e, x.element);
}

static void data_value(struct encoder *e, uint16_t type, const void *value, size_t size) {
    size_t nest = begin(e, type);
    put(e, NFTA_DATA_VALUE, value, size);
    end(e, nest);
}

static void payload(struct encoder *e, uint32_t base, uint32_t offset, uint32_t size) {
    struct expression x = expression(e, "payload");
    put_u32(e, NFTA_PAYLOAD_DREG, NFT_REG_1);
    put_u32(e, NFTA_PAYLOAD_BASE, base);
    put_u32(e, NFTA_PAYLOAD_OFFSET, offset);
    put_u32(e, NFTA_PAYLOAD_LEN, size);
    expression_end(e, x);
}

static void meta(struct encoder *e, uint32_t key) {
    struct expression x = expression(e, "meta");
    put_u32(e, NFTA_META_KEY, key);
    put_u32(e, NFTA_META_DREG, NFT_REG_1);
    expression_end(e, x);
}

static void cmp(struct encoder *e, uint32_t op, const void *value, size_t size) {
    struct expression x = expression(e, "cmp");
    put_u32(e, NFTA_CMP_SREG, NFT_REG_1);
    put_u32(e, NFTA_CMP_OP, op);
    data_value(e, NFTA_CMP_DATA, value, size);
    expression_end(e, x);
}

/// reg 1 = (reg 1 & mask) ^ 0.
static void bitwise(struct encoder *e, const void *mask, size_t size) {
    static const uint8_t zero[16];
    struct expression x = expression(e, "bitwise");
    put_u32(e, NFTA_BITWISE_SREG, NFT_REG_1);
    put_u32(e, NFTA_BITWISE_DREG, NFT_REG_1);
    put_u32(e, NFTA_BITWISE_LEN, (uint32_t)size);
    put_u32(e, NFTA_BITWISE_OP, NFT_BITWISE_BOOL);
    data_value(e, NFTA_BITWISE_MASK, mask, size);
    data_value(e, NFTA_BITWISE_XOR, zero, size);
    expression_end(e, x);
}

static uint32_t cmp_op(int inverted) { return inverted ? NFT_CMP_NEQ : NFT_CMP_EQ; }

/// iptables' add_iniface/add_outiface: a name ending in '+' compares its prefix, any other name
/// the name with its NUL.
static void interface(struct encoder *e, uint32_t key, const char *name, int inverted) {
    size_t length = strnlen(name, IFNAMSIZ - 1);
    meta(e, key);
    if (name[length - 1] == '+') {
        if (length > 1) cmp(e, cmp_op(inverted), name, length - 1);
    } else {
        cmp(e, cmp_op(inverted), name, length + 1);
    }
}

/// iptables' add_addr: whole bytes of the prefix loaded and compared; a prefix that ends inside
/// a byte loads every byte up to the last masked one and masks them first.
static void address(struct encoder *e, uint32_t offset, const uint8_t *value, const uint8_t *mask, size_t size, int inverted) {
    size_t whole = 0;
    while (whole < size && mask[whole] == 0xFF) whole++;
    int partial = 0;
    for (size_t i = whole; i < size; i++) partial |= mask[i] != 0;
    size_t length = partial ? size : whole;
    uint8_t masked[16];
    for (size_t i = 0; i < size; i++) masked[i] = value[i] & mask[i];
    payload(e, NFT_PAYLOAD_NETWORK_HEADER, offset, (uint32_t)length);
    if (partial) bitwise(e, mask, length);
    cmp(e, cmp_op(inverted), masked, length);
}

/// iptables' expr_gen_range_cmp16 for one port range already loaded into reg 1.
static void port_range(struct encoder *e, uint16_t low, uint16_t high, int inverted) {
    uint16_t low_big = htons(low), high_big = htons(high);
    if (low == high) {
        cmp(e, cmp_op(inverted), &low_big, 2);
    } else if (low == 0 && high < 0xFFFF) {
        cmp(e, inverted ? NFT_CMP_GT : NFT_CMP_LTE, &high_big, 2);
    } else {
        struct expression x = expression(e, "range");
        put_u32(e, NFTA_RANGE_SREG, NFT_REG_1);
        put_u32(e, NFTA_RANGE_OP, inverted ? NFT_RANGE_NEQ : NFT_RANGE_EQ);
        data_value(e, NFTA_RANGE_FROM_DATA, &low_big, 2);
        data_value(e, NFTA_RANGE_TO_DATA, &high_big, 2);
        expression_end(e, x);
    }
}

/// iptables' add_nft_tcpudp: a single source and destination port not inverted differently are
/// compared together as four bytes; otherwise each given range on its own.
static void ports(struct encoder *e, const struct natsync_match *m) {
    uint16_t source[2] = {0, 0xFFFF}, destination[2] = {0, 0xFFFF};
    if (m->flags & NATSYNC_MF_HAS_SOURCE) memcpy(source, m->source_ports, sizeof(source));
    if (m->flags & NATSYNC_MF_HAS_DEST) memcpy(destination, m->dest_ports, sizeof(destination));
    int invert_source = (m->flags & NATSYNC_MF_INVERT_SOURCE) != 0;
    int invert_destination = (m->flags & NATSYNC_MF_INVERT_DEST) != 0;
    if (source[0] && source[0] == source[1] && destination[0] && destination[0] == destination[1] &&
        invert_source == invert_destination) {
        uint32_t combined = htonl((uint32_t)destination[0] | ((uint32_t)source[0] << 16));
        payload(e, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4);
        cmp(e, cmp_op(invert_source), &combined, 4);
        return;
    }
    if (source[0] || source[1] < 0xFFFF) {
        payload(e, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
        port_range(e, source[0], source[1], invert_source);
    }
    if (destination[0] || destination[1] < 0xFFFF) {
        payload(e, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
        port_range(e, destination[0], destination[1], invert_destination);
    }
}

static void compat(struct encoder *e, const char *kind, const char *name, uint8_t revision, const void *info, size_t size) {
    struct expression x = expression(e, kind);
    // NFTA_MATCH_* and NFTA_TARGET_* number name, revision and info alike.
    put_string(e, NFTA_MATCH_NAME, name);
    put_u32(e, NFTA_MATCH_REV, revision);
    put(e, NFTA_MATCH_INFO, info, size);
    expression_end(e, x);
}

static int match(struct encoder *e, const struct natsync_match *m, int family) {
    switch (m->kind) {
    case NATSYNC_MATCH_TCP:
    case NATSYNC_MATCH_UDP:
        // `-m tcp` with no port stays a compat match (iptables' tcp_all_zero, udp_all_zero).
        if (m->flags & (NATSYNC_MF_HAS_SOURCE | NATSYNC_MF_HAS_DEST)) {
            ports(e, m);
            return 0;
        }
        break;
    case NATSYNC_MATCH_MARK: {
        meta(e, NFT_META_MARK);
        if (m->mask != 0xFFFFFFFF) bitwise(e, &m->mask, 4);
        cmp(e, cmp_op(m->flags & NATSYNC_MF_INVERT), &m->value, 4);
        return 0;
    }
    default:
        break;
    }
    size_t payload_size = natsync_match_payload_size(m);
    if (payload_size == 0) return -1;
    union {
        struct xt_entry_match header;
        uint8_t bytes[512];
    } buffer;
    size_t size = natsync_match_size(payload_size);
    if (size > sizeof(buffer)) return -1;
    memset(&buffer, 0, size);
    buffer.header.u.match_size = (uint16_t)size;
    if (natsync_encode_match(&buffer.header, m, family) != 0) return -1;
    // Fields the kernel ignores, as iptables' extensions leave them (the legacy tables hold
    // natsync's own values, which the in-place compare there relies on).
    switch (m->kind) {
    case NATSYNC_MATCH_STATISTIC: {
        // libxt_statistic sets nth.count = every - packet whatever the mode; `every` shares the
        // probability's bytes, so the payload carries the probability twice.
        struct xt_statistic_info *info = (struct xt_statistic_info *)buffer.header.data;
        info->u.nth.count = info->u.random.probability;
        break;
    }
    case NATSYNC_MATCH_RECENT: {
        // libxt_recent fills the whole mask, whichever the family.
        struct xt_recent_mtinfo_v1 *info = (struct xt_recent_mtinfo_v1 *)buffer.header.data;
        memset(&info->mask, 0xFF, sizeof(info->mask));
        break;
    }
    case NATSYNC_MATCH_SCTP: {
        // libxt_sctp leaves a range not given at 0-0 and marks every flag slot unused (-1).
        struct xt_sctp_info *info = (struct xt_sctp_info *)buffer.header.data;
        if (!(m->flags & NATSYNC_MF_HAS_SOURCE)) memset(info->spts, 0, sizeof(info->spts));
        if (!(m->flags & NATSYNC_MF_HAS_DEST)) memset(info->dpts, 0, sizeof(info->dpts));
        for (int i = 0; i < XT_NUM_SCTP_FLAGS; i++) info->flag_info[i].chunktype = 0xFF;
        break;
    }
    default:
        break;
    }
    compat(e, "match", buffer.header.u.user.name, buffer.header.u.user.revision, buffer.header.data,
           size - XT_ALIGN(sizeof(struct xt_entry_match)));
    return 0;
}

static void verdict(struct encoder *e, int32_t code, const char *chain) {
    struct expression x = expression(e, "immediate");
    put_u32(e, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    size_t data = begin(e, NFTA_IMMEDIATE_DATA);
    size_t nest = begin(e, NFTA_DATA_VERDICT);
    put_u32(e, NFTA_VERDICT_CODE, (uint32_t)code);
    if (chain != NULL) put_string(e, NFTA_VERDICT_CHAIN, chain);
    end(e, nest);
    end(e, data);
    expression_end(e, x);
}

static int target(struct encoder *e, const struct natsync_rule *rule, int family) {
    switch (rule->target) {
    case NATSYNC_TARGET_NONE: return 0;
    case NATSYNC_TARGET_ACCEPT: verdict(e, NF_ACCEPT, NULL); return 0;
    case NATSYNC_TARGET_DROP: verdict(e, NF_DROP, NULL); return 0;
    case NATSYNC_TARGET_RETURN: verdict(e, NFT_RETURN, NULL); return 0;
    case NATSYNC_TARGET_JUMP:
    case NATSYNC_TARGET_GOTO: {
        char chain[NATSYNC_CHAIN_SIZE + 1];
        memcpy(chain, rule->chain, NATSYNC_CHAIN_SIZE);
        chain[NATSYNC_CHAIN_SIZE] = '\0';
        verdict(e, rule->target == NATSYNC_TARGET_GOTO ? NFT_GOTO : NFT_JUMP, chain);
        return 0;
    }
    default: break;
    }
    union {
        struct xt_entry_target header;
        uint8_t bytes[256];
    } buffer;
    size_t size = family == 6 ? natsync6_encode_xt_target(rule, &buffer.header, sizeof(buffer))
                              : natsync4_encode_xt_target(rule, &buffer.header, sizeof(buffer));
    if (size == 0) return -1;
    compat(e, "target", buffer.header.u.user.name, buffer.header.u.user.revision, buffer.header.data,
           size - XT_ALIGN(sizeof(struct xt_entry_target)));
    return 0;
}

long natsync_nft_encode_rule(const struct natsync_rule *rule, int family, uint8_t *buffer, size_t capacity) {
    struct encoder e = {buffer, 0, capacity, 0};
    size_t address_size = family == 6 ? 16 : 4;
    if (rule->in_iface[0] != '\0') interface(&e, NFT_META_IIFNAME, rule->in_iface, rule->flags & NATSYNC_RF_INVERT_IN);
    if (rule->out_iface[0] != '\0') interface(&e, NFT_META_OIFNAME, rule->out_iface, rule->flags & NATSYNC_RF_INVERT_OUT);
    if (rule->protocol != 0) {
        meta(&e, NFT_META_L4PROTO);
        uint8_t protocol = (uint8_t)rule->protocol;
        cmp(&e, cmp_op(rule->flags & NATSYNC_RF_INVERT_PROTO), &protocol, 1);
    }
    // The addresses' offsets in struct iphdr and struct ip6_hdr.
    uint32_t source_offset = family == 6 ? 8 : 12, destination_offset = family == 6 ? 24 : 16;
    static const uint8_t zero[16];
    if (memcmp(rule->source_mask, zero, address_size) != 0 || (rule->flags & NATSYNC_RF_INVERT_SOURCE)) {
        address(&e, source_offset, rule->source, rule->source_mask, address_size, rule->flags & NATSYNC_RF_INVERT_SOURCE);
    }
    if (memcmp(rule->dest_mask, zero, address_size) != 0 || (rule->flags & NATSYNC_RF_INVERT_DEST)) {
        address(&e, destination_offset, rule->dest, rule->dest_mask, address_size, rule->flags & NATSYNC_RF_INVERT_DEST);
    }
    if (rule->match_count > NATSYNC_MAX_MATCHES) {
        natsync_set_error(EINVAL, "too many matches");
        return -1;
    }
    for (uint32_t i = 0; i < rule->match_count; i++) {
        if (match(&e, &rule->matches[i], family) != 0) {
            natsync_set_error(EINVAL, "a match that cannot be encoded");
            return -1;
        }
    }
    // Before the verdict, or nf_tables would count every packet that reaches the rule.
    struct expression counter = expression(&e, "counter");
    uint64_t none = 0;
    put(&e, NFTA_COUNTER_BYTES, &none, sizeof(none));
    put(&e, NFTA_COUNTER_PACKETS, &none, sizeof(none));
    expression_end(&e, counter);
    if (target(&e, rule, family) != 0) {
        natsync_set_error(EINVAL, "a target that cannot be encoded");
        return -1;
    }
    if (e.failed) {
        natsync_set_error(ENOSPC, "the rule's expressions do not fit");
        return -1;
    }
    return (long)e.length;
}
