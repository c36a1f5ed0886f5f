// One family's table writer, included after shim_family.h (whose macros and blob reader it uses):
// builds a whole table's blob from a live blob and new rules, as libiptc's commit lays it out, and
// hands it to the kernel in one SET_REPLACE, without libiptc.
//
// libiptc builds a structure per rule and per chain of the whole table before it can change one,
// and rebuilds the blob from them; natsync already has the live blob and knows every change, so
// the user chains it leaves alone are copied whole, a run of neighbours at a time, and only their
// jumps are relocated. The layout is libiptc's: built-in chains in hook order (their rules, then
// the policy entry), then user chains in strcmp order (an ERROR head naming the chain, the rules,
// a RETURN tail), then an ERROR entry.
// A jump's verdict is the offset of the target chain's first rule; a rule without a target falls
// through to the next entry. Counters of copied entries are carried over as libiptc does: the
// kernel hands back the old counters at the replace, and they are added to the copies.

#define CHAIN_HEAD_SIZE (sizeof(ENTRY) + XT_ALIGN(sizeof(struct xt_error_target)))
#define CHAIN_TAIL_SIZE (sizeof(ENTRY) + XT_ALIGN(sizeof(struct xt_standard_target)))

struct FAM(writer_chain) {
    uint32_t head;  // offset of its ERROR head, which holds its name
    uint32_t first; // offset of its first rule (or of its tail)
};

/// Written entries that copy live ones, for carrying their counters over.
struct FAM(writer_copy) {
    uint32_t entry; // the first one's index
    uint32_t live;  // the first live entry's index
    uint32_t count;
};

/// Live bytes copied whole, where a jump into them now goes.
struct FAM(writer_run) {
    uint32_t live_start, live_end; // offsets in the live blob
    uint32_t start;                // offset of the copy
};

struct FAM(writer) {
    const struct FAM(blob) *live;
    char *buffer; // REPLACE header, then the entries
    size_t capacity;
    uint32_t size;  // bytes of entries written
    uint32_t count; // entries written
    struct FAM(writer_copy) *copies; // in the order written
    size_t copy_count, copy_capacity;
    struct FAM(writer_run) *runs; // in the order written
    size_t run_count, run_capacity;
    struct FAM(writer_jump) {
        uint32_t offset;      // of an entry whose jump is resolved at the commit
        uint32_t live_target; // the live offset a copied entry jumps to; UINT32_MAX: the target names it
    } *jumps;
    size_t jump_count, jump_capacity;
    struct FAM(writer_chain) *chains; // user chains, in strcmp order
    size_t chain_count, chain_capacity;
    uint32_t *live_firsts; // per live chain: where its first rule is written, UINT32_MAX if it is not
    uint32_t hook_entry[NF_INET_NUMHOOKS], underflow[NF_INET_NUMHOOKS];
    unsigned written_hooks;
    int open_hook; // hook of the built-in chain being written, -1 for a user chain, -2 for none
};

static int FAM(writer_fail)(int code, const char *message) {
    natsync_set_error(code, message);
    return -1;
}

static int FAM(grow)(void **array, size_t *capacity, size_t needed, size_t element) {
    if (needed <= *capacity) return 0;
    size_t grown = *capacity ? *capacity : 1024;
    while (grown < needed) grown *= 2;
    void *larger = realloc(*array, grown * element);
    if (larger == NULL) return FAM(writer_fail)(ENOMEM, "out of memory");
    *array = larger;
    *capacity = grown;
    return 0;
}

void FAM(writer_free)(void *opaque) {
    struct FAM(writer) *w = opaque;
    if (w == NULL) return;
    free(w->buffer);
    free(w->copies);
    free(w->runs);
    free(w->jumps);
    free(w->chains);
    free(w->live_firsts);
    free(w);
}

void *FAM(writer_open)(const void *blob) {
    const struct FAM(blob) *live = blob;
    struct FAM(writer) *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        FAM(writer_fail)(ENOMEM, "out of memory");
        return NULL;
    }
    w->live = live;
    w->open_hook = -2;
    w->live_firsts = malloc((live->count ? live->count : 1) * sizeof(uint32_t));
    if (w->live_firsts == NULL || FAM(grow)((void **)&w->buffer, &w->capacity, sizeof(REPLACE) + live->size + (1 << 20), 1) != 0) {
        FAM(writer_free)(w);
        FAM(writer_fail)(ENOMEM, "out of memory");
        return NULL;
    }
    memset(w->live_firsts, 0xff, (live->count ? live->count : 1) * sizeof(uint32_t));
    return w;
}

/// Records that the next `count` entries written copy live entries from index `live` on.
static int FAM(writer_add_copy)(struct FAM(writer) *w, uint32_t live, uint32_t count) {
    struct FAM(writer_copy) *last = w->copy_count > 0 ? &w->copies[w->copy_count - 1] : NULL;
    if (last != NULL && last->entry + last->count == w->count && last->live + last->count == live) {
        last->count += count;
        return 0;
    }
    if (FAM(grow)((void **)&w->copies, &w->copy_capacity, w->copy_count + 1, sizeof(*w->copies)) != 0) return -1;
    w->copies[w->copy_count++] = (struct FAM(writer_copy)){w->count, live, count};
    return 0;
}

/// Room for `size` more bytes of entries; NULL on failure.
static char *FAM(writer_room)(struct FAM(writer) *w, size_t size) {
    if ((size_t)w->size + size > UINT32_MAX / 2) {
        FAM(writer_fail)(EFBIG, "table too large");
        return NULL;
    }
    if (FAM(grow)((void **)&w->buffer, &w->capacity, sizeof(REPLACE) + w->size + size, 1) != 0) return NULL;
    return w->buffer + sizeof(REPLACE) + w->size;
}

/// Room for one more entry of `size` bytes in the open chain (zeroed if asked), recorded as a
/// copy of live entry `origin - 1` unless `origin` is 0; NULL on failure.
static ENTRY *FAM(writer_reserve)(struct FAM(writer) *w, size_t size, uint32_t origin, int zeroed) {
    if (w->open_hook == -2) {
        FAM(writer_fail)(EINVAL, "entry outside a chain");
        return NULL;
    }
    char *entry = FAM(writer_room)(w, size);
    if (entry == NULL || (origin != 0 && FAM(writer_add_copy)(w, origin - 1, 1) != 0)) return NULL;
    if (zeroed) memset(entry, 0, size);
    return (ENTRY *)entry;
}

static void FAM(writer_commit_entry)(struct FAM(writer) *w, const ENTRY *entry) {
    w->size += entry->next_offset;
    w->count += 1;
}

/// Records that the entry at `offset` jumps to the live offset `live_target` (UINT32_MAX: to the
/// chain its target names).
static int FAM(writer_add_jump)(struct FAM(writer) *w, uint32_t offset, uint32_t live_target) {
    if (FAM(grow)((void **)&w->jumps, &w->jump_capacity, w->jump_count + 1, sizeof(*w->jumps)) != 0) return -1;
    w->jumps[w->jump_count++] = (struct FAM(writer_jump)){offset, live_target};
    return 0;
}

/// A written user chain's name, as its head holds it.
static const char *FAM(writer_chain_name)(const struct FAM(writer) *w, const struct FAM(writer_chain) *chain) {
    const ENTRY *head = (const void *)(w->buffer + sizeof(REPLACE) + chain->head);
    return ((const struct xt_error_target *)((const char *)head + sizeof(ENTRY)))->errorname;
}

/// Appends an ERROR entry naming `name`: a user chain's head, or (named "ERROR") the table's end.
static int FAM(writer_error_entry)(struct FAM(writer) *w, const char *name) {
    ENTRY *entry = FAM(writer_reserve)(w, CHAIN_HEAD_SIZE, 0, 1);
    if (entry == NULL) return -1;
    struct xt_error_target *error = (void *)((char *)entry + sizeof(ENTRY));
    entry->target_offset = sizeof(ENTRY);
    entry->next_offset = CHAIN_HEAD_SIZE;
    error->target.u.target_size = XT_ALIGN(sizeof(struct xt_error_target));
    strcpy(error->target.u.user.name, XT_ERROR_TARGET);
    snprintf(error->errorname, sizeof(error->errorname), "%s", name);
    FAM(writer_commit_entry)(w, entry);
    return 0;
}

/// Fails unless a user chain called `name` may come next.
static int FAM(writer_check_order)(const struct FAM(writer) *w, const char *name) {
    if (w->chain_count > 0 && strcmp(FAM(writer_chain_name)(w, &w->chains[w->chain_count - 1]), name) >= 0)
        return FAM(writer_fail)(EINVAL, "user chains must come in strcmp order, each once");
    return 0;
}

int FAM(writer_begin_chain)(void *opaque, const char *name, long live_chain) {
    struct FAM(writer) *w = opaque;
    if (w->open_hook != -2) return FAM(writer_fail)(EINVAL, "chain begun inside a chain");
    for (int hook = 0; hook < NF_INET_NUMHOOKS; hook++) {
        if ((w->live->info.valid_hooks & (1u << hook)) && strcmp(name, FAM(hook_names)[hook]) == 0) {
            if (w->chain_count > 0 || (w->written_hooks >> hook) != 0)
                return FAM(writer_fail)(EINVAL, "built-in chains must come first, in hook order");
            w->open_hook = hook;
            w->hook_entry[hook] = w->size;
            return 0;
        }
    }
    if (strlen(name) >= XT_EXTENSION_MAXNAMELEN) return FAM(writer_fail)(ENAMETOOLONG, "chain name too long");
    if (FAM(writer_check_order)(w, name) != 0) return -1;
    if (FAM(grow)((void **)&w->chains, &w->chain_capacity, w->chain_count + 1, sizeof(*w->chains)) != 0) return -1;
    w->open_hook = -1;
    struct FAM(writer_chain) *chain = &w->chains[w->chain_count++];
    chain->head = w->size;
    chain->first = w->size + CHAIN_HEAD_SIZE;
    if (live_chain >= 0 && (size_t)live_chain < w->live->count) w->live_firsts[live_chain] = chain->first;

    return FAM(writer_error_entry)(w, name);
}

/// Appends the live entry `source`, whose index in the live blob is `index`.
static int FAM(writer_copy_entry)(struct FAM(writer) *w, const ENTRY *source, uint32_t index) {
    ENTRY *entry = FAM(writer_reserve)(w, source->next_offset, index + 1, 0);
    if (entry == NULL) return -1;
    memcpy(entry, source, source->next_offset);
    struct xt_standard_target *target = (void *)((char *)entry + entry->target_offset);
    if (target->target.u.user.name[0] == '\0' && target->verdict >= 0) {
        uint32_t offset = (uint32_t)((const char *)source - (const char *)w->live->entries->entrytable);
        if ((uint32_t)target->verdict == offset + source->next_offset) {
            // No target: fall through to the next entry, wherever it is now.
            target->verdict = (int)(w->size + entry->next_offset);
        } else if (FAM(writer_add_jump)(w, w->size, (uint32_t)target->verdict) != 0) {
            return -1;
        }
    }
    FAM(writer_commit_entry)(w, entry);
    return 0;
}

int FAM(writer_copy_rule)(void *opaque, size_t chain, size_t position) {
    struct FAM(writer) *w = opaque;
    const void *entry = FAM(blob_first_rule)(w->live, chain);
    for (size_t skipped = 0; entry != NULL && skipped < position; skipped++) entry = FAM(blob_next_rule)(w->live, chain, entry);
    if (entry == NULL) return FAM(writer_fail)(EINVAL, "no such rule in the live chain");
    return FAM(writer_copy_entry)(w, entry, w->live->chains[chain].first_index + (uint32_t)position);
}

/// Appends live user chains, neighbours in the blob, as one copy of their bytes (heads and tails
/// included, as the kernel holds them): jumps within them move with them, the others are
/// resolved at the commit.
int FAM(writer_copy_chains)(void *opaque, size_t first, size_t count) {
    struct FAM(writer) *w = opaque;
    const struct FAM(blob) *live = w->live;
    if (w->open_hook != -2) return FAM(writer_fail)(EINVAL, "chains copied inside a chain");
    if (count == 0) return 0;
    if (first > live->count || count > live->count - first || !live->chains[first].is_user)
        return FAM(writer_fail)(EINVAL, "no such live user chain");
    if (count > 1 && !live->users_sorted) return FAM(writer_fail)(EINVAL, "user chains must come in strcmp order, each once");
    const struct FAM(blob_chain) *from = &live->chains[first], *to = &live->chains[first + count - 1];
    if (FAM(writer_check_order)(w, from->name) != 0) return -1;
    const char *base = (const char *)live->entries->entrytable;
    uint32_t start = from->head;
    uint32_t end = to->end + ((const ENTRY *)(base + to->end))->next_offset;
    uint32_t entries = to->end_index - from->first_index + 2;
    char *copy = FAM(writer_room)(w, end - start);
    if (copy == NULL || FAM(grow)((void **)&w->chains, &w->chain_capacity, w->chain_count + count, sizeof(*w->chains)) != 0 ||
        FAM(grow)((void **)&w->runs, &w->run_capacity, w->run_count + 1, sizeof(*w->runs)) != 0 ||
        FAM(writer_add_copy)(w, from->first_index - 1, entries) != 0)
        return -1;
    memcpy(copy, base + start, end - start);
    uint32_t shift = w->size - start; // modulo 2^32, as the offsets are
    for (uint32_t offset = 0; offset < end - start;) {
        ENTRY *entry = (ENTRY *)(copy + offset);
        struct xt_standard_target *target = (void *)((char *)entry + entry->target_offset);
        if (target->target.u.user.name[0] == '\0' && target->verdict >= 0) {
            uint32_t verdict = (uint32_t)target->verdict;
            if (verdict >= start && verdict < end) target->verdict = (int)(verdict + shift);
            else if (FAM(writer_add_jump)(w, w->size + offset, verdict) != 0) return -1;
        }
        offset += entry->next_offset;
    }
    for (size_t chain = first; chain < first + count; chain++) {
        w->chains[w->chain_count++] = (struct FAM(writer_chain)){live->chains[chain].head + shift, live->chains[chain].first + shift};
    }
    w->runs[w->run_count++] = (struct FAM(writer_run)){start, end, w->size};
    w->size += end - start;
    w->count += entries;
    return 0;
}

int FAM(writer_rule)(void *opaque, const struct natsync_rule *rule) {
    struct FAM(writer) *w = opaque;
    size_t target_offset;
    size_t size = entry_size(rule, &target_offset);
    if (size == 0) return FAM(writer_fail)(EINVAL, "rule cannot be encoded");
    ENTRY *entry = FAM(writer_reserve)(w, size, 0, 1);
    if (entry == NULL) return -1;
    if (encode_rule_into(entry, size, target_offset, rule) != 0) return FAM(writer_fail)(EINVAL, "rule cannot be encoded");
    // What libiptc does on append: a standard target carries a verdict, not a name.
    struct xt_standard_target *standard = (void *)((char *)entry + target_offset);
    switch (rule->target) {
    case NATSYNC_TARGET_JUMP:
    case NATSYNC_TARGET_GOTO:
        if (FAM(writer_add_jump)(w, w->size, UINT32_MAX) != 0) return -1;
        break;
    case NATSYNC_TARGET_NONE: standard->verdict = (int)(w->size + size); break;
    case NATSYNC_TARGET_ACCEPT: standard->verdict = -NF_ACCEPT - 1; break;
    case NATSYNC_TARGET_DROP: standard->verdict = -NF_DROP - 1; break;
    case NATSYNC_TARGET_RETURN: standard->verdict = XT_RETURN; break;
    default: break;
    }
    if (rule->target == NATSYNC_TARGET_ACCEPT || rule->target == NATSYNC_TARGET_DROP || rule->target == NATSYNC_TARGET_RETURN)
        memset(standard->target.u.user.name, 0, sizeof(standard->target.u.user.name));
    FAM(writer_commit_entry)(w, entry);
    return 0;
}

int FAM(writer_end_chain)(void *opaque) {
    struct FAM(writer) *w = opaque;
    if (w->open_hook == -2) return FAM(writer_fail)(EINVAL, "no chain to end");
    if (w->open_hook >= 0) {
        // The policy entry as it is live, with its counters.
        int hook = w->open_hook;
        w->underflow[hook] = w->size;
        const struct FAM(blob_chain) *live = NULL;
        for (size_t chain = 0; chain < w->live->count && live == NULL; chain++) {
            if (!w->live->chains[chain].is_user && w->live->chains[chain].end == w->live->info.underflow[hook]) live = &w->live->chains[chain];
        }
        if (live == NULL) return FAM(writer_fail)(EINVAL, "a built-in chain has no policy");
        const ENTRY *policy = (const void *)((const char *)w->live->entries->entrytable + live->end);
        if (FAM(writer_copy_entry)(w, policy, live->end_index) != 0) return -1;
        w->written_hooks |= 1u << hook;
    } else {
        ENTRY *tail = FAM(writer_reserve)(w, CHAIN_TAIL_SIZE, 0, 1);
        if (tail == NULL) return -1;
        struct xt_standard_target *target = (void *)((char *)tail + sizeof(ENTRY));
        tail->target_offset = sizeof(ENTRY);
        tail->next_offset = CHAIN_TAIL_SIZE;
        target->target.u.target_size = XT_ALIGN(sizeof(struct xt_standard_target));
        target->verdict = XT_RETURN;
        FAM(writer_commit_entry)(w, tail);
    }
    w->open_hook = -2;
    return 0;
}

/// The written user chain called `name` (they are in strcmp order), or NULL.
static const struct FAM(writer_chain) *FAM(writer_find_chain)(const struct FAM(writer) *w, const char *name) {
    size_t low = 0, high = w->chain_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        int order = strcmp(FAM(writer_chain_name)(w, &w->chains[middle]), name);
        if (order == 0) return &w->chains[middle];
        if (order < 0) low = middle + 1;
        else high = middle;
    }
    return NULL;
}

static int FAM(writer_run_order)(const void *a, const void *b) {
    uint32_t x = ((const struct FAM(writer_run) *)a)->live_start, y = ((const struct FAM(writer_run) *)b)->live_start;
    return (x > y) - (x < y);
}

/// Where a copied entry's jump to the live offset `target` goes now: into a copied run, or to
/// where its live chain went. UINT32_MAX with the error set when it cannot go anywhere.
static uint32_t FAM(writer_relocate)(struct FAM(writer) *w, uint32_t target) {
    size_t low = 0, high = w->run_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (w->runs[middle].live_start <= target) low = middle + 1;
        else high = middle;
    }
    if (low > 0 && target < w->runs[low - 1].live_end) return target - w->runs[low - 1].live_start + w->runs[low - 1].start;
    size_t chain = FAM(blob_user_chain_at)(w->live, target);
    if (chain == SIZE_MAX) {
        FAM(writer_fail)(EINVAL, "a copied rule jumps to no chain");
        return UINT32_MAX;
    }
    if (w->live_firsts[chain] == UINT32_MAX) {
        // A rule kept as it was (natsync's or not) still jumps to a chain the change deletes:
        // libiptc refuses the delete (EMLINK) and so does the writer.
        char message[128];
        snprintf(message, sizeof(message), "chain %s cannot be deleted: a rule natsync does not change still jumps to it", w->live->chains[chain].name);
        FAM(writer_fail)(EMLINK, message);
    }
    return w->live_firsts[chain];
}

/// Every recorded jump's verdict: a copied entry's from where its live target went, a new
/// rule's from the chain its target names.
static int FAM(writer_resolve)(struct FAM(writer) *w) {
    char *base = w->buffer + sizeof(REPLACE);
    int ordered = 1;
    for (size_t i = 1; i < w->run_count && ordered; i++) ordered = w->runs[i - 1].live_start < w->runs[i].live_start;
    if (!ordered) qsort(w->runs, w->run_count, sizeof(*w->runs), FAM(writer_run_order));
    for (size_t i = 0; i < w->jump_count; i++) {
        ENTRY *entry = (ENTRY *)(base + w->jumps[i].offset);
        struct xt_standard_target *target = (void *)((char *)entry + entry->target_offset);
        char message[128];
        if (w->jumps[i].live_target != UINT32_MAX) {
            uint32_t first = FAM(writer_relocate)(w, w->jumps[i].live_target);
            if (first == UINT32_MAX) return -1;
            target->verdict = (int)first;
            continue;
        }
        const struct FAM(writer_chain) *chain = FAM(writer_find_chain)(w, target->target.u.user.name);
        if (chain == NULL) {
            snprintf(message, sizeof(message), "jump to chain %s, which the table does not hold", target->target.u.user.name);
            return FAM(writer_fail)(ENOENT, message);
        }
        memset(target->target.u.user.name, 0, sizeof(target->target.u.user.name));
        target->verdict = (int)chain->first;
    }
    return 0;
}

int FAM(writer_commit)(void *opaque) {
    struct FAM(writer) *w = opaque;
    if (w->open_hook != -2) return FAM(writer_fail)(EINVAL, "a chain is not ended");
    if (w->written_hooks != w->live->info.valid_hooks) return FAM(writer_fail)(EINVAL, "a built-in chain is missing");
    w->open_hook = -1;
    if (FAM(writer_error_entry)(w, XT_ERROR_TARGET) != 0) return -1;
    w->open_hook = -2;
    if (FAM(writer_resolve)(w) != 0) return -1;

    REPLACE *replace = (REPLACE *)w->buffer;
    memset(replace, 0, sizeof(*replace));
    memcpy(replace->name, w->live->info.name, sizeof(replace->name));
    replace->valid_hooks = w->live->info.valid_hooks;
    replace->num_entries = w->count;
    replace->size = w->size;
    memcpy(replace->hook_entry, w->hook_entry, sizeof(replace->hook_entry));
    memcpy(replace->underflow, w->underflow, sizeof(replace->underflow));
    // The kernel refuses (EAGAIN) when the table no longer has the entries read: someone changed it.
    replace->num_counters = w->live->info.num_entries;
    struct xt_counters *old = calloc(replace->num_counters ? replace->num_counters : 1, sizeof(*old));
    int fd = socket(SOCKET_FAMILY, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (old == NULL || fd < 0) {
        int code = fd < 0 ? errno : ENOMEM;
        free(old);
        if (fd >= 0) close(fd);
        return FAM(writer_fail)(code, strerror(code));
    }
    replace->counters = old;
    if (setsockopt(fd, SOCKET_LEVEL, SO_SET_REPLACE, replace, (socklen_t)(sizeof(*replace) + w->size)) != 0) {
        int code = errno;
        free(old);
        close(fd);
        return FAM(writer_fail)(code, code == EAGAIN ? "the table changed since it was read" : strerror(code));
    }
    // The kernel holds its own copy now; the counters are added after the blob is gone, so the
    // two are never held at once.
    free(w->buffer);
    w->buffer = NULL;
    w->capacity = 0;
    int carried = 0;
    for (size_t i = 0; i < w->copy_count && !carried; i++) {
        for (uint32_t k = 0; k < w->copies[i].count && !carried; k++) {
            carried = old[w->copies[i].live + k].pcnt != 0 || old[w->copies[i].live + k].bcnt != 0;
        }
    }
    size_t info_size = sizeof(struct xt_counters_info) + (size_t)w->count * sizeof(struct xt_counters);
    struct xt_counters_info *added = carried ? calloc(1, info_size) : NULL;
    if (added != NULL) {
        memcpy(added->name, w->live->info.name, sizeof(added->name));
        added->num_counters = w->count;
        for (size_t i = 0; i < w->copy_count; i++) {
            memcpy(&added->counters[w->copies[i].entry], &old[w->copies[i].live], w->copies[i].count * sizeof(*old));
        }
        // The rules are in place; counters that could not be carried over restart at zero, which
        // is what a rewritten chain's counters do anyway, so a failure here does not fail the sync.
        (void)setsockopt(fd, SOCKET_LEVEL, SO_SET_ADD_COUNTERS, added, (socklen_t)info_size);
    }
    free(old);
    free(added);
    close(fd);
    return 0;
}
