/*
 * kvstore_int.h — the store object shared by kvstore.c (reads, committer)
 * and compactor.c.  Not for use outside store/.
 *
 * Locks (lock order: qmu before cmu; never held while calling RocksDB,
 * except cmu around nothing but the compactor's own state):
 *   qmu  guards the request queue (qhead/qtail), closing, hook/hook_arg,
 *        hook_busy.  The committer calls the hook without qmu, with
 *        hook_busy set; kvstore_set_commit_hook waits on hook_cond until it
 *        is clear, so after a swap the old hook is neither running nor
 *        called again.
 *   cmu  guards the compactor's target/done revisions, its waiters, cstop.
 * Published state (rev, compact_main) is read lock-free with atomics; only
 * the committer writes it.
 */
#ifndef KVGATE_KVSTORE_INT_H
#define KVGATE_KVSTORE_INT_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "kv.h"
#include "lease.h"

/* Keys of the "meta" column family; values are 8-byte big-endian unless
 * said otherwise. */
#define META_FORMAT "format"          /* "kvgate1" */
#define META_REV "rev"                /* store revision (last committed) */
#define META_COMPACT "compact"        /* scheduled compaction revision */
#define META_COMPACT_DONE "compact_done" /* physically finished through */
#define META_COMPACT_CURSOR "compact_cursor" /* escaped key resumed from */
#define META_APPLIED "applied"        /* requests applied (status raftIndex) */
#define META_FORMAT_VALUE "kvgate1"

typedef struct kvstore_pending kvstore_pending;

typedef struct compact_waiter {
    struct compact_waiter *next;
    int64_t rev;
    kvstore_done_fn done;
    void *arg;
    kv_response *resp;
} compact_waiter;

struct kvstore {
    backend *be;
    kvstore_opts opts;

    /* published, atomic */
    int64_t rev;
    int64_t compact_main; /* -1: never compacted (as etcd's compactMainRev) */
    int64_t applied;      /* requests applied (kvstore_applied_index) */

    lessor *lessor;       /* lease table and expiry thread (lease.c) */

    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    kvstore_pending *qhead, *qtail;
    bool closing;
    kvstore_commit_fn hook;
    void *hook_arg;
    bool hook_busy;         /* the committer is inside hook(hook_arg, ...) */
    pthread_cond_t hook_cond; /* signalled when hook_busy clears */
    pthread_t committer;
    bool committer_started;

    /* compactor (compactor.c) */
    pthread_mutex_t cmu;
    pthread_cond_t ccond;
    int64_t c_target;   /* newest scheduled compaction */
    int64_t c_done;     /* physically done through this revision */
    bool cstop;
    compact_waiter *waiters;
    pthread_t compactor;
    bool compactor_started;

    /* operational counters (kvstore_get_stats): relaxed atomics, written
     * once per batch by the committer (per compaction by the compactor), so
     * they cost nothing per request */
    _Atomic uint64_t st_commits, st_fsyncs, st_commit_failures, st_requests,
        st_compactions, st_leases_expired;
    _Atomic uint64_t st_batch[KVSTORE_BATCH_BUCKETS];
};

/* compactor.c */
int compactor_start(kvstore *s);
void compactor_stop(kvstore *s); /* fails remaining waiters with KV_ERR_CLOSED */
void compactor_schedule(kvstore *s, int64_t rev);
/* Calls done(arg, resp) once compaction through rev is physically done
 * (possibly right away, on this thread). Steals resp. */
void compactor_wait(kvstore *s, int64_t rev, kvstore_done_fn done, void *arg, kv_response *resp);

/* Test hook: called by the compactor after each batch it writes. */
extern void (*compactor_batch_hook)(kvstore *s);

#endif
