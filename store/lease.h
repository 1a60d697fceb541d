/*
 * lease.h — the store's lessor (lease.c): the lease table in memory, its
 * expiry thread, and the layout of the "lease" column family.  Internal to
 * store/; the public calls are kvstore_lease_* in kv.h.
 *
 * "lease" column family (ids as 8-byte big-endian two's complement):
 *
 *   key                         value
 *   'L' id(8)                   granted TTL, 8-byte big-endian seconds
 *   'K' id(8) 0x00 key-bytes    empty: `key` is attached to lease `id`
 *   'K' id(8) 0x01              empty: end marker of lease `id`'s keys
 *
 * All are written only by the committer, in the same batch (and fsync) as
 * the puts, deletes and revision they go with, so the attachments always
 * match the keys' current `lease` fields.  'K' entries make a revoke
 * O(keys of the lease) (a prefix scan, already in key order, which is the
 * order etcd deletes them in) and keep start-up independent of the number
 * of keys: start-up reads the 'L' entries only.  The end marker lives as
 * long as the lease: a prefix scan stops on it instead of stepping over the
 * tombstones of other leases' revoked entries that follow (RocksDB iterators
 * skip deleted keys one by one: without it, revoking n leases in a row
 * costs O(n^2)).
 *
 * Expiry: each lease expires at (grant or last keepalive) + TTL, or at
 * store open + TTL + lease_promote_extend_ms.  The expiry thread sleeps until the earliest expiry in the heap,
 * pops every lease due, and submits one KV_REQ_LEASE_REVOKE per lease to
 * the committer; their deletes reach watchers through the commit hook.
 *
 * Locks: lessor.mu guards the table and the thread's stop flag.  It is a
 * leaf: nothing else is locked while it is held (the expiry thread submits
 * its revokes after unlocking).
 */
#ifndef KVGATE_LEASE_H
#define KVGATE_LEASE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "kv.h"

#define LEASE_REC_PREFIX 'L'
#define LEASE_KEY_PREFIX 'K'
#define LEASE_REC_KEY_LEN 9
#define LEASE_ATTACH_PFX_LEN 10 /* 'K' id 0x00 */

typedef struct lessor lessor;

/* Tunables (tests shrink them). */
extern int lease_retry_ms; /* a failed expiry revoke is retried after this */
extern int lease_promote_extend_ms; /* added to every TTL at open (etcd: 1 s) */

/* 'L' id */
void lease_rec_key(uint8_t out[LEASE_REC_KEY_LEN], int64_t id);
/* 'K' id 0x00 key; out must hold LEASE_ATTACH_PFX_LEN + klen bytes; returns
 * the length (klen 0: the prefix of the lease's attachments). */
size_t lease_attach_key(uint8_t *out, int64_t id, const uint8_t *key, size_t klen);
/* 'K' id 0x01; out holds LEASE_ATTACH_PFX_LEN bytes. */
void lease_end_key(uint8_t *out, int64_t id);

/* Reads the 'L' entries of `be`; every lease expires TTL from now.  NULL on
 * failure with *errmsg a new malloc'd message. */
lessor *lessor_open(backend *be, kvstore *s, char **errmsg);
int lessor_start(lessor *l);  /* the expiry thread; 0 or -1 */
void lessor_stop(lessor *l);  /* joins it; NULL ok */
void lessor_free(lessor *l);  /* NULL ok */

/* Committer thread, after the batch carrying them is durable. */
void lessor_granted(lessor *l, int64_t id, int64_t ttl);
void lessor_revoked(lessor *l, int64_t id);
/* Committer thread: a fresh id for an auto-assigned grant (etcd's idutil
 * generator shape: 16 random bits, then a counter seeded by the clock;
 * positive).  The caller checks it is free. */
int64_t lessor_next_id(lessor *l);

kv_err lessor_renew(lessor *l, int64_t id, int64_t *ttl);
/* Is `id` in the table and past its expiry (its revoke under way)? */
bool lessor_is_expiring(lessor *l, int64_t id);
/* Granted TTL and seconds left; KV_ERR_LEASE_NOT_FOUND if absent. */
kv_err lessor_ttl(lessor *l, int64_t id, int64_t *granted, int64_t *left);
kv_err lessor_list(lessor *l, int64_t **ids, size_t *n);
size_t lessor_count(lessor *l);

#endif
