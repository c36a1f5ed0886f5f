// See natsync_bench_floor.h.
#include <errno.h>
#include <fcntl.h>
#include <libiptc/libiptc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "natsync_bench_floor.h"

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

// libiptc: read the table, make a trivial change, commit it.
static int measure_libiptc(const char *name, struct natsync_floor *floor) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct xtc_handle *handle = iptc_init(name);
    if (handle == NULL) return -1;
    floor->read = seconds_since(&start);
    const char *probe = "NATSYNC-FLOOR-PROBE";
    int ok = iptc_create_chain(probe, handle) && iptc_delete_chain(probe, handle) && iptc_commit(handle);
    int saved = errno;
    floor->read_and_commit = seconds_since(&start);
    iptc_free(handle);
    errno = saved;
    return ok ? 0 : -1;
}

// The kernel alone: the blob read (GET_INFO + GET_ENTRIES) and handed back unchanged (SET_REPLACE).
static int measure_kernel(const char *name, struct natsync_floor *floor) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) return -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct ipt_getinfo info;
    memset(&info, 0, sizeof(info));
    snprintf(info.name, sizeof(info.name), "%s", name);
    socklen_t length = sizeof(info);
    struct ipt_get_entries *entries = NULL;
    struct ipt_replace *replace = NULL;
    struct xt_counters *counters = NULL;
    int result = getsockopt(fd, IPPROTO_IP, IPT_SO_GET_INFO, &info, &length);
    if (result == 0) {
        entries = calloc(1, sizeof(*entries) + info.size);
        replace = calloc(1, sizeof(*replace) + info.size);
        counters = calloc(info.num_entries ? info.num_entries : 1, sizeof(*counters));
        if (entries == NULL || replace == NULL || counters == NULL) {
            errno = ENOMEM;
            result = -1;
        }
    }
    if (result == 0) {
        snprintf(entries->name, sizeof(entries->name), "%s", name);
        entries->size = info.size;
        length = sizeof(*entries) + info.size;
        result = getsockopt(fd, IPPROTO_IP, IPT_SO_GET_ENTRIES, entries, &length);
    }
    if (result == 0) {
        floor->kernel_read = seconds_since(&start);
        floor->entries = info.num_entries;
        floor->size = info.size;
        snprintf(replace->name, sizeof(replace->name), "%s", name);
        replace->valid_hooks = info.valid_hooks;
        replace->num_entries = info.num_entries;
        replace->size = info.size;
        memcpy(replace->hook_entry, info.hook_entry, sizeof(replace->hook_entry));
        memcpy(replace->underflow, info.underflow, sizeof(replace->underflow));
        replace->num_counters = info.num_entries;
        replace->counters = counters;
        memcpy(replace->entries, entries->entrytable, info.size);
        clock_gettime(CLOCK_MONOTONIC, &start);
        result = setsockopt(fd, IPPROTO_IP, IPT_SO_SET_REPLACE, replace, sizeof(*replace) + info.size);
        floor->kernel_replace = seconds_since(&start);
    }
    int saved = errno;
    free(entries);
    free(replace);
    free(counters);
    close(fd);
    errno = saved;
    return result;
}

int natsync_floor_measure(const char *name, struct natsync_floor *floor) {
    memset(floor, 0, sizeof(*floor));
    const char *path = getenv("XTABLES_LOCKFILE");
    int lock = open(path ? path : "/run/xtables.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        int saved = errno;
        if (lock >= 0) close(lock);
        errno = saved;
        return -1;
    }
    int result = measure_libiptc(name, floor);
    if (result == 0) result = measure_kernel(name, floor);
    int saved = errno;
    close(lock);
    errno = saved;
    return result;
}
