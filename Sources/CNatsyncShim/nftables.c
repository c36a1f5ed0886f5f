// nf_tables over netlink (libmnl, with libnftnl's message headers): the ruleset generation, a
// table's chains, and a dump of its rules with each rule's expressions as the kernel holds them. Netlink
// messages are of variable length and nested, so they are taken apart here; Swift gets each
// rule's chain, handle and the expressions' raw attribute bytes.
// glibc's network headers before the kernel's, which then leave out what glibc defined.
#include <arpa/inet.h>
#include <endian.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim_internal.h"

/// A netlink socket of the calling thread's namespace, bound; NULL with the error set.
static struct mnl_socket *open_socket(void) {
    struct mnl_socket *socket = mnl_socket_open(NETLINK_NETFILTER);
    if (socket == NULL) {
        natsync_set_error(errno, "cannot open a netfilter netlink socket");
        return NULL;
    }
    if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
        natsync_set_error(errno, "cannot bind the netfilter netlink socket");
        mnl_socket_close(socket);
        return NULL;
    }
    return socket;
}

/// Sends `request`, receives every answer until the kernel says done, then runs `callback` on
/// each; 0 or -1. The answers are all received before any is looked at: the kernel fills the next
/// part of a dump only when the last one was read, and a commit by anyone in between marks the
/// dump interrupted (NLM_F_DUMP_INTR, reported as EINTR), so the dump must not wait on Swift.
static int exchange(struct mnl_socket *socket, struct nlmsghdr *request, mnl_cb_t callback, void *data, const char *what) {
    enum { chunk = 65536 };
    uint32_t port = mnl_socket_get_portid(socket);
    uint32_t sequence = request->nlmsg_seq;
    if (mnl_socket_sendto(socket, request, request->nlmsg_len) < 0) {
        natsync_set_error(errno, what);
        return -1;
    }
    char *buffer = NULL;
    size_t length = 0, capacity = 0;
    // Where each received part starts; a part holds whole messages.
    size_t *parts = NULL;
    size_t count = 0, room = 0;
    int result = -1;
    for (;;) {
        if (capacity - length < chunk) {
            capacity = capacity * 2 + chunk;
            char *grown = realloc(buffer, capacity);
            if (grown == NULL) {
                natsync_set_error(ENOMEM, what);
                goto out;
            }
            buffer = grown;
        }
        if (count == room) {
            room = room * 2 + 16;
            size_t *grown = realloc(parts, room * sizeof(*parts));
            if (grown == NULL) {
                natsync_set_error(ENOMEM, what);
                goto out;
            }
            parts = grown;
        }
        ssize_t received = mnl_socket_recvfrom(socket, buffer + length, chunk);
        if (received < 0) {
            natsync_set_error(errno, what);
            goto out;
        }
        parts[count++] = length;
        // A first pass without callbacks finds the end, an error or an interrupted dump.
        errno = 0;
        int status = mnl_cb_run(buffer + length, (size_t)received, sequence, port, NULL, NULL);
        length += (size_t)received;
        if (status < 0) {
            natsync_set_error(errno, what);
            goto out;
        }
        if (status == MNL_CB_STOP) break;
    }
    for (size_t part = 0; part < count; part++) {
        size_t end = part + 1 < count ? parts[part + 1] : length;
        errno = 0;
        if (mnl_cb_run(buffer + parts[part], end - parts[part], sequence, port, callback, data) < 0) {
            // A visitor that stops has set its own error.
            if (errno != 0) natsync_set_error(errno, what);
            goto out;
        }
    }
    result = 0;
out:
    free(parts);
    free(buffer);
    return result;
}

static int generation_answer(const struct nlmsghdr *message, void *data) {
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(attribute) == NFTA_GEN_ID && mnl_attr_validate(attribute, MNL_TYPE_U32) >= 0) {
            *(uint32_t *)data = ntohl(mnl_attr_get_u32(attribute));
        }
    }
    return MNL_CB_OK;
}

int natsync_nft_generation(uint32_t *generation) {
    struct mnl_socket *socket = open_socket();
    if (socket == NULL) return -1;
    char buffer[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *request = nftnl_nlmsg_build_hdr(buffer, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, (uint32_t)time(NULL));
    *generation = 0;
    errno = 0;
    int result = exchange(socket, request, generation_answer, generation, "NFT_MSG_GETGEN");
    mnl_socket_close(socket);
    return result;
}

struct rule_dump {
    natsync_nft_rule_visitor visit;
    void *context;
};

static int rule_answer(const struct nlmsghdr *message, void *data) {
    struct rule_dump *dump = data;
    struct natsync_nft_rule_view view;
    memset(&view, 0, sizeof(view));
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        switch (mnl_attr_get_type(attribute)) {
        case NFTA_RULE_CHAIN:
            if (mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0) view.chain = mnl_attr_get_str(attribute);
            break;
        case NFTA_RULE_HANDLE:
            if (mnl_attr_validate(attribute, MNL_TYPE_U64) >= 0) view.handle = be64toh(mnl_attr_get_u64(attribute));
            break;
        case NFTA_RULE_EXPRESSIONS:
            view.expressions = mnl_attr_get_payload(attribute);
            view.expressions_length = mnl_attr_get_payload_len(attribute);
            break;
        case NFTA_RULE_USERDATA:
            view.userdata = mnl_attr_get_payload(attribute);
            view.userdata_length = mnl_attr_get_payload_len(attribute);
            break;
        default:
            break;
        }
    }
    if (view.chain == NULL) return MNL_CB_OK;
    if (dump->visit(dump->context, &view) != 0) {
        natsync_set_error(ECANCELED, "the rule dump was stopped");
        errno = 0;
        return MNL_CB_ERROR;
    }
    return MNL_CB_OK;
}

/// One request of `type` for `family` on `socket`, naming a table and a chain when given, its
/// answers passed to `callback`; 0 or -1.
static int request(
    struct mnl_socket *socket, uint16_t type, int family, uint16_t flags, const char *table, const char *chain,
    int (*callback)(const struct nlmsghdr *, void *), void *data, const char *what) {
    char buffer[MNL_SOCKET_BUFFER_SIZE];
    uint16_t protocol = family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    struct nlmsghdr *message = nftnl_nlmsg_build_hdr(buffer, type, protocol, flags, (uint32_t)time(NULL));
    // Each message type numbers its attributes: NFTA_TABLE_NAME, NFTA_CHAIN_TABLE and
    // NFTA_RULE_TABLE are all 1, but a chain's name is NFTA_CHAIN_NAME (3) and a rule's NFTA_RULE_CHAIN (2).
    if (table != NULL) mnl_attr_put_strz(message, NFTA_RULE_TABLE, table);
    if (chain != NULL) mnl_attr_put_strz(message, type == NFT_MSG_GETCHAIN ? NFTA_CHAIN_NAME : NFTA_RULE_CHAIN, chain);
    errno = 0;
    return exchange(socket, message, callback, data, what);
}

int natsync_nft_dump(
    int family, uint16_t type, const char *table, const char *chain, int (*callback)(const struct nlmsghdr *, void *), void *data,
    const char *what) {
    struct mnl_socket *socket = open_socket();
    if (socket == NULL) return -1;
    int result = request(socket, type, family, NLM_F_DUMP, table, chain, callback, data, what);
    mnl_socket_close(socket);
    return result;
}

int natsync_nft_dump_rules(
    int family, const char *table, const char *const *chains, size_t count, natsync_nft_rule_visitor visit, void *context) {
    struct rule_dump dump = {visit, context};
    if (count == 0) return natsync_nft_dump(family, NFT_MSG_GETRULE, table, NULL, rule_answer, &dump, "NFT_MSG_GETRULE");
    // One dump per chain on one socket: the kernel walks a table's rules from the start for each
    // part of a dump of the whole table, which grows with the square of its size.
    struct mnl_socket *socket = open_socket();
    if (socket == NULL) return -1;
    int result = 0;
    for (size_t i = 0; i < count && result == 0; i++) {
        result = request(socket, NFT_MSG_GETRULE, family, NLM_F_DUMP, table, chains[i], rule_answer, &dump, "NFT_MSG_GETRULE");
    }
    mnl_socket_close(socket);
    return result;
}

struct lookup {
    int found;
    int base;
};

static int lookup_answer(const struct nlmsghdr *message, void *data) {
    struct lookup *lookup = data;
    lookup->found = 1;
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(attribute) == NFTA_CHAIN_HOOK) lookup->base = 1;
    }
    return MNL_CB_OK;
}

int natsync_nft_lookup(int family, const char *table, const char *const *chains, size_t count, uint8_t *kinds) {
    struct mnl_socket *socket = open_socket();
    if (socket == NULL) return -1;
    int result = 0;
    for (size_t i = 0; i <= count; i++) {
        // The table itself last (index count), then each chain.
        const char *chain = i < count ? chains[i] : NULL;
        struct lookup lookup = {0, 0};
        uint16_t type = chain == NULL ? NFT_MSG_GETTABLE : NFT_MSG_GETCHAIN;
        const char *what = chain == NULL ? "NFT_MSG_GETTABLE" : "NFT_MSG_GETCHAIN";
        if (request(socket, type, family, NLM_F_ACK, table, chain, lookup_answer, &lookup, what) != 0) {
            if (natsync_last_errno() != ENOENT) {
                result = -1;
                break;
            }
            lookup.found = 0;
        }
        kinds[i] = (uint8_t)(lookup.found ? (lookup.base ? 2 : 1) : 0);
    }
    mnl_socket_close(socket);
    return result;
}

struct chain_dump {
    natsync_nft_chain_visitor visit;
    void *context;
};

static int chain_answer(const struct nlmsghdr *message, void *data) {
    struct chain_dump *dump = data;
    const char *table = NULL, *name = NULL;
    int base = 0;
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        switch (mnl_attr_get_type(attribute)) {
        case NFTA_CHAIN_TABLE:
            if (mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0) table = mnl_attr_get_str(attribute);
            break;
        case NFTA_CHAIN_NAME:
            if (mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0) name = mnl_attr_get_str(attribute);
            break;
        case NFTA_CHAIN_HOOK:
            base = 1;
            break;
        default:
            break;
        }
    }
    if (table == NULL || name == NULL) return MNL_CB_OK;
    dump->visit(dump->context, table, name, base);
    return MNL_CB_OK;
}

int natsync_nft_dump_chains(int family, natsync_nft_chain_visitor visit, void *context) {
    struct chain_dump dump = {visit, context};
    return natsync_nft_dump(family, NFT_MSG_GETCHAIN, NULL, NULL, chain_answer, &dump, "NFT_MSG_GETCHAIN");
}
