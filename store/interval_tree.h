/*
 * interval_tree.h — an augmented red-black tree of byte-string intervals.
 *
 * Why: range watchers (prefix, [key, range_end), from-key, all keys) must be
 * found from a changed key in O(log n + matches), not by scanning every range
 * watcher (etcd's adt.IntervalTree plays this part in watcherGroup).
 *
 * Intervals are half-open [begin, end) in memcmp order (shorter string first
 * on a common prefix, as etcd's bytes.Compare).  `end_inf` makes the end
 * +infinity: etcd's from-key watch (range_end "\0").  Each node keeps
 * `max_end`, the largest end in its subtree, so a stabbing query skips every
 * subtree whose max_end <= key.
 *
 * The tree is intrusive: the caller embeds an itree_node in its own struct,
 * and the node *borrows* the begin/end bytes (they must stay valid and
 * unchanged while the node is in a tree).  No allocation ever happens, so
 * insert and remove cannot fail.  Several nodes may have equal intervals
 * (2,000 watchers on one prefix are 2,000 nodes); ties are ordered by node
 * address so every node has a unique position and removal is O(log n).
 *
 * Not thread-safe: the owner serialises access (watcher_group is used under
 * the watchable store's lock).
 */
#ifndef KVGATE_INTERVAL_TREE_H
#define KVGATE_INTERVAL_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct itree_node {
    struct itree_node *left, *right, *parent;
    const uint8_t *begin;      /* borrowed */
    const uint8_t *end;        /* borrowed; ignored when end_inf */
    const uint8_t *max_end;    /* borrowed from some node in the subtree */
    uint32_t begin_len, end_len, max_end_len;
    bool end_inf, max_inf, red;
} itree_node;

typedef struct itree {
    itree_node *root;
    size_t count;
} itree;

void itree_init(itree *t);

/* Sets the interval of `n` (borrowed bytes) before insertion.  The caller
 * guarantees begin < end unless end_inf (an empty interval would never
 * match, watcher creation refuses it first). */
void itree_node_set(itree_node *n, const uint8_t *begin, size_t begin_len,
                    const uint8_t *end, size_t end_len, bool end_inf);

void itree_insert(itree *t, itree_node *n);
void itree_remove(itree *t, itree_node *n); /* n must be in t */

/* Calls fn for every node whose interval contains key (begin <= key < end),
 * in begin order.  fn must not modify the tree. */
typedef void (*itree_visit_fn)(itree_node *n, void *arg);
void itree_stab(const itree *t, const uint8_t *key, size_t key_len,
                itree_visit_fn fn, void *arg);

/* memcmp order of byte strings, shorter first on a common prefix. */
int itree_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Checks every invariant (BST order, red-black rules, max_end, parent links,
 * count).  Returns 0 if sound, else a negative code; for tests. */
int itree_check(const itree *t);

#endif
