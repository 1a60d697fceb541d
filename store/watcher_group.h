/*
 * watcher_group.h — a set of watchers indexed by what they watch (etcd's
 * watcherGroup): single-key watchers in a hash table of distinct keys,
 * range watchers (prefix, [key, end), from-key, all keys) in an interval
 * tree, and every member on one list for iteration.
 *
 * Why: a write must reach the watchers of its key in time proportional to
 * the watchers it matches (plus O(log ranges)), never to all watchers.
 *
 * Intrusive: the watcher embeds a wg_member; the group allocates nothing per
 * member, so add/remove cannot fail and a watcher moves between groups
 * (synced <-> unsynced) without allocating.  The member borrows its key/end
 * bytes from the watcher.  A member is in at most one group at a time.
 *
 * Hash layout: each bucket chains one "head" member per distinct key; the
 * other members with the same key hang off their head on a doubly linked
 * list.  So a lookup compares each distinct key in the bucket once, and
 * 2,000 watchers of one key cost one comparison plus 2,000 list steps.
 *
 * Not thread-safe: used under the watchable store's lock (ws->mu).
 */
#ifndef KVGATE_WATCHER_GROUP_H
#define KVGATE_WATCHER_GROUP_H

#include "interval_tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wg_member {
    const uint8_t *key;       /* borrowed */
    size_t key_len;
    bool is_range;
    union {
        struct {
            struct wg_member *bnext;   /* next head in the bucket (heads only) */
            struct wg_member **bpprev; /* link pointing at this head (heads only) */
            struct wg_member *snext, *sprev; /* same-key list; sprev NULL = head */
            uint64_t hash;
        } k;
        itree_node node; /* range members */
    } u;
    struct wg_member *all_prev, *all_next;
} wg_member;

typedef struct watcher_group {
    wg_member **buckets;
    size_t nbuckets;       /* power of two */
    size_t nheads;         /* distinct single keys */
    itree ranges;
    wg_member *all_head, *all_tail;
    size_t count;
} watcher_group;

/* Range conventions as kv.h after etcd's normalisation: end_len == 0 and
 * !end_inf = the single key; end_inf = every key >= key; otherwise
 * [key, end) with key < end (the caller refuses empty ranges). */
void wg_member_set(wg_member *m, const uint8_t *key, size_t key_len,
                   const uint8_t *end, size_t end_len, bool end_inf);
bool wg_member_contains(const wg_member *m, const uint8_t *key, size_t key_len);

int watcher_group_init(watcher_group *g); /* 0, or -1 on ENOMEM */
void watcher_group_destroy(watcher_group *g); /* members are not touched */

void watcher_group_add(watcher_group *g, wg_member *m);    /* appends to the list */
void watcher_group_remove(watcher_group *g, wg_member *m); /* m must be in g */
/* Moves m to the tail of the iteration list (round-robin sync passes). */
void watcher_group_to_tail(watcher_group *g, wg_member *m);

/* Calls fn for each member watching key.  fn must not modify the group. */
typedef void (*wg_visit_fn)(wg_member *m, void *arg);
void watcher_group_match(const watcher_group *g, const uint8_t *key, size_t key_len,
                         wg_visit_fn fn, void *arg);

static inline size_t watcher_group_size(const watcher_group *g) { return g->count; }

#endif
