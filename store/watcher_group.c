/*
 * watcher_group.c — see watcher_group.h.
 *
 * Invariants: every member is on the all-list exactly once; a single-key
 * member is either a head (sprev == NULL, linked in bucket hash & mask) or
 * on its head's same-key list; heads of one bucket have distinct keys; the
 * table never shrinks and grows when heads outnumber buckets (a failed
 * growth only lengthens chains, so adding never fails).
 */
#include "watcher_group.h"

#include <stdlib.h>
#include <string.h>

enum { WG_INITIAL_BUCKETS = 16 };

/* FNV-1a: keys are short and this is not exposed to hash flooding beyond
 * what a client could do by opening watchers anyway (a bad bucket costs
 * that client's own writes a longer chain walk). */
static uint64_t key_hash(const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

void wg_member_set(wg_member *m, const uint8_t *key, size_t key_len,
                   const uint8_t *end, size_t end_len, bool end_inf)
{
    memset(m, 0, sizeof *m);
    m->key = key;
    m->key_len = key_len;
    m->is_range = end_inf || end_len > 0;
    if (m->is_range)
        itree_node_set(&m->u.node, key, key_len, end, end_len, end_inf);
    else
        m->u.k.hash = key_hash(key, key_len);
}

bool wg_member_contains(const wg_member *m, const uint8_t *key, size_t key_len)
{
    if (!m->is_range)
        return m->key_len == key_len && (key_len == 0 || memcmp(m->key, key, key_len) == 0);
    const itree_node *n = &m->u.node;
    return itree_bytes_cmp(n->begin, n->begin_len, key, key_len) <= 0 &&
           (n->end_inf || itree_bytes_cmp(key, key_len, n->end, n->end_len) < 0);
}

int watcher_group_init(watcher_group *g)
{
    memset(g, 0, sizeof *g);
    g->buckets = calloc(WG_INITIAL_BUCKETS, sizeof *g->buckets);
    if (!g->buckets)
        return -1;
    g->nbuckets = WG_INITIAL_BUCKETS;
    itree_init(&g->ranges);
    return 0;
}

void watcher_group_destroy(watcher_group *g)
{
    free(g->buckets);
    g->buckets = NULL;
    g->nbuckets = 0;
}

static void bucket_link(wg_member **slot, wg_member *h)
{
    h->u.k.bnext = *slot;
    if (*slot)
        (*slot)->u.k.bpprev = &h->u.k.bnext;
    h->u.k.bpprev = slot;
    *slot = h;
}

static void bucket_unlink(wg_member *h)
{
    *h->u.k.bpprev = h->u.k.bnext;
    if (h->u.k.bnext)
        h->u.k.bnext->u.k.bpprev = h->u.k.bpprev;
}

static void grow(watcher_group *g)
{
    size_t n = g->nbuckets * 2;
    wg_member **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < g->nbuckets; i++) {
        wg_member *h = g->buckets[i];
        while (h) {
            wg_member *next = h->u.k.bnext;
            bucket_link(&nb[h->u.k.hash & (n - 1)], h);
            h = next;
        }
    }
    free(g->buckets);
    g->buckets = nb;
    g->nbuckets = n;
}

static wg_member *find_head(const watcher_group *g, uint64_t hash, const uint8_t *key,
                            size_t key_len)
{
    for (wg_member *h = g->buckets[hash & (g->nbuckets - 1)]; h; h = h->u.k.bnext)
        if (h->u.k.hash == hash && h->key_len == key_len &&
            (key_len == 0 || memcmp(h->key, key, key_len) == 0))
            return h;
    return NULL;
}

void watcher_group_add(watcher_group *g, wg_member *m)
{
    m->all_next = NULL;
    m->all_prev = g->all_tail;
    if (g->all_tail)
        g->all_tail->all_next = m;
    else
        g->all_head = m;
    g->all_tail = m;
    g->count++;

    if (m->is_range) {
        itree_insert(&g->ranges, &m->u.node);
        return;
    }
    wg_member *h = find_head(g, m->u.k.hash, m->key, m->key_len);
    if (h) {
        /* join the same-key list right after the head */
        m->u.k.sprev = h;
        m->u.k.snext = h->u.k.snext;
        if (h->u.k.snext)
            h->u.k.snext->u.k.sprev = m;
        h->u.k.snext = m;
        m->u.k.bnext = NULL;
        m->u.k.bpprev = NULL;
        return;
    }
    if (g->nheads >= g->nbuckets)
        grow(g);
    m->u.k.sprev = m->u.k.snext = NULL;
    bucket_link(&g->buckets[m->u.k.hash & (g->nbuckets - 1)], m);
    g->nheads++;
}

void watcher_group_remove(watcher_group *g, wg_member *m)
{
    if (m->all_prev)
        m->all_prev->all_next = m->all_next;
    else
        g->all_head = m->all_next;
    if (m->all_next)
        m->all_next->all_prev = m->all_prev;
    else
        g->all_tail = m->all_prev;
    m->all_prev = m->all_next = NULL;
    g->count--;

    if (m->is_range) {
        itree_remove(&g->ranges, &m->u.node);
        return;
    }
    if (m->u.k.sprev) { /* not a head */
        m->u.k.sprev->u.k.snext = m->u.k.snext;
        if (m->u.k.snext)
            m->u.k.snext->u.k.sprev = m->u.k.sprev;
        return;
    }
    wg_member *next = m->u.k.snext;
    if (!next) {
        bucket_unlink(m);
        g->nheads--;
        return;
    }
    /* promote the next same-key member to head, in m's bucket position */
    next->u.k.sprev = NULL;
    next->u.k.bnext = m->u.k.bnext;
    next->u.k.bpprev = m->u.k.bpprev;
    *m->u.k.bpprev = next;
    if (m->u.k.bnext)
        m->u.k.bnext->u.k.bpprev = &next->u.k.bnext;
}

void watcher_group_to_tail(watcher_group *g, wg_member *m)
{
    if (g->all_tail == m)
        return;
    if (m->all_prev)
        m->all_prev->all_next = m->all_next;
    else
        g->all_head = m->all_next;
    m->all_next->all_prev = m->all_prev;
    m->all_prev = g->all_tail;
    m->all_next = NULL;
    g->all_tail->all_next = m;
    g->all_tail = m;
}

typedef struct stab_ctx {
    wg_visit_fn fn;
    void *arg;
} stab_ctx;

static void stab_visit(itree_node *n, void *arg)
{
    stab_ctx *c = arg;
    /* node is the first field of the union inside wg_member */
    wg_member *m = (wg_member *)((char *)n - offsetof(wg_member, u.node));
    c->fn(m, c->arg);
}

void watcher_group_match(const watcher_group *g, const uint8_t *key, size_t key_len,
                         wg_visit_fn fn, void *arg)
{
    if (g->nheads) {
        wg_member *h = find_head(g, key_hash(key, key_len), key, key_len);
        for (wg_member *m = h; m; m = m->u.k.snext)
            fn(m, arg);
    }
    if (g->ranges.root) {
        stab_ctx c = {fn, arg};
        itree_stab(&g->ranges, key, key_len, stab_visit, &c);
    }
}
