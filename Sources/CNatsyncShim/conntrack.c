// natsync's C shim over libnetfilter_conntrack: one dump, a selector per UDP flow, then deletes.
// The nf_conntrack objects the library hands out are opaque and freed by it unless stolen, so
// they never leave C; Swift sees flat natsync_flow values.
#include <netinet/in.h>
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "natsync_shim.h"

void natsync_set_error(int code, const char *message);

struct dump_state {
    natsync_flow_selector select;
    void *context;
    struct nf_conntrack **selected;
    size_t count, capacity;
    uint64_t visited;
    int out_of_memory;
};

static int on_flow(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data) {
    (void)type;
    struct dump_state *state = data;
    state->visited++;
    if (nfct_get_attr_u8(ct, ATTR_L3PROTO) != AF_INET || nfct_get_attr_u8(ct, ATTR_L4PROTO) != IPPROTO_UDP)
        return NFCT_CB_CONTINUE;
    struct natsync_flow flow;
    memset(&flow, 0, sizeof(flow));
    flow.protocol = IPPROTO_UDP;
    uint32_t address;
    address = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC); memcpy(flow.original_source, &address, 4);
    address = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST); memcpy(flow.original_dest, &address, 4);
    address = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC); memcpy(flow.reply_source, &address, 4);
    address = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_DST); memcpy(flow.reply_dest, &address, 4);
    flow.original_source_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
    flow.original_dest_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
    if (!state->select(&flow, state->context)) return NFCT_CB_CONTINUE;
    if (state->count == state->capacity) {
        size_t capacity = state->capacity ? state->capacity * 2 : 64;
        struct nf_conntrack **grown = realloc(state->selected, capacity * sizeof(*grown));
        if (grown == NULL) {
            state->out_of_memory = 1;
            return NFCT_CB_STOP;
        }
        state->selected = grown;
        state->capacity = capacity;
    }
    // Stolen: the library does not free it, and NFCT_Q_DESTROY needs its full original tuple.
    state->selected[state->count++] = ct;
    return NFCT_CB_STOLEN;
}

int natsync_conntrack_delete_udp(natsync_flow_selector select, void *context, struct natsync_conntrack_result *result) {
    memset(result, 0, sizeof(*result));
    struct dump_state state = {.select = select, .context = context};
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
    nfct_filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM, AF_INET);
    int status = nfct_query(dump, NFCT_Q_DUMP_FILTER, filter);
    int saved = errno;
    nfct_filter_dump_destroy(filter);
    nfct_close(dump);
    result->visited = state.visited;
    result->selected = state.count;
    if (status == -1 || state.out_of_memory) {
        for (size_t i = 0; i < state.count; i++) nfct_destroy(state.selected[i]);
        free(state.selected);
        natsync_set_error(state.out_of_memory ? ENOMEM : saved, state.out_of_memory ? "out of memory" : "conntrack dump failed");
        return -1;
    }
    struct nfct_handle *destroy = state.count ? nfct_open(CONNTRACK, 0) : NULL;
    for (size_t i = 0; i < state.count; i++) {
        if (destroy == NULL) {
            result->failed++;
        } else if (nfct_query(destroy, NFCT_Q_DESTROY, state.selected[i]) == 0) {
            result->deleted++;
        } else if (errno == ENOENT) {
            result->vanished++;
        } else {
            result->failed++;
        }
        nfct_destroy(state.selected[i]);
    }
    if (destroy) nfct_close(destroy);
    free(state.selected);
    return 0;
}
