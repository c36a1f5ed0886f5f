// nf_tables over netlink (libmnl, with libnftnl's message headers): the ruleset generation, and
// a dump of one table's rules with each rule's expressions as the kernel holds them. Netlink
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

/// Sends `request` and runs `callback` on every answer until the kernel says done; 0 or -1.
static int exchange(struct mnl_socket *socket, struct nlmsghdr *request, mnl_cb_t callback, void *data, const char *what) {
    uint32_t port = mnl_socket_get_portid(socket);
    uint32_t sequence = request->nlmsg_seq;
    if (mnl_socket_sendto(socket, request, request->nlmsg_len) < 0) {
        natsync_set_error(errno, what);
        return -1;
    }
    char *buffer = malloc(MNL_SOCKET_BUFFER_SIZE * 4);
    if (buffer == NULL) {
        natsync_set_error(ENOMEM, what);
        return -1;
    }
    int result;
    for (;;) {
        ssize_t received = mnl_socket_recvfrom(socket, buffer, MNL_SOCKET_BUFFER_SIZE * 4);
        if (received < 0) {
            natsync_set_error(errno, what);
            result = -1;
            break;
        }
        result = mnl_cb_run(buffer, (size_t)received, sequence, port, callback, data);
        if (result < 0) {
            // A visitor that stops has set its own error; the kernel's refusal sets errno.
            if (errno != 0) natsync_set_error(errno, what);
            result = -1;
            break;
        }
        if (result == MNL_CB_STOP) {
            result = 0;
            break;
        }
    }
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

int natsync_nft_dump_rules(int family, const char *table, natsync_nft_rule_visitor visit, void *context) {
    struct mnl_socket *socket = open_socket();
    if (socket == NULL) return -1;
    char buffer[MNL_SOCKET_BUFFER_SIZE];
    uint16_t protocol = family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    struct nlmsghdr *request = nftnl_nlmsg_build_hdr(buffer, NFT_MSG_GETRULE, protocol, NLM_F_DUMP, (uint32_t)time(NULL));
    mnl_attr_put_strz(request, NFTA_RULE_TABLE, table);
    struct rule_dump dump = {visit, context};
    errno = 0;
    int result = exchange(socket, request, rule_answer, &dump, "NFT_MSG_GETRULE");
    mnl_socket_close(socket);
    return result;
}
