// Extension matches, encoded and decoded the same way for IPv4 and IPv6 entries: the kernel's
// xt_* payloads are family-independent except for the recent match's address mask.
#define _GNU_SOURCE
#include <netinet/in.h>
#include <net/if.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_sctp.h>

#include <stdio.h>
#include <string.h>

#include "shim_internal.h"

_Static_assert(sizeof(struct xt_entry_match) == 32, "xt_entry_match");
_Static_assert(sizeof(struct xt_comment_info) == 256, "xt_comment_info");
_Static_assert(sizeof(struct xt_statistic_info) == 24, "xt_statistic_info");
_Static_assert(sizeof(struct xt_recent_mtinfo_v1) == 228, "xt_recent_mtinfo_v1");
_Static_assert(NATSYNC_TEXT_SIZE == XT_MAX_COMMENT_LEN, "comment size");

size_t natsync_match_size(size_t payload) {
    return XT_ALIGN(sizeof(struct xt_entry_match)) + XT_ALIGN(payload);
}

size_t natsync_match_payload_size(const struct natsync_match *m) {
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

void natsync_set_interface(char *name, unsigned char *mask, const char *value) {
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

int natsync_encode_match(struct xt_entry_match *em, const struct natsync_match *m, int family) {
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
        // The full source mask, as iptables writes it for each family.
        if (family == 6) memset(&info->mask.in6, 0xFF, sizeof(info->mask.in6));
        else memset(&info->mask.in, 0xFF, sizeof(info->mask.in));
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
int natsync_decode_match(const struct xt_entry_match *em, struct natsync_match *m, int family) {
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
        union nf_inet_addr full;
        memset(&full, 0, sizeof(full));
        if (family == 6) memset(&full.in6, 0xFF, sizeof(full.in6));
        else memset(&full.in, 0xFF, sizeof(full.in));
        if ((info->check_set & ~known) || info->invert || info->hit_count || info->side != XT_RECENT_SOURCE
            || memcmp(&info->mask, &full, sizeof(full)) != 0)
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
