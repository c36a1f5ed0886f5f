// natsync's C shim over libnetfilter_conntrack: one dump, a selector per UDP flow, then deletes.
// The nf_conntrack objects the library hands out are opaque and freed by it unless stolen, so
// they never leave C; Swift sees flat natsync_flow values.
#include <netinet/in.h>
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>
#include <unistd.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "natsync_shim.h"

void natsync_set_error(int code, const char *message);

struct dump_state {
    int family; // AF_INET or AF_INET6
    natsync_flow_selector select;
    void *context;
    struct nf_conntrack **selected;
    size_t count, capacity;
    uint64_t visited;
    int out_of_memory;
    int stopped; // the selector asked to stop the dump
};

// Selects `ct` if it is a UDP flow the selector wants: 1 when selected, 0 when not, negative when
// the selector stops the dump.
static int consider(struct dump_state *state, const struct nf_conntrack *ct) {
    if (nfct_get_attr_u8(ct, ATTR_L3PROTO) != state->family || nfct_get_attr_u8(ct, ATTR_L4PROTO) != IPPROTO_UDP) return 0;
    struct natsync_flow flow;
    memset(&flow, 0, sizeof(flow));
    flow.protocol = IPPROTO_UDP;
    if (state->family == AF_INET6) {
        flow.family = 6;
        memcpy(flow.original_source, nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
        memcpy(flow.original_dest, nfct_get_attr(ct, ATTR_ORIG_IPV6_DST), 16);
        memcpy(flow.reply_source, nfct_get_attr(ct, ATTR_REPL_IPV6_SRC), 16);
        memcpy(flow.reply_dest, nfct_get_attr(ct, ATTR_REPL_IPV6_DST), 16);
    } else {
        flow.family = 4;
        uint32_t address;
        address = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC); memcpy(flow.original_source, &address, 4);
        address = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST); memcpy(flow.original_dest, &address, 4);
        address = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC); memcpy(flow.reply_source, &address, 4);
        address = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_DST); memcpy(flow.reply_dest, &address, 4);
    }
    flow.original_source_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
    flow.original_dest_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
    int chosen = state->select(&flow, state->context);
    return chosen < 0 ? -1 : chosen != 0;
}

static int keep(struct dump_state *state, struct nf_conntrack *ct) {
    if (state->count == state->capacity) {
        size_t capacity = state->capacity ? state->capacity * 2 : 64;
        struct nf_conntrack **grown = realloc(state->selected, capacity * sizeof(*grown));
        if (grown == NULL) {
            state->out_of_memory = 1;
            return -1;
        }
        state->selected = grown;
        state->capacity = capacity;
    }
    state->selected[state->count++] = ct;
    return 0;
}

static int on_flow(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data) {
    (void)type;
    struct dump_state *state = data;
    state->visited++;
    int chosen = consider(state, ct);
    if (chosen < 0) {
        state->stopped = 1;
        return NFCT_CB_STOP;
    }
    if (!chosen) return NFCT_CB_CONTINUE;
    // Stolen: the library does not free it, and NFCT_Q_DESTROY needs its full original tuple.
    return keep(state, ct) == 0 ? NFCT_CB_STOLEN : NFCT_CB_STOP;
}

// Deletes the selected flows (NFCT_Q_DESTROY) and frees them.
static void destroy_selected(struct dump_state *state, struct natsync_conntrack_result *result) {
    struct nfct_handle *destroy = state->count ? nfct_open(CONNTRACK, 0) : NULL;
    for (size_t i = 0; i < state->count; i++) {
        if (destroy == NULL) {
            result->failed++;
        } else if (nfct_query(destroy, NFCT_Q_DESTROY, state->selected[i]) == 0) {
            result->deleted++;
        } else if (errno == ENOENT) {
            result->vanished++;
        } else {
            result->failed++;
        }
        nfct_destroy(state->selected[i]);
    }
    if (destroy) nfct_close(destroy);
    free(state->selected);
    state->selected = NULL;
    state->count = state->capacity = 0;
}

int natsync_conntrack_delete_udp(
    int family, natsync_flow_selector select, void *context, struct natsync_conntrack_result *result) {
    memset(result, 0, sizeof(*result));
    struct dump_state state = {.family = family == 6 ? AF_INET6 : AF_INET, .select = select, .context = context};
    struct nfct_handle *dump = nfct_open(CONNTRACK, 0);
    if (dump == NULL) {
        natsync_set_error(errno, "cannot open a conntrack netlink socket");
        return -1;
    }
    nfct_callback_register(dump, NFCT_T_ALL, on_flow, &state);
    struct nfct_filter_dump *filter = nfct_filter_dump_create();
    if (filter == NULL) {
        nfct_close(dump);
        natsync_set_error(ENOMEM, "out of memory");
        return -1;
    }
    nfct_filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM, (uint8_t)state.family);
    int status = nfct_query(dump, NFCT_Q_DUMP_FILTER, filter);
    int saved = errno;
    nfct_filter_dump_destroy(filter);
    nfct_close(dump);
    result->visited = state.visited;
    result->selected = state.count;
    if (status == -1 || state.out_of_memory || state.stopped) {
        for (size_t i = 0; i < state.count; i++) nfct_destroy(state.selected[i]);
        free(state.selected);
        if (state.stopped) natsync_set_error(ECANCELED, "conntrack dump stopped by the selector");
        else if (state.out_of_memory) natsync_set_error(ENOMEM, "out of memory");
        else natsync_set_error(saved, "conntrack dump failed");
        return -1;
    }
    destroy_selected(&state, result);
    return 0;
}

// The kernel's CTA_FILTER_FLAG bits (net/netfilter/nf_conntrack_netlink.c); not in the UAPI headers.
#define NATSYNC_FILTER_IP_DST (1u << 1)
#define NATSYNC_FILTER_PROTO_NUM (1u << 3)
#define NATSYNC_FILTER_PROTO_DST_PORT (1u << 5)

static void put_u32_attribute(struct nlmsghdr *nlh, uint16_t type, uint32_t value) {
    struct nlattr *attr = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
    attr->nla_type = type;
    attr->nla_len = NLA_HDRLEN + sizeof(value);
    memcpy((char *)attr + NLA_HDRLEN, &value, sizeof(value));
    nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(attr->nla_len);
}

// One filtered dump request: the frontend's original-direction tuple plus CTA_FILTER flags.
static int build_request(char *buffer, size_t size, int family, const struct natsync_frontend *frontend, uint32_t sequence) {
    memset(buffer, 0, size);
    struct nlmsghdr *nlh = (struct nlmsghdr *)buffer;
    nlh->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = sequence;
    struct nfgenmsg *header = NLMSG_DATA(nlh);
    header->nfgen_family = (uint8_t)family;
    header->version = NFNETLINK_V0;
    struct nf_conntrack *ct = nfct_new();
    if (ct == NULL) return -1;
    nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)family);
    nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_UDP);
    nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(frontend->port));
    uint32_t flags = NATSYNC_FILTER_PROTO_NUM | NATSYNC_FILTER_PROTO_DST_PORT;
    // IPv6 flows are filtered by port only: kernels before 6.x invert the CTA_FILTER comparison
    // of IPv6 addresses (!ipv6_addr_cmp), so an address filter would return every flow but the
    // wanted ones. The selector checks the address either way.
    if (frontend->has_address && family == AF_INET) {
        uint32_t address;
        memcpy(&address, frontend->address, 4);
        nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, address);
        flags |= NATSYNC_FILTER_IP_DST;
    }
    int status = nfct_nlmsg_build(nlh, ct);
    nfct_destroy(ct);
    if (status < 0) return -1;
    struct nlattr *filter = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
    filter->nla_type = CTA_FILTER | NLA_F_NESTED;
    nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_HDRLEN;
    put_u32_attribute(nlh, CTA_FILTER_ORIG_FLAGS, flags);
    put_u32_attribute(nlh, CTA_FILTER_REPLY_FLAGS, 0);
    filter->nla_len = (uint16_t)((char *)nlh + nlh->nlmsg_len - (char *)filter);
    return 0;
}

int natsync_conntrack_delete_udp_frontends(
    int family, const struct natsync_frontend *frontends, size_t count, natsync_flow_selector select, void *context,
    struct natsync_conntrack_result *result) {
    memset(result, 0, sizeof(*result));
    struct dump_state state = {.family = family == 6 ? AF_INET6 : AF_INET, .select = select, .context = context};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        natsync_set_error(errno, "cannot open a netfilter netlink socket");
        return -1;
    }
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
        natsync_set_error(errno, "cannot bind a netfilter netlink socket");
        close(fd);
        return -1;
    }
    size_t buffer_size = 1 << 16;
    char *buffer = malloc(buffer_size);
    struct nf_conntrack *scratch = nfct_new();
    int outcome = 0;
    if (buffer == NULL || scratch == NULL) {
        natsync_set_error(ENOMEM, "out of memory");
        outcome = -1;
    }
    for (size_t index = 0; outcome == 0 && index < count; index++) {
        uint32_t sequence = (uint32_t)index + 1;
        if (build_request(buffer, buffer_size, state.family, &frontends[index], sequence) != 0) {
            natsync_set_error(EINVAL, "cannot build a conntrack dump request");
            outcome = -1;
            break;
        }
        struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        struct nlmsghdr *request = (struct nlmsghdr *)buffer;
        if (sendto(fd, buffer, request->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
            natsync_set_error(errno, "conntrack dump request failed");
            outcome = -1;
            break;
        }
        int done = 0;
        while (!done && outcome == 0) {
            ssize_t received = recv(fd, buffer, buffer_size, 0);
            if (received < 0) {
                if (errno == EINTR) continue;
                natsync_set_error(errno, "conntrack dump failed");
                outcome = -1;
                break;
            }
            for (struct nlmsghdr *nlh = (struct nlmsghdr *)buffer; NLMSG_OK(nlh, (size_t)received);
                 nlh = NLMSG_NEXT(nlh, received)) {
                if (nlh->nlmsg_type == NLMSG_DONE) {
                    done = 1;
                    break;
                }
                if (nlh->nlmsg_type == NLMSG_ERROR) {
                    const struct nlmsgerr *error = NLMSG_DATA(nlh);
                    if (error->error == 0) continue;
                    // An old kernel rejects CTA_FILTER: tell the caller to use the full dump.
                    if (index == 0 && (error->error == -EINVAL || error->error == -EOPNOTSUPP)) outcome = 1;
                    else {
                        natsync_set_error(-error->error, "conntrack dump failed");
                        outcome = -1;
                    }
                    break;
                }
                state.visited++;
                if (nfct_nlmsg_parse(nlh, scratch) < 0) continue;
                int chosen = consider(&state, scratch);
                if (chosen < 0) {
                    natsync_set_error(ECANCELED, "conntrack dump stopped by the selector");
                    outcome = -1;
                    break;
                }
                if (!chosen) continue;
                struct nf_conntrack *copy = nfct_clone(scratch);
                if (copy == NULL || keep(&state, copy) != 0) {
                    if (copy) nfct_destroy(copy);
                    natsync_set_error(ENOMEM, "out of memory");
                    outcome = -1;
                    break;
                }
            }
        }
    }
    close(fd);
    free(buffer);
    if (scratch) nfct_destroy(scratch);
    result->visited = state.visited;
    result->selected = state.count;
    if (outcome != 0) {
        for (size_t i = 0; i < state.count; i++) nfct_destroy(state.selected[i]);
        free(state.selected);
        return outcome;
    }
    destroy_selected(&state, result);
    return 0;
}
