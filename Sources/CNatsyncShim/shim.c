// natsync's C shim: one API over libip4tc and libip6tc (shim_ipv4.c, shim_ipv6.c, built from
// shim_family.inc; the writers from shim_writer.inc), the last error of each thread, and the
// process helpers glibc hides from Swift.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim_internal.h"

struct natsync_table {
    int family;
    void *handle;
};

static _Thread_local int last_errno;
static _Thread_local char last_message[256];

void natsync_set_error(int code, const char *message) {
    last_errno = code;
    snprintf(last_message, sizeof(last_message), "%s", message);
    errno = code;
}

int natsync_last_errno(void) { return last_errno; }
const char *natsync_last_error(void) { return last_message; }

natsync_table *natsync_table_open(const char *name, int family) {
    if (family != 4 && family != 6) {
        natsync_set_error(EAFNOSUPPORT, "family must be 4 or 6");
        return NULL;
    }
    void *handle = family == 6 ? natsync6_table_open(name) : natsync4_table_open(name);
    if (handle == NULL) return NULL;
    natsync_table *table = calloc(1, sizeof(*table));
    if (table == NULL) {
        if (family == 6) natsync6_table_free(handle);
        else natsync4_table_free(handle);
        natsync_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    table->family = family;
    table->handle = handle;
    return table;
}

void natsync_table_free(natsync_table *table) {
    if (table == NULL) return;
    if (table->family == 6) natsync6_table_free(table->handle);
    else natsync4_table_free(table->handle);
    free(table);
}

// Each call goes to the table's family.
#define DISPATCH(name, ...) (table->family == 6 ? natsync6_##name(table->handle, ##__VA_ARGS__) : natsync4_##name(table->handle, ##__VA_ARGS__))

int natsync_table_commit(natsync_table *table) { return DISPATCH(table_commit); }
const char *natsync_first_chain(natsync_table *table) { return DISPATCH(first_chain); }
const char *natsync_next_chain(natsync_table *table) { return DISPATCH(next_chain); }
int natsync_chain_exists(natsync_table *table, const char *chain) { return DISPATCH(chain_exists, chain); }
const void *natsync_first_rule(natsync_table *table, const char *chain) { return DISPATCH(first_rule, chain); }
const void *natsync_next_rule(natsync_table *table, const void *previous) { return DISPATCH(next_rule, previous); }
int natsync_create_chain(natsync_table *table, const char *chain) { return DISPATCH(create_chain, chain); }
int natsync_flush_chain(natsync_table *table, const char *chain) { return DISPATCH(flush_chain, chain); }
int natsync_delete_chain(natsync_table *table, const char *chain) { return DISPATCH(delete_chain, chain); }
int natsync_delete_rule(natsync_table *table, const char *chain, unsigned int index) { return DISPATCH(delete_rule, chain, index); }

int natsync_append_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule) {
    return DISPATCH(append_rule, chain, rule);
}

int natsync_insert_rule(natsync_table *table, const char *chain, const struct natsync_rule *rule, unsigned int index) {
    return DISPATCH(insert_rule, chain, rule, index);
}

int natsync_decode_rule(natsync_table *table, const void *entry, struct natsync_rule *out) {
    return DISPATCH(decode_rule, entry, out);
}

void natsync_describe_extensions(natsync_table *table, const void *entry, char *text, size_t size) {
    if (table->family == 6) natsync6_describe_extensions(table->handle, entry, text, size);
    else natsync4_describe_extensions(table->handle, entry, text, size);
}

const char *natsync_chain_policy(natsync_table *table, const char *chain) { return DISPATCH(chain_policy, chain); }

int natsync_table_info(const char *name, int family, uint32_t *entries, uint32_t *size) {
    return family == 6 ? natsync6_table_info(name, entries, size) : natsync4_table_info(name, entries, size);
}

void natsync_release_free_memory(void) { malloc_trim(0); }

int natsync_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int natsync_enter_network_namespace(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        natsync_set_error(errno, strerror(errno));
        return -1;
    }
    int result = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    if (result != 0) {
        natsync_set_error(saved, strerror(saved));
        return -1;
    }
    return 0;
}

struct natsync_blob {
    int family;
    void *blob;
};

natsync_blob *natsync_blob_read(const char *name, int family) {
    if (family != 4 && family != 6) {
        natsync_set_error(EAFNOSUPPORT, "family must be 4 or 6");
        return NULL;
    }
    void *inner = family == 6 ? natsync6_blob_read(name) : natsync4_blob_read(name);
    if (inner == NULL) return NULL;
    natsync_blob *blob = calloc(1, sizeof(*blob));
    if (blob == NULL) {
        if (family == 6) natsync6_blob_free(inner);
        else natsync4_blob_free(inner);
        natsync_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    blob->family = family;
    blob->blob = inner;
    return blob;
}

void natsync_blob_free(natsync_blob *blob) {
    if (blob == NULL) return;
    if (blob->family == 6) natsync6_blob_free(blob->blob);
    else natsync4_blob_free(blob->blob);
    free(blob);
}

// Each call goes to the blob's family.
#define BLOB_DISPATCH(name, ...) (blob->family == 6 ? natsync6_##name(blob->blob, ##__VA_ARGS__) : natsync4_##name(blob->blob, ##__VA_ARGS__))

size_t natsync_blob_chain_count(const natsync_blob *blob) { return BLOB_DISPATCH(blob_chain_count); }
const char *natsync_blob_chain_name(const natsync_blob *blob, size_t chain) { return BLOB_DISPATCH(blob_chain_name, chain); }
int natsync_blob_chain_is_user(const natsync_blob *blob, size_t chain) { return BLOB_DISPATCH(blob_chain_is_user, chain); }
const void *natsync_blob_first_rule(const natsync_blob *blob, size_t chain) { return BLOB_DISPATCH(blob_first_rule, chain); }
const void *natsync_blob_next_rule(const natsync_blob *blob, size_t chain, const void *previous) {
    return BLOB_DISPATCH(blob_next_rule, chain, previous);
}
int natsync_blob_decode_rule(const natsync_blob *blob, const void *entry, struct natsync_rule *out) {
    return BLOB_DISPATCH(blob_decode_rule, entry, out);
}
const void *natsync_blob_entries(const natsync_blob *blob, size_t *size) { return BLOB_DISPATCH(blob_entries, size); }
int natsync_blob_users_sorted(const natsync_blob *blob) { return BLOB_DISPATCH(blob_users_sorted); }
size_t natsync_blob_user_search(const natsync_blob *blob, const char *name, int *found) { return BLOB_DISPATCH(blob_user_search, name, found); }

struct natsync_writer {
    int family;
    void *writer;
};

natsync_writer *natsync_writer_open(const natsync_blob *live) {
    natsync_writer *writer = calloc(1, sizeof(*writer));
    if (writer == NULL) {
        natsync_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    writer->family = live->family;
    writer->writer = live->family == 6 ? natsync6_writer_open(live->blob) : natsync4_writer_open(live->blob);
    if (writer->writer == NULL) {
        free(writer);
        return NULL;
    }
    return writer;
}

void natsync_writer_free(natsync_writer *writer) {
    if (writer == NULL) return;
    if (writer->family == 6) natsync6_writer_free(writer->writer);
    else natsync4_writer_free(writer->writer);
    free(writer);
}

// Each call goes to the writer's family.
#define WRITER_DISPATCH(name, ...) \
    (writer->family == 6 ? natsync6_##name(writer->writer, ##__VA_ARGS__) : natsync4_##name(writer->writer, ##__VA_ARGS__))

int natsync_writer_begin_chain(natsync_writer *writer, const char *chain, long live_chain) {
    return WRITER_DISPATCH(writer_begin_chain, chain, live_chain);
}
int natsync_writer_copy_rule(natsync_writer *writer, size_t chain, size_t position) {
    return WRITER_DISPATCH(writer_copy_rule, chain, position);
}
int natsync_writer_copy_chains(natsync_writer *writer, size_t first, size_t count) { return WRITER_DISPATCH(writer_copy_chains, first, count); }
int natsync_writer_rule(natsync_writer *writer, const struct natsync_rule *rule) { return WRITER_DISPATCH(writer_rule, rule); }
int natsync_writer_end_chain(natsync_writer *writer) { return WRITER_DISPATCH(writer_end_chain); }
int natsync_writer_commit(natsync_writer *writer) { return WRITER_DISPATCH(writer_commit); }
