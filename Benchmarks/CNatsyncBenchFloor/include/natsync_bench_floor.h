// The benchmarks' floor: what legacy iptables makes any change to an IPv4 table cost, whoever
// makes it. Measured here, beside the product, so the shipped shim holds only what natsync uses.
#ifndef NATSYNC_BENCH_FLOOR_H
#define NATSYNC_BENCH_FLOOR_H

#include <stdint.h>

struct natsync_floor {
    double read;            // iptc_init: the blob read from the kernel and parsed into libiptc's chains
    double read_and_commit; // iptc_init, a chain created and deleted again, iptc_commit
    double kernel_read;     // IPT_SO_GET_INFO + IPT_SO_GET_ENTRIES alone
    double kernel_replace;  // the same blob handed back through IPT_SO_SET_REPLACE
    uint32_t entries;       // the table's entry count
    uint32_t size;          // and blob size, in bytes
};

/// Measures the floor on IPv4 table `name` of the calling thread's network namespace, under the
/// xtables lock (`$XTABLES_LOCKFILE` or /run/xtables.lock). The table keeps its rules; its
/// counters restart at zero. 0, or -1 with errno set.
int natsync_floor_measure(const char *name, struct natsync_floor *floor);

#endif
