/*
 * lease_table.c — hash table (chained, power-of-two buckets, grown at load
 * factor 1) and expiry min-heap of leases; see lease_table.h.
 *
 * Heap invariant: for every i > 0, heap[(i-1)/2]->expiry_ms <=
 * heap[i]->expiry_ms, and heap[i]->heap_idx == i.
 */
#include <stdlib.h>
#include <string.h>

#include "lease_table.h"

/* Initial sizes: a store with a few dozen leases never grows; both double
 * when full (buckets: a power of two, see hash_id; grown at load 1). */
#define LEASE_TABLE_INITIAL_BUCKETS 64
#define LEASE_HEAP_INITIAL_CAP 64

static size_t hash_id(int64_t id, size_t nbuckets)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (size_t)(x & (nbuckets - 1));
}

int lease_table_init(lease_table *t)
{
    memset(t, 0, sizeof *t);
    t->nbuckets = LEASE_TABLE_INITIAL_BUCKETS;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    return t->buckets ? 0 : -1;
}

void lease_table_free(lease_table *t)
{
    if (!t->buckets)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        lease_entry *e = t->buckets[i];
        while (e) {
            lease_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(t->buckets);
    free(t->heap);
    memset(t, 0, sizeof *t);
}

lease_entry *lease_table_get(const lease_table *t, int64_t id)
{
    for (lease_entry *e = t->buckets[hash_id(id, t->nbuckets)]; e; e = e->next)
        if (e->id == id)
            return e;
    return NULL;
}

/* ---- heap ---- */

static void heap_set(lease_table *t, size_t i, lease_entry *e)
{
    t->heap[i] = e;
    e->heap_idx = i;
}

static void sift_up(lease_table *t, size_t i)
{
    lease_entry *e = t->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (t->heap[p]->expiry_ms <= e->expiry_ms)
            break;
        heap_set(t, i, t->heap[p]);
        i = p;
    }
    heap_set(t, i, e);
}

static void sift_down(lease_table *t, size_t i)
{
    lease_entry *e = t->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = e->expiry_ms;
        if (l < t->nheap && t->heap[l]->expiry_ms < best) {
            m = l;
            best = t->heap[l]->expiry_ms;
        }
        if (l + 1 < t->nheap && t->heap[l + 1]->expiry_ms < best)
            m = l + 1;
        if (m == i)
            break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, e);
}

static int heap_push(lease_table *t, lease_entry *e)
{
    if (t->nheap == t->capheap) {
        size_t nc = t->capheap ? t->capheap * 2 : LEASE_HEAP_INITIAL_CAP;
        lease_entry **nh = realloc(t->heap, nc * sizeof *nh);
        if (!nh)
            return -1;
        t->heap = nh;
        t->capheap = nc;
    }
    heap_set(t, t->nheap++, e);
    sift_up(t, t->nheap - 1);
    return 0;
}

static void heap_remove(lease_table *t, lease_entry *e)
{
    size_t i = e->heap_idx;
    if (i == LEASE_NOT_IN_HEAP)
        return;
    e->heap_idx = LEASE_NOT_IN_HEAP;
    lease_entry *last = t->heap[--t->nheap];
    if (i == t->nheap)
        return;
    heap_set(t, i, last);
    sift_up(t, i);
    sift_down(t, last->heap_idx);
}

/* ---- table ---- */

static void rehash(lease_table *t)
{
    size_t nb = t->nbuckets * 2;
    lease_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the old size: slower, still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        lease_entry *e = t->buckets[i];
        while (e) {
            lease_entry *n = e->next;
            size_t h = hash_id(e->id, nb);
            e->next = b[h];
            b[h] = e;
            e = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

lease_entry *lease_table_add(lease_table *t, int64_t id, int64_t ttl, int64_t expiry_ms)
{
    lease_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->id = id;
    e->ttl = ttl;
    e->expiry_ms = expiry_ms;
    e->heap_idx = LEASE_NOT_IN_HEAP;
    if (heap_push(t, e) < 0) {
        free(e);
        return NULL;
    }
    if (t->count >= t->nbuckets)
        rehash(t);
    size_t h = hash_id(id, t->nbuckets);
    e->next = t->buckets[h];
    t->buckets[h] = e;
    t->count++;
    return e;
}

bool lease_table_remove(lease_table *t, int64_t id)
{
    lease_entry **pp = &t->buckets[hash_id(id, t->nbuckets)];
    for (; *pp; pp = &(*pp)->next) {
        lease_entry *e = *pp;
        if (e->id != id)
            continue;
        *pp = e->next;
        heap_remove(t, e);
        t->count--;
        free(e);
        return true;
    }
    return false;
}

void lease_table_set_expiry(lease_table *t, lease_entry *e, int64_t expiry_ms)
{
    e->expiry_ms = expiry_ms;
    if (e->heap_idx == LEASE_NOT_IN_HEAP) {
        if (heap_push(t, e) == 0)
            e->expiring = false;
        return;
    }
    sift_up(t, e->heap_idx);
    sift_down(t, e->heap_idx);
}

lease_entry *lease_table_peek(const lease_table *t)
{
    return t->nheap ? t->heap[0] : NULL;
}

lease_entry *lease_table_pop_expired(lease_table *t, int64_t now_ms)
{
    lease_entry *e = lease_table_peek(t);
    if (!e || e->expiry_ms > now_ms)
        return NULL;
    heap_remove(t, e);
    e->expiring = true;
    return e;
}

size_t lease_table_ids(const lease_table *t, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (lease_entry *e = t->buckets[i]; e; e = e->next) {
            if (n < max)
                out[n] = e->id;
            n++;
        }
    return n;
}
