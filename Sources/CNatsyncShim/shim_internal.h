// Shared between the shim's translation units; never seen by Swift.
#ifndef NATSYNC_SHIM_INTERNAL_H
#define NATSYNC_SHIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "natsync_shim.h"

struct xt_entry_match;
struct xt_entry_target;
struct nlmsghdr;

void natsync_set_error(int code, const char *message);

size_t natsync_match_size(size_t payload);
size_t natsync_match_payload_size(const struct natsync_match *m);
void natsync_set_interface(char *name, unsigned char *mask, const char *value);
int natsync_encode_match(struct xt_entry_match *em, const struct natsync_match *m, int family);
/// 0 when understood, 1 when foreign.
int natsync_decode_match(const struct xt_entry_match *em, struct natsync_match *m, int family);

/// One nf_tables dump request (NFT_MSG_GET*, NLM_F_DUMP), filtered by table and chain when
/// given; each answer goes to `callback`. 0 or -1.
int natsync_nft_dump(
    int family, uint16_t type, const char *table, const char *chain, int (*callback)(const struct nlmsghdr *, void *), void *data,
    const char *what);

/// One family's libiptc (libip4tc or libip6tc) behind the same operations; `handle` is that
/// family's `struct xtc_handle`.
#define NATSYNC_FAMILY_DECLARATIONS(prefix)                                                                  \
    void *prefix##_table_open(const char *name);                                                             \
    void prefix##_table_free(void *handle);                                                                   \
    int prefix##_table_commit(void *handle);                                                                  \
    const char *prefix##_first_chain(void *handle);                                                           \
    const char *prefix##_next_chain(void *handle);                                                            \
    int prefix##_chain_exists(void *handle, const char *chain);                                               \
    const void *prefix##_first_rule(void *handle, const char *chain);                                         \
    const void *prefix##_next_rule(void *handle, const void *previous);                                       \
    int prefix##_create_chain(void *handle, const char *chain);                                               \
    int prefix##_flush_chain(void *handle, const char *chain);                                                \
    int prefix##_delete_chain(void *handle, const char *chain);                                               \
    int prefix##_delete_rule(void *handle, const char *chain, unsigned int index);                            \
    int prefix##_append_rule(void *handle, const char *chain, const struct natsync_rule *rule);               \
    int prefix##_insert_rule(void *handle, const char *chain, const struct natsync_rule *rule, unsigned int index); \
    int prefix##_decode_rule(void *handle, const void *entry, struct natsync_rule *out);                      \
    void prefix##_describe_extensions(void *handle, const void *entry, char *text, size_t size);              \
    const char *prefix##_chain_policy(void *handle, const char *chain);                                       \
    int prefix##_table_info(const char *name, uint32_t *entries, uint32_t *size); \
    /* An extension target (REJECT, DNAT, MASQUERADE, MARK) zeroed and encoded into `target`:  */           \
    /* its aligned size, or 0 for a standard verdict or a capacity too small. */                              \
    size_t prefix##_encode_xt_target(const struct natsync_rule *rule, struct xt_entry_target *target, size_t capacity); \
    void *prefix##_blob_read(const char *name);                                                               \
    void prefix##_blob_free(void *blob);                                                                      \
    size_t prefix##_blob_chain_count(const void *blob);                                                       \
    const char *prefix##_blob_chain_name(const void *blob, size_t chain);                                     \
    int prefix##_blob_chain_is_user(const void *blob, size_t chain);                                          \
    const void *prefix##_blob_first_rule(const void *blob, size_t chain);                                     \
    const void *prefix##_blob_next_rule(const void *blob, size_t chain, const void *previous);                \
    int prefix##_blob_decode_rule(const void *blob, const void *entry, struct natsync_rule *out);             \
    const void *prefix##_blob_entries(const void *blob, size_t *size);                                        \
    int prefix##_blob_users_sorted(const void *blob);                                                         \
    size_t prefix##_blob_user_search(const void *blob, const char *name, int *found);                         \
    void *prefix##_writer_open(const void *blob);                                                             \
    void prefix##_writer_free(void *writer);                                                                  \
    int prefix##_writer_begin_chain(void *writer, const char *chain, long live_chain);                        \
    int prefix##_writer_copy_rule(void *writer, size_t chain, size_t position);                               \
    int prefix##_writer_copy_chains(void *writer, size_t first, size_t count);                                \
    int prefix##_writer_rule(void *writer, const struct natsync_rule *rule);                                  \
    int prefix##_writer_end_chain(void *writer);                                                              \
    int prefix##_writer_commit(void *writer);

NATSYNC_FAMILY_DECLARATIONS(natsync4)
NATSYNC_FAMILY_DECLARATIONS(natsync6)

#endif
