/*
 * kv.h — the store layer's one public header.
 *
 * kvgate's store is an MVCC revision store with etcd v3's semantics, kept in
 * RocksDB.  The gateway (HTTP/JSON/SSE) and the watchable layer include only
 * this header; nothing above store/ sees RocksDB.
 *
 * Model (as etcd's mvcc package):
 *   - The store revision starts at 1.  Every write transaction that changes
 *     something (put, delete that deletes, txn with effective writes) bumps it
 *     by one; the changes inside it get sub-revisions 0,1,2,...
 *   - Each key has create_revision, mod_revision, version (1 on creation, +1
 *     per put) and lease.  A delete ends the key's generation (tombstone).
 *   - Reads may ask for any revision in [compact_rev, current_rev].
 *
 * Threads:
 *   - kvstore_range / kvstore_get_at / kvstore_read_events / kvstore_rev /
 *     kvstore_compact_rev may be called from any thread, concurrently.
 *   - Every write (and every txn, even read-only) goes through
 *     kvstore_submit(): a single committer thread applies pending requests
 *     in arrival order, assigns consecutive revisions, writes one RocksDB
 *     batch with one fsync (group commit), publishes the new revision, calls
 *     the commit hook with the batch's events, and only then calls each
 *     request's completion callback.  So a response is sent only after its
 *     write is durable, and revision order = commit order.
 *
 * Ownership:
 *   - kv_bytes own their data (malloc'd); a NULL data with len 0 is "empty".
 *   - kvstore_submit() steals the request (frees it, also on failure).
 *   - The completion callback receives a new kv_response it must free with
 *     kv_response_free().
 *   - kv_*_free() functions free the contents of a struct, not the struct
 *     itself, unless they say otherwise.
 */
#ifndef KVGATE_KV_H
#define KVGATE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors, one-to-one with etcd's.  The gateway maps them to etcd's gRPC
 * code, message and HTTP status. */
typedef enum kv_err {
    KV_OK = 0,
    KV_ERR_COMPACTED,        /* mvcc: required revision has been compacted */
    KV_ERR_FUTURE_REV,       /* mvcc: required revision is a future revision */
    KV_ERR_KEY_NOT_FOUND,    /* key not found (ignore_value / ignore_lease) */
    KV_ERR_EMPTY_KEY,        /* key is not provided */
    KV_ERR_DUPLICATE_KEY,    /* duplicate key given in txn request */
    KV_ERR_TOO_MANY_OPS,     /* too many operations in txn request */
    KV_ERR_VALUE_PROVIDED,   /* value is provided (with ignore_value) */
    KV_ERR_LEASE_PROVIDED,   /* lease is provided (with ignore_lease) */
    KV_ERR_INVALID_SORT,     /* invalid sort option */
    KV_ERR_LEASE_NOT_FOUND,  /* requested lease not found */
    KV_ERR_LEASE_EXISTS,     /* lease already exists */
    KV_ERR_LEASE_TTL_TOO_LARGE, /* too large lease TTL */
    KV_ERR_NOSPACE,          /* the disk is full: nothing applied */
    KV_ERR_IO,               /* RocksDB failed: nothing applied */
    KV_ERR_CLOSED,           /* the store is shutting down */
    KV_ERR_NOMEM,
} kv_err;

const char *kv_err_name(kv_err e); /* static string, e.g. "KV_ERR_COMPACTED" */

typedef struct kv_bytes {
    uint8_t *data; /* owned; may be NULL when len == 0 */
    size_t len;
} kv_bytes;

typedef struct kv_keyvalue {
    kv_bytes key;
    kv_bytes value;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} kv_keyvalue;

/* Enum values are etcd's protobuf numbers. */
typedef enum { KV_SORT_NONE = 0, KV_SORT_ASCEND = 1, KV_SORT_DESCEND = 2 } kv_sort_order;
typedef enum {
    KV_SORT_KEY = 0, KV_SORT_VERSION = 1, KV_SORT_CREATE = 2,
    KV_SORT_MOD = 3, KV_SORT_VALUE = 4
} kv_sort_target;

/* Range end conventions as etcd: range_end empty = the single key `key`;
 * range_end == "\0" (one zero byte) = every key >= key ("from key");
 * key == "\0" and range_end == "\0" = all keys. */
typedef struct kv_range_req {
    kv_bytes key, range_end;
    int64_t limit;
    int64_t revision;            /* <= 0: current */
    int sort_order;              /* kv_sort_order; other values: KV_ERR_INVALID_SORT */
    int sort_target;             /* kv_sort_target; other values: KV_ERR_INVALID_SORT */
    bool serializable, keys_only, count_only;
    int64_t min_mod_revision, max_mod_revision;
    int64_t min_create_revision, max_create_revision;
} kv_range_req;

typedef struct kv_range_resp {
    kv_keyvalue *kvs;
    size_t n_kvs;
    bool more;
    int64_t count;
} kv_range_resp;

typedef struct kv_put_req {
    kv_bytes key, value;
    int64_t lease;
    bool prev_kv, ignore_value, ignore_lease;
} kv_put_req;

typedef struct kv_put_resp {
    kv_keyvalue *prev_kv; /* NULL unless asked for and the key existed */
} kv_put_resp;

typedef struct kv_delete_req {
    kv_bytes key, range_end;
    bool prev_kv;
} kv_delete_req;

typedef struct kv_delete_resp {
    int64_t deleted;
    kv_keyvalue *prev_kvs; /* only if prev_kv was asked */
    size_t n_prev_kvs;
} kv_delete_resp;

/* Compare, etcd numbering. */
typedef enum { KV_CMP_EQUAL = 0, KV_CMP_GREATER = 1, KV_CMP_LESS = 2, KV_CMP_NOT_EQUAL = 3 } kv_cmp_result;
typedef enum {
    KV_CMP_VERSION = 0, KV_CMP_CREATE = 1, KV_CMP_MOD = 2,
    KV_CMP_VALUE = 3, KV_CMP_LEASE = 4
} kv_cmp_target;

typedef struct kv_compare {
    int result;          /* kv_cmp_result */
    int target;          /* kv_cmp_target */
    kv_bytes key, range_end;
    int64_t number;      /* version / create_revision / mod_revision / lease */
    kv_bytes value;      /* for KV_CMP_VALUE */
} kv_compare;

typedef enum { KV_OP_RANGE = 0, KV_OP_PUT, KV_OP_DELETE, KV_OP_TXN } kv_op_type;

typedef struct kv_txn_req kv_txn_req;
typedef struct kv_txn_resp kv_txn_resp;

typedef struct kv_op {
    kv_op_type type;
    union {
        kv_range_req range;
        kv_put_req put;
        kv_delete_req del;
        kv_txn_req *txn; /* owned */
    } u;
} kv_op;

struct kv_txn_req {
    kv_compare *compare;
    size_t n_compare;
    kv_op *success;
    size_t n_success;
    kv_op *failure;
    size_t n_failure;
};

typedef struct kv_op_resp {
    kv_op_type type;
    int64_t header_revision; /* what etcd puts in this response's header */
    union {
        kv_range_resp range;
        kv_put_resp put;
        kv_delete_resp del;
        kv_txn_resp *txn; /* owned */
    } u;
} kv_op_resp;

struct kv_txn_resp {
    bool succeeded;
    kv_op_resp *responses;
    size_t n_responses;
};

typedef struct kv_compact_req {
    int64_t revision;
    bool physical; /* wait until the old versions are physically removed */
} kv_compact_req;

/* Leases (etcd's lessor).  A grant and a revoke go through the committer
 * like any write: a grant takes no revision; a revoke deletes the lease's
 * keys in one revision (none if it has no keys), as etcd's LeaseRevoke. */
#define KV_LEASE_MAX_TTL 9000000000LL /* etcd's MaxLeaseTTL, seconds */

typedef struct kv_lease_req {
    int64_t id;  /* grant: 0 = pick a free positive id */
    int64_t ttl; /* grant: seconds; below opts.lease_min_ttl is raised to it */
    bool expired; /* revoke by the store's expiry thread: applied only if the
                     lease is still the one that expired (not re-granted) */
} kv_lease_req;

typedef struct kv_lease_resp {
    int64_t id, ttl; /* grant: the id and the TTL granted */
} kv_lease_resp;

typedef enum { KV_REQ_OP = 0, KV_REQ_COMPACT, KV_REQ_LEASE_GRANT, KV_REQ_LEASE_REVOKE } kv_req_kind;

typedef struct kv_request {
    kv_req_kind kind;
    kv_op op;              /* KV_REQ_OP: a put, delete or txn (a range works too) */
    kv_compact_req compact;
    kv_lease_req lease;    /* KV_REQ_LEASE_* */
} kv_request;

typedef struct kv_response {
    kv_err err;
    int64_t header_revision; /* store revision after this request */
    kv_op_resp resp;         /* for KV_REQ_OP when err == KV_OK */
    kv_lease_resp lease;     /* for KV_REQ_LEASE_GRANT when err == KV_OK */
} kv_response;

/* Events as etcd's watch sends them.  A DELETE event's kv holds only key
 * and mod_revision (the deleting revision). */
typedef enum { KV_EVENT_PUT = 0, KV_EVENT_DELETE = 1 } kv_event_type;
typedef struct kv_event {
    kv_event_type type;
    kv_keyvalue kv;
} kv_event;

/* ---- freeing ---- */
void kv_bytes_free(kv_bytes *b);
int kv_bytes_set(kv_bytes *b, const void *data, size_t len); /* copies; 0 or -1 (ENOMEM) */
/* Byte-wise order of two byte strings (a prefix sorts first): <0, 0, >0. */
int kv_mem_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
void kv_keyvalue_free(kv_keyvalue *kv);
void kv_range_req_free(kv_range_req *r);
void kv_range_resp_free(kv_range_resp *r);
void kv_put_req_free(kv_put_req *r);
void kv_put_resp_free(kv_put_resp *r);
void kv_delete_req_free(kv_delete_req *r);
void kv_delete_resp_free(kv_delete_resp *r);
void kv_compare_free(kv_compare *c);
void kv_op_free(kv_op *op);
void kv_op_resp_free(kv_op_resp *r);
void kv_txn_req_free(kv_txn_req *t);   /* frees the struct too */
void kv_txn_resp_free(kv_txn_resp *t); /* frees the struct too */
void kv_request_free(kv_request *r);   /* frees the struct too; NULL ok */
void kv_response_free(kv_response *r); /* frees the struct too; NULL ok */
void kv_event_free(kv_event *ev);
void kv_events_free(kv_event *evs, size_t n); /* frees the array too */

/* ---- the store ---- */
typedef struct kvstore kvstore;

typedef struct kvstore_opts {
    size_t max_txn_ops;        /* etcd --max-txn-ops; default 128 */
    size_t block_cache_bytes;  /* default 64 MiB */
    bool sync_writes;          /* default true: fsync before acknowledging */
    size_t compaction_batch;   /* versions removed per background batch; default 1000 */
    int64_t lease_min_ttl;     /* etcd's minLeaseTTL (seconds); default 2 */
    bool in_memory;            /* RocksDB's in-memory env: `dir` is only a name,
                                * nothing touches the disk (kvgate --ephemeral) */
} kvstore_opts;

void kvstore_opts_default(kvstore_opts *o);

/* Opens or creates the store in `dir`.  On failure returns NULL and sets
 * *errmsg to a new malloc'd one-line message (the caller frees it): e.g. the
 * directory is not usable, is locked by another kvgate, or is corrupt.
 * Starts the committer and the background compactor threads. */
kvstore *kvstore_open(const char *dir, const kvstore_opts *opts, char **errmsg);

/* Stops accepting requests, finishes every request already submitted
 * (their callbacks run), stops the threads and closes RocksDB.  NULL ok. */
void kvstore_close(kvstore *s);

int64_t kvstore_rev(kvstore *s);         /* current (published) revision */
int64_t kvstore_compact_rev(kvstore *s); /* last compaction revision; 0 if none */
uint64_t kvstore_db_size(kvstore *s);    /* bytes on disk, approximate */

/* A read of the committed state; any thread.  On success fills *resp and
 * sets *header_rev to the current revision (as etcd's header). */
kv_err kvstore_range(kvstore *s, const kv_range_req *req, kv_range_resp *resp,
                     int64_t *header_rev);

/* The version of `key` visible at revision `rev` (its newest version with
 * mod_revision <= rev, unless that is a tombstone).  *found = false if none.
 * KV_ERR_COMPACTED if rev < compact_rev.  For prev_kv in watches. */
kv_err kvstore_get_at(kvstore *s, const uint8_t *key, size_t key_len, int64_t rev,
                      kv_keyvalue *out, bool *found);

/* Events with revision in [from_rev, to_rev], in (main, sub) order, as
 * stored.  Stops after the revision during which the event count reached
 * max_events (a revision is never split).  *n = 0 and *evs = NULL when none.
 * Sets *next_rev to the first revision not read (to_rev + 1 when all).
 * KV_ERR_COMPACTED if from_rev < compact_rev, as etcd (the compaction
 * revision itself is readable: its puts are kept, a delete at it is gone). */
kv_err kvstore_read_events(kvstore *s, int64_t from_rev, int64_t to_rev,
                           size_t max_events, kv_event **evs, size_t *n,
                           int64_t *next_rev);

/* The same, also stopping after the revision during which the events' key
 * and value bytes reached max_bytes (0: no byte bound), so a reader of big
 * values holds a bounded batch in memory (the watch sync loop). */
kv_err kvstore_read_events_max(kvstore *s, int64_t from_rev, int64_t to_rev,
                               size_t max_events, size_t max_bytes, kv_event **evs,
                               size_t *n, int64_t *next_rev);

/* Completion callback: runs on the committer thread after the request's
 * effects are durable (or it failed).  Must not block: hand the response to
 * the connection and wake it.  Owns `resp`. */
typedef void (*kvstore_done_fn)(void *arg, kv_response *resp);

/* Queues a request for the committer.  Steals `req`.  The callback always
 * runs exactly once (with err KV_ERR_CLOSED if the store is closing). */
void kvstore_submit(kvstore *s, kv_request *req, kvstore_done_fn done, void *arg);

/* Synchronous convenience wrapper around kvstore_submit (tests, tools). */
kv_response *kvstore_do(kvstore *s, kv_request *req);

/* Commit hook for the watchable layer: called on the committer thread, after
 * the batch is durable and kvstore_rev() already returns `rev_to`, before the
 * completion callbacks run.  `evs` (borrowed, valid only during the call)
 * are the batch's events in revision order, covering revisions
 * (rev_from, rev_to].  Must not block for long.
 * kvstore_set_commit_hook installs fn (NULL: none) and returns only once no
 * call to the previous hook is running; the previous hook is never called
 * after it returns, so its caller may free the old arg.  It waits for the
 * hook: do not call it holding a lock the hook takes.  Called from inside
 * the hook it swaps without waiting. */
typedef void (*kvstore_commit_fn)(void *arg, int64_t rev_to, const kv_event *evs,
                                  size_t n);
void kvstore_set_commit_hook(kvstore *s, kvstore_commit_fn fn, void *arg);

/* ---- leases (store/lease.c) ----
 * The lease table lives in the "lease" column family (see lease.h) and in
 * memory (TTL, expiry, an expiry heap).  An expired lease is revoked through
 * the committer (KV_REQ_LEASE_REVOKE) by the store's expiry thread, so its
 * keys' DELETE events reach watchers like any delete.  After a restart every
 * lease expires TTL + 1 seconds after the store opened (etcd refreshes
 * leases the same way when it becomes leader: TTL + election timeout).  These calls may be made from
 * any thread and never wait for the committer. */

/* etcd's LeaseKeepAlive: the lease now expires TTL seconds from now; *ttl
 * = its TTL.  KV_ERR_LEASE_NOT_FOUND if it does not exist (or expired and
 * awaits its revoke). */
kv_err kvstore_lease_renew(kvstore *s, int64_t id, int64_t *ttl);

typedef struct kv_lease_info {
    int64_t id;
    int64_t ttl;          /* whole seconds left (never below 0) */
    int64_t granted_ttl;
    kv_bytes *keys;       /* owned; in key order; only when asked */
    size_t n_keys;
} kv_lease_info;

/* etcd's LeaseTimeToLive.  KV_ERR_LEASE_NOT_FOUND if none. */
kv_err kvstore_lease_timetolive(kvstore *s, int64_t id, bool with_keys, kv_lease_info *out);
void kv_lease_info_free(kv_lease_info *li); /* the contents; NULL ok */

/* etcd's LeaseLeases: every lease id, ascending.  *ids: new malloc'd array
 * (NULL when none), free with free(). */
kv_err kvstore_lease_list(kvstore *s, int64_t **ids, size_t *n);

/* ---- operational counters (kvgate's /metrics) ----
 * Cumulative since open, read lock-free (relaxed atomics written by the
 * committer and the compactor); the fields are not a consistent snapshot of
 * one instant, which counters do not need.  Group-commit batch sizes
 * (requests per committed batch) are counted in power-of-two buckets:
 * batch_sizes[i] counts batches of size <= 2^i and > 2^(i-1), the last
 * bucket everything above 2^(KVSTORE_BATCH_BUCKETS-2). */
#define KVSTORE_BATCH_BUCKETS 12
typedef struct kvstore_stats {
    uint64_t commits;        /* batches applied (each one RocksDB write, if it wrote) */
    uint64_t fsyncs;         /* of which written with sync (durable writes) */
    uint64_t commit_failures;/* batches failed by an I/O or memory error */
    uint64_t requests;       /* requests applied (sum of batch sizes) */
    uint64_t batch_sizes[KVSTORE_BATCH_BUCKETS]; /* per bucket, not cumulative */
    uint64_t compactions;    /* physical compactions finished */
    uint64_t leases_expired; /* leases revoked by expiry */
    size_t leases;           /* leases now */
} kvstore_stats;
void kvstore_get_stats(kvstore *s, kvstore_stats *out);

/* ---- maintenance (store/maintenance.c) ---- */

/* Requests the committer has applied since the store was created (the
 * stand-in for etcd's raft index); persisted with each batch that writes. */
int64_t kvstore_applied_index(kvstore *s);
/* Live data estimate, <= kvstore_db_size (etcd's dbSizeInUse). */
uint64_t kvstore_db_size_in_use(kvstore *s);
/* CRC-32C (Castagnoli, as etcd's Hash) over the history ("rev" family) and
 * the lease table, in key order: equal contents give equal hashes.  A full
 * scan: call it off the request threads.  *rev: the revision it covers. */
kv_err kvstore_hash(kvstore *s, uint32_t *hash, int64_t *rev);
/* Manual compaction of every column family (etcd's Defragment).  Slow. */
kv_err kvstore_defragment(kvstore *s);

#endif
