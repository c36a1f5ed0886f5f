// One nf_tables transaction: a netlink batch of table, chain and rule messages sent in one
// sendmsg and applied by the kernel all or nothing. The batch carries the ruleset generation it
// was planned against (NFNL_BATCH_GENID), so a commit by anyone in between makes the kernel refuse
// it whole with ERESTART.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim_internal.h"

struct natsync_nft_batch {
    char *buffer;
    size_t length;
    size_t capacity;
    uint32_t first_sequence;
    /// Messages between the batch's begin and end.
    size_t messages;
    int out_of_memory;
};

/// Room for one more message of up to `size` bytes at the end of the buffer, or NULL. The buffer
/// is mapped memory that grows in place or moves without a copy (mremap): grown by realloc, a
/// table-sized batch would leave the heap holding every smaller size it went through.
static struct nlmsghdr *room(natsync_nft_batch *batch, size_t size) {
    if (batch->out_of_memory) return NULL;
    size_t needed = batch->length + MNL_ALIGN(size);
    if (needed > batch->capacity) {
        size_t page = 4096;
        size_t capacity = batch->capacity * 2 > needed ? batch->capacity * 2 : needed;
        capacity = (capacity + page - 1) / page * page;
        void *grown = batch->buffer == NULL
                          ? mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                          : mremap(batch->buffer, batch->capacity, capacity, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED) {
            batch->out_of_memory = 1;
            return NULL;
        }
        batch->buffer = grown;
        batch->capacity = capacity;
    }
    return (struct nlmsghdr *)(batch->buffer + batch->length);
}

static void finish(natsync_nft_batch *batch, struct nlmsghdr *message) { batch->length += MNL_ALIGN(message->nlmsg_len); }

/// A message of `type` for `family` (4 or 6), with room for `size` bytes of attributes; NULL
/// when out of memory.
static struct nlmsghdr *message(natsync_nft_batch *batch, uint16_t type, int family, uint16_t flags, size_t size) {
    struct nlmsghdr *header = room(batch, MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)) + size);
    if (header == NULL) return NULL;
    uint32_t sequence = batch->first_sequence + 1 + (uint32_t)batch->messages;
    batch->messages++;
    return nftnl_nlmsg_build_hdr((char *)header, type, family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4, flags, sequence);
}

natsync_nft_batch *natsync_nft_batch_begin(uint32_t generation) {
    natsync_nft_batch *batch = calloc(1, sizeof(*batch));
    if (batch == NULL) {
        natsync_set_error(ENOMEM, "cannot allocate an nf_tables batch");
        return NULL;
    }
    batch->first_sequence = (uint32_t)time(NULL);
    struct nlmsghdr *begin = room(batch, MNL_SOCKET_BUFFER_SIZE);
    if (begin == NULL) {
        free(batch);
        natsync_set_error(ENOMEM, "cannot allocate an nf_tables batch");
        return NULL;
    }
    begin = nftnl_batch_begin((char *)begin, batch->first_sequence);
    mnl_attr_put_u32(begin, NFNL_BATCH_GENID, htonl(generation));
    finish(batch, begin);
    return batch;
}

void natsync_nft_batch_free(natsync_nft_batch *batch) {
    if (batch == NULL) return;
    if (batch->buffer != NULL) munmap(batch->buffer, batch->capacity);
    free(batch);
}

size_t natsync_nft_batch_messages(const natsync_nft_batch *batch) { return batch->messages; }

void natsync_nft_batch_set_generation(natsync_nft_batch *batch, uint32_t generation) {
    struct nlmsghdr *begin = (struct nlmsghdr *)batch->buffer;
    struct nlattr *attribute;
    mnl_attr_for_each(attribute, begin, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(attribute) == NFNL_BATCH_GENID) *(uint32_t *)mnl_attr_get_payload(attribute) = htonl(generation);
    }
}

int natsync_nft_batch_message(
    const natsync_nft_batch *batch, size_t index, int *type, int *by_handle, char *table, char *chain, size_t size) {
    table[0] = chain[0] = '\0';
    *by_handle = 0;
    // The batch's begin message comes first.
    size_t position = 0, offset = 0;
    const struct nlmsghdr *message = NULL;
    while (offset + MNL_NLMSG_HDRLEN <= batch->length) {
        message = (const struct nlmsghdr *)(batch->buffer + offset);
        if (position == index + 1) break;
        offset += MNL_ALIGN(message->nlmsg_len);
        position++;
        message = NULL;
    }
    if (message == NULL || index >= batch->messages) return -1;
    *type = NFNL_MSG_TYPE(message->nlmsg_type);
    // Each message type numbers its attributes: the table is 1 in all, the chain NFTA_CHAIN_NAME
    // (3) in a chain's message and NFTA_RULE_CHAIN (2) in a rule's, where 3 is the handle.
    int rule = *type == NFT_MSG_NEWRULE || *type == NFT_MSG_DELRULE;
    uint16_t chain_attribute = rule ? NFTA_RULE_CHAIN : NFTA_CHAIN_NAME;
    const struct nlattr *attribute;
    mnl_attr_for_each(attribute, message, sizeof(struct nfgenmsg)) {
        uint16_t kind = mnl_attr_get_type(attribute);
        if (kind == 1 && mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0) {
            snprintf(table, size, "%s", mnl_attr_get_str(attribute));
        } else if (*type != NFT_MSG_NEWTABLE && kind == chain_attribute && mnl_attr_validate(attribute, MNL_TYPE_NUL_STRING) >= 0) {
            snprintf(chain, size, "%s", mnl_attr_get_str(attribute));
        } else if (rule && kind == NFTA_RULE_HANDLE) {
            *by_handle = 1;
        }
    }
    return 0;
}

static size_t names_size(const char *table, const char *chain) {
    return MNL_ATTR_HDRLEN * 2 + MNL_ALIGN(strlen(table) + 1) + MNL_ALIGN(chain == NULL ? 0 : strlen(chain) + 1) + 64;
}

int natsync_nft_batch_add_table(natsync_nft_batch *batch, int family, const char *table) {
    struct nlmsghdr *m = message(batch, NFT_MSG_NEWTABLE, family, NLM_F_CREATE, names_size(table, NULL));
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_TABLE_NAME, table);
    finish(batch, m);
    return 0;
}

int natsync_nft_batch_add_chain(
    natsync_nft_batch *batch, int family, const char *table, const char *chain, const char *type, int hook, int priority) {
    struct nlmsghdr *m = message(batch, NFT_MSG_NEWCHAIN, family, NLM_F_CREATE, names_size(table, chain) + 64);
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_CHAIN_TABLE, table);
    mnl_attr_put_strz(m, NFTA_CHAIN_NAME, chain);
    if (type != NULL) {
        // A base chain, as iptables-nft makes one: its hook, priority, type and an accept policy.
        struct nlattr *nest = mnl_attr_nest_start(m, NFTA_CHAIN_HOOK);
        mnl_attr_put_u32(m, NFTA_HOOK_HOOKNUM, htonl((uint32_t)hook));
        mnl_attr_put_u32(m, NFTA_HOOK_PRIORITY, htonl((uint32_t)priority));
        mnl_attr_nest_end(m, nest);
        mnl_attr_put_u32(m, NFTA_CHAIN_POLICY, htonl(NF_ACCEPT));
        mnl_attr_put_strz(m, NFTA_CHAIN_TYPE, type);
    }
    finish(batch, m);
    return 0;
}

int natsync_nft_batch_flush_chain(natsync_nft_batch *batch, int family, const char *table, const char *chain) {
    struct nlmsghdr *m = message(batch, NFT_MSG_DELRULE, family, 0, names_size(table, chain));
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_RULE_TABLE, table);
    mnl_attr_put_strz(m, NFTA_RULE_CHAIN, chain);
    finish(batch, m);
    return 0;
}

int natsync_nft_batch_delete_chain(natsync_nft_batch *batch, int family, const char *table, const char *chain) {
    struct nlmsghdr *m = message(batch, NFT_MSG_DELCHAIN, family, 0, names_size(table, chain));
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_CHAIN_TABLE, table);
    mnl_attr_put_strz(m, NFTA_CHAIN_NAME, chain);
    finish(batch, m);
    return 0;
}

/// True when `element`, an NFTA_LIST_ELEM, is a counter expression.
static int is_counter(const struct nlattr *element) {
    static const char name[] = "counter";
    if (element->nla_len < 2 * MNL_ATTR_HDRLEN + sizeof(name)) return 0;
    const struct nlattr *first = mnl_attr_get_payload(element);
    return mnl_attr_get_type(first) == NFTA_EXPR_NAME && first->nla_len == MNL_ATTR_HDRLEN + sizeof(name) &&
           memcmp(mnl_attr_get_payload(first), name, sizeof(name)) == 0;
}

/// Puts a rule's expressions (as encoded, in the kernel's dump layout) with each counter's values
/// left out: the kernel starts a counter at zero anyway, and the values are 28 bytes of every
/// rule in a batch of hundreds of thousands.
static void put_expressions(struct nlmsghdr *m, const uint8_t *expressions, size_t length) {
    struct nlattr *list = mnl_attr_nest_start(m, NFTA_RULE_EXPRESSIONS);
    for (size_t offset = 0; offset + MNL_ATTR_HDRLEN <= length;) {
        const struct nlattr *element = (const struct nlattr *)(expressions + offset);
        size_t size = element->nla_len;
        if (size < MNL_ATTR_HDRLEN || offset + size > length) break;
        if (is_counter(element)) {
            struct nlattr *counter = mnl_attr_nest_start(m, NFTA_LIST_ELEM);
            mnl_attr_put_strz(m, NFTA_EXPR_NAME, "counter");
            mnl_attr_nest_end(m, counter);
        } else {
            char *end = (char *)m + m->nlmsg_len;
            memcpy(end, element, size);
            memset(end + size, 0, MNL_ALIGN(size) - size);
            m->nlmsg_len += (uint32_t)MNL_ALIGN(size);
        }
        offset += MNL_ALIGN(size);
    }
    mnl_attr_nest_end(m, list);
}

int natsync_nft_batch_add_rule(
    natsync_nft_batch *batch, int family, const char *table, const char *chain, const uint8_t *expressions, size_t length,
    uint32_t protocol, int invert_protocol, int at_top) {
    struct nlmsghdr *m = message(
        batch, NFT_MSG_NEWRULE, family, NLM_F_CREATE | (at_top ? 0 : NLM_F_APPEND), names_size(table, chain) + length + 64);
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_RULE_TABLE, table);
    mnl_attr_put_strz(m, NFTA_RULE_CHAIN, chain);
    put_expressions(m, expressions, length);
    // The protocol the compat matches and targets are checked against (tcp needs -p tcp). The
    // kernel does not keep it, and without it checks them against no protocol, so a rule without
    // -p goes without it: most of a large batch's rules.
    if (protocol != 0) {
        struct nlattr *compat = mnl_attr_nest_start(m, NFTA_RULE_COMPAT);
        mnl_attr_put_u32(m, NFTA_RULE_COMPAT_PROTO, htonl(protocol));
        mnl_attr_put_u32(m, NFTA_RULE_COMPAT_FLAGS, htonl(invert_protocol ? NFT_RULE_COMPAT_F_INV : 0));
        mnl_attr_nest_end(m, compat);
    }
    finish(batch, m);
    return 0;
}

int natsync_nft_batch_delete_rule(natsync_nft_batch *batch, int family, const char *table, const char *chain, uint64_t handle) {
    struct nlmsghdr *m = message(batch, NFT_MSG_DELRULE, family, 0, names_size(table, chain) + 16);
    if (m == NULL) return -1;
    mnl_attr_put_strz(m, NFTA_RULE_TABLE, table);
    mnl_attr_put_strz(m, NFTA_RULE_CHAIN, chain);
    mnl_attr_put_u64(m, NFTA_RULE_HANDLE, htobe64(handle));
    finish(batch, m);
    return 0;
}

/// Reads what the kernel queued on `socket` while it processed the batch. Returns 0 when the last
/// message was acknowledged and nothing failed, else -1 with the first failure's errno and, in
/// `failed`, its message's index (-1 for the batch as a whole).
static int read_answers(struct mnl_socket *socket, const natsync_nft_batch *batch, long *failed) {
    uint32_t last = batch->first_sequence + (uint32_t)batch->messages;
    char *buffer = malloc(MNL_SOCKET_BUFFER_SIZE * 4);
    if (buffer == NULL) {
        natsync_set_error(ENOMEM, "cannot read the nf_tables answers");
        return -1;
    }
    int error = 0, acknowledged = 0;
    for (;;) {
        ssize_t received = recv(mnl_socket_get_fd(socket), buffer, MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);
        if (received < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && error == 0) {
                error = errno;
                *failed = -1;
            }
            break;
        }
        int length = (int)received;
        for (struct nlmsghdr *answer = (struct nlmsghdr *)buffer; mnl_nlmsg_ok(answer, length);
             answer = mnl_nlmsg_next(answer, &length)) {
            if (answer->nlmsg_type != NLMSG_ERROR) continue;
            const struct nlmsgerr *status = mnl_nlmsg_get_payload(answer);
            if (status->error == 0) {
                if (answer->nlmsg_seq == last) acknowledged = 1;
            } else if (error == 0) {
                error = -status->error;
                long index = (long)answer->nlmsg_seq - (long)batch->first_sequence - 1;
                *failed = index >= 0 && (size_t)index < batch->messages ? index : -1;
            }
        }
    }
    free(buffer);
    if (error == 0 && !acknowledged) {
        error = EPROTO;
        *failed = -1;
    }
    if (error != 0) {
        natsync_set_error(error, "the nf_tables transaction was refused");
        return -1;
    }
    return 0;
}

int natsync_nft_batch_commit(natsync_nft_batch *batch, long *failed) {
    *failed = -1;
    if (batch->out_of_memory) {
        natsync_set_error(ENOMEM, "cannot build the nf_tables batch");
        return -1;
    }
    if (batch->messages == 0) return 0;
    // Only the last message asks for an acknowledgement: errors are reported whatever the flags,
    // and thousands of acknowledgements would overrun the socket's receive buffer.
    struct nlmsghdr *last = NULL;
    for (size_t offset = 0; offset < batch->length;) {
        last = (struct nlmsghdr *)(batch->buffer + offset);
        offset += MNL_ALIGN(last->nlmsg_len);
    }
    last->nlmsg_flags |= NLM_F_ACK;
    struct nlmsghdr *end = room(batch, MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)));
    if (end == NULL) {
        natsync_set_error(ENOMEM, "cannot build the nf_tables batch");
        return -1;
    }
    end = nftnl_batch_end((char *)end, batch->first_sequence + (uint32_t)batch->messages + 1);
    finish(batch, end);

    struct mnl_socket *socket = mnl_socket_open(NETLINK_NETFILTER);
    if (socket == NULL) {
        natsync_set_error(errno, "cannot open a netfilter netlink socket");
        return -1;
    }
    int result = -1;
    if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
        natsync_set_error(errno, "cannot bind the netfilter netlink socket");
        goto out;
    }
    int fd = mnl_socket_get_fd(socket);
    // The whole batch goes in one message; root may raise the send buffer past its limit.
    int size = batch->length > (size_t)1 << 30 ? 1 << 30 : (int)batch->length + 4096;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    int one = 1;
    // Errors without a copy of the failed message: a rule can be kilobytes.
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    int receive = 1 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive, sizeof(receive));
    if (mnl_socket_sendto(socket, batch->buffer, batch->length) < 0) {
        natsync_set_error(errno, "cannot send the nf_tables batch");
        goto out;
    }
    result = read_answers(socket, batch, failed);
out:
    mnl_socket_close(socket);
    return result;
}
