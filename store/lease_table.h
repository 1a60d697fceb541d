/*
 * lease_table.h — the in-memory lease table: id -> lease, plus a binary
 * min-heap on expiry time (lease_table.c).  Pure: no threads, no clock, no
 * RocksDB; the lessor (lease.c) locks it and feeds it the time.
 *
 * Every lease is in the hash table; a lease is in the heap unless it is
 * "expiring" (popped by lease_table_pop_expired: its revoke is on its way
 * to the committer, and a keepalive no longer saves it, as in etcd where a
 * lease past its expiry only waits for its revoke).  Finding the next lease
 * to expire is O(1), popping one or moving its expiry O(log n), so the
 * expiry thread never scans the table.
 *
 * Ownership: the table owns its entries; lease_table_get returns a
 * borrowed pointer valid until the entry is removed.
 */
#ifndef KVGATE_LEASE_TABLE_H
#define KVGATE_LEASE_TABLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lease_entry {
    int64_t id;
    int64_t ttl;        /* granted TTL, seconds */
    int64_t expiry_ms;  /* on the caller's clock */
    size_t heap_idx;    /* LEASE_NOT_IN_HEAP while expiring */
    bool expiring;
    struct lease_entry *next; /* hash chain */
} lease_entry;

#define LEASE_NOT_IN_HEAP ((size_t)-1)

typedef struct lease_table {
    lease_entry **buckets;
    size_t nbuckets, count;
    lease_entry **heap;
    size_t nheap, capheap;
} lease_table;

int lease_table_init(lease_table *t); /* 0 or -1 (ENOMEM) */
void lease_table_free(lease_table *t); /* frees every entry */

lease_entry *lease_table_get(const lease_table *t, int64_t id); /* NULL if absent */
/* Adds a lease (the id must be absent) in the heap.  NULL on ENOMEM. */
lease_entry *lease_table_add(lease_table *t, int64_t id, int64_t ttl, int64_t expiry_ms);
/* Removes and frees; false if absent. */
bool lease_table_remove(lease_table *t, int64_t id);
/* New expiry; an expiring entry goes back into the heap. */
void lease_table_set_expiry(lease_table *t, lease_entry *e, int64_t expiry_ms);
/* The entry with the earliest expiry still in the heap, or NULL. */
lease_entry *lease_table_peek(const lease_table *t);
/* If the earliest entry has expiry_ms <= now: takes it out of the heap,
 * marks it expiring and returns it; else NULL. */
lease_entry *lease_table_pop_expired(lease_table *t, int64_t now_ms);
/* Writes up to max ids (any order) to out; returns the number of leases. */
size_t lease_table_ids(const lease_table *t, int64_t *out, size_t max);

#endif
