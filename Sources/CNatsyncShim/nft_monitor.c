// nf_tables events (the NFNLGRP_NFTABLES multicast group, what `nft monitor` reads): every
// commit in the namespace, anyone's, as one message per table, chain or rule it touched and a
// closing NFT_MSG_NEWGEN with the generation it made. A sync looks at those that came during its
// read, before it sends, to tell whether they touched anything it read.
#include <arpa/inet.h>
#include <endian.h>

#include <libmnl/libmnl.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shim_internal.h"

struct natsync_nft_monitor {
    struct mnl_socket *socket;
    char *buffer;
};

enum { monitor_buffer = 1 << 20 };

natsync_nft_monitor *natsync_nft_monitor_open(void) {
    natsync_nft_monitor *monitor = calloc(1, sizeof(*monitor));
    if (monitor != NULL) monitor->buffer = malloc(monitor_buffer);
    if (monitor == NULL || monitor->buffer == NULL) {
        if (monitor != NULL) free(monitor);
        natsync_set_error(ENOMEM, "cannot allocate an nf_tables monitor");
        return NULL;
    }
    monitor->socket = mnl_socket_open(NETLINK_NETFILTER);
    if (monitor->socket == NULL) {
        natsync_set_error(errno, "cannot open a netfilter netlink socket");
        natsync_nft_monitor_close(monitor);
        return NULL;
    }
    // Room for a large foreign commit's events; past it the kernel drops them and says so
    // (ENOBUFS), and the sync reads the tables again.
    int receive = 16 << 20;
    if (setsockopt(mnl_socket_get_fd(monitor->socket), SOL_SOCKET, SO_RCVBUFFORCE, &receive, sizeof(receive)) < 0) {
        (void)setsockopt(mnl_socket_get_fd(monitor->socket), SOL_SOCKET, SO_RCVBUF, &receive, sizeof(receive));
    }
    if (mnl_socket_bind(monitor->socket, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
        natsync_set_error(errno, "cannot join the nf_tables event group");
        natsync_nft_monitor_close(monitor);
        return NULL;
    }
    return monitor;
}

void natsync_nft_monitor_close(natsync_nft_monitor *monitor) {
    if (monitor == NULL) return;
    if (monitor->socket != NULL) mnl_socket_close(monitor->socket);
    free(monitor->buffer);
    free(monitor);
}

/// The event of one message: its names, handle and expressions, or for NFT_MSG_NEWGEN the
/// generation. Every object type numbers its table attribute 1.
static void read_event(const struct nlmsghdr *message, struct natsync_nft_event *event) {
    memset(event, 0, sizeof(*event));
    event->type = NFNL_MSG_TYPE(message->nlmsg_type);
    const struct nfgenmsg *header = mnl_nlmsg_get_payload(message);
    event->family = header->nfgen_family == NFPROTO_IPV4 ? 4 : header->nfgen_family == NFPROTO_IPV6 ? 6 : 0;
    event->table = "";
    event->chain = "";
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        uint16_t type = mnl_attr_get_type(attribute);
        if (event->type == NFT_MSG_NEWGEN) {
            if (type == NFTA_GEN_ID && mnl_attr_validate(attribute, MNL_TYPE_U32) >= 0) {
                event->generation = ntohl(mnl_attr_get_u32(attribute));
            }
            continue;
        }
        int is_string = mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0;
        if (type == 1 && is_string) event->table = mnl_attr_get_str(attribute);
        switch (event->type) {
        case NFT_MSG_NEWCHAIN:
        case NFT_MSG_DELCHAIN:
            if (type == NFTA_CHAIN_NAME && is_string) event->chain = mnl_attr_get_str(attribute);
            break;
        case NFT_MSG_NEWRULE:
        case NFT_MSG_DELRULE:
            if (type == NFTA_RULE_CHAIN && is_string) event->chain = mnl_attr_get_str(attribute);
            if (type == NFTA_RULE_HANDLE && mnl_attr_validate(attribute, MNL_TYPE_U64) >= 0) {
                event->handle = be64toh(mnl_attr_get_u64(attribute));
            }
            if (type == NFTA_RULE_EXPRESSIONS) {
                event->expressions = mnl_attr_get_payload(attribute);
                event->expressions_length = mnl_attr_get_payload_len(attribute);
            }
            break;
        default:
            break;
        }
    }
}

int natsync_nft_monitor_drain(natsync_nft_monitor *monitor, natsync_nft_event_visitor visit, void *context) {
    int fd = mnl_socket_get_fd(monitor->socket);
    for (;;) {
        ssize_t received = recv(fd, monitor->buffer, monitor_buffer, MSG_DONTWAIT);
        if (received < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            natsync_set_error(errno, errno == ENOBUFS ? "nf_tables events were lost" : "cannot read nf_tables events");
            return -1;
        }
        int length = (int)received;
        for (const struct nlmsghdr *message = (const struct nlmsghdr *)monitor->buffer; mnl_nlmsg_ok(message, length);
             message = mnl_nlmsg_next(message, &length)) {
            if (NFNL_SUBSYS_ID(message->nlmsg_type) != NFNL_SUBSYS_NFTABLES) continue;
            if (message->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct nfgenmsg)) continue;
            struct natsync_nft_event event;
            read_event(message, &event);
            visit(context, &event);
        }
    }
}
