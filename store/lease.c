/*
 * lease.c — the lessor: lease table + expiry heap (lease_table.c) under one
 * mutex, loaded from the "lease" column family at open, and the expiry
 * thread that turns due leases into revokes through the committer.  See
 * lease.h for the on-disk layout and the locking.
 *
 * What etcd 3.4 does and this reproduces:
 *   - keepalive only moves the expiry (in memory, not persisted);
 *   - on start every lease gets a full TTL again, plus etcd's election
 *     timeout (etcd's Promote(electionTimeout) refreshes all leases when a
 *     member becomes leader, which a restarted single member always does;
 *     observed: a 20 s lease with 15 s left reads 20 s after a restart), so
 *     a restart extends leases, never loses them;
 *   - a lease past its expiry can no longer be kept alive: it waits for its
 *     revoke (keepalive answers "not found", TTL 0 on the wire).
 * What it does better: etcd checks expiries every 500 ms; the thread here
 * sleeps exactly until the next expiry, so keys go within milliseconds of
 * the TTL (plus the commit).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kvstore_int.h"
#include "lease.h"
#include "lease_table.h"
#include "log.h"
#include "revision.h"

/* ---- timing constants (one place; why each value) ----------------------
 * A failed expiry revoke (I/O error, out of memory) is retried after this
 * long: the lease stays (its keys too) until a revoke succeeds, and once a
 * second keeps a broken disk from being hammered.  A variable so the unit
 * tests can shorten it. */
#define LEASE_RETRY_MS_DEFAULT 1000
/* Added to every lease's TTL when the store opens: etcd's Promote(
 * electionTimeout), 1 s with etcd's default --election-timeout (what a
 * restarted single etcd member does when it becomes leader). */
#define LEASE_PROMOTE_EXTEND_MS_DEFAULT 1000
/* "leases expired" lines: at most one per second (one per batch of up to
 * LEASE_MAX_DUE), so a mass expiry (clients gone together) does not flood
 * the log; the batches in between are counted on the next line. */
#define LEASE_EXPIRY_LOG_INTERVAL_MS 1000
/* "expiry revoke failed" lines: a broken disk fails every lease's revoke
 * every LEASE_RETRY_MS: at most one line per 10 s (the first at once),
 * with the count of failures left out. */
#define LEASE_REVOKE_FAIL_LOG_INTERVAL_MS 10000
/* Leases taken from the heap per pass of the expiry thread (a stack array):
 * the lock is dropped between passes so grants and keep-alives go on
 * during a mass expiry. */
#define LEASE_MAX_DUE 256

int lease_retry_ms = LEASE_RETRY_MS_DEFAULT;
int lease_promote_extend_ms = LEASE_PROMOTE_EXTEND_MS_DEFAULT;

struct lessor {
    kvstore *s;            /* borrowed: revokes go to its committer */
    pthread_mutex_t mu;
    pthread_cond_t cond;   /* CLOCK_MONOTONIC; the table changed or stop */
    lease_table t;
    bool stop;
    pthread_t thread;
    bool started;
    uint64_t id_prefix, id_suffix; /* committer only */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lease_rec_key(uint8_t out[LEASE_REC_KEY_LEN], int64_t id)
{
    out[0] = LEASE_REC_PREFIX;
    be64_put(out + 1, (uint64_t)id);
}

size_t lease_attach_key(uint8_t *out, int64_t id, const uint8_t *key, size_t klen)
{
    out[0] = LEASE_KEY_PREFIX;
    be64_put(out + 1, (uint64_t)id);
    out[9] = 0;
    if (klen)
        memcpy(out + LEASE_ATTACH_PFX_LEN, key, klen);
    return LEASE_ATTACH_PFX_LEN + klen;
}

void lease_end_key(uint8_t *out, int64_t id)
{
    out[0] = LEASE_KEY_PREFIX;
    be64_put(out + 1, (uint64_t)id);
    out[9] = 1;
}

lessor *lessor_open(backend *be, kvstore *s, char **errmsg)
{
    lessor *l = calloc(1, sizeof *l);
    *errmsg = NULL;
    if (!l || lease_table_init(&l->t) < 0) {
        free(l);
        *errmsg = strdup("out of memory loading the lease table");
        return NULL;
    }
    l->s = s;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);

    uint16_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
        rnd = (uint16_t)now_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    l->id_prefix = (uint64_t)rnd << 48;
    l->id_suffix = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) << 24;

    backend_iter *it = backend_iter_new(be, NULL, BE_CF_LEASE);
    if (!it)
        goto nomem;
    uint8_t first = LEASE_REC_PREFIX;
    int64_t now = now_ms();
    kv_err e = KV_OK;
    for (backend_iter_seek(it, &first, 1); backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = backend_iter_key(it, &kl);
        const uint8_t *v = backend_iter_value(it, &vl);
        if (kl < 1 || k[0] != LEASE_REC_PREFIX)
            break;
        if (kl != LEASE_REC_KEY_LEN || vl != 8) {
            e = KV_ERR_IO;
            break;
        }
        int64_t id = (int64_t)be64_get(k + 1), ttl = (int64_t)be64_get(v);
        int64_t exp = now + ttl * 1000 + lease_promote_extend_ms;
        if (lease_table_get(&l->t, id) || !lease_table_add(&l->t, id, ttl, exp)) {
            e = KV_ERR_NOMEM;
            break;
        }
    }
    if (!e)
        e = backend_iter_status(it);
    backend_iter_free(it);
    if (e) {
        if (asprintf(errmsg, "cannot load the lease table: %s", kv_err_name(e)) < 0)
            *errmsg = NULL;
        lessor_free(l);
        return NULL;
    }
    return l;
nomem:
    *errmsg = strdup("out of memory loading the lease table");
    lessor_free(l);
    return NULL;
}

void lessor_free(lessor *l)
{
    if (!l)
        return;
    lessor_stop(l);
    lease_table_free(&l->t);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}

/* ---- expiry ---- */

typedef struct revoke_ctx {
    lessor *l;
    int64_t id;
} revoke_ctx;

/* Committer thread.  On success lessor_revoked already dropped the lease;
 * not found: someone revoked it first; closing: nothing to do.  Anything
 * else (I/O) and the lease is still there: try again later. */
static void expiry_revoke_done(void *arg, kv_response *resp)
{
    revoke_ctx *rc = arg;
    kv_err e = resp->err;
    kv_response_free(resp);
    if (e == KV_OK)
        atomic_fetch_add_explicit(&rc->l->s->st_leases_expired, 1, memory_order_relaxed);
    if (e != KV_OK && e != KV_ERR_LEASE_NOT_FOUND && e != KV_ERR_CLOSED) {
        static log_ratelimit rl = LOG_RATELIMIT_INIT;
        uint64_t skipped;
        if (log_enabled(LOG_WARN) &&
            log_ratelimit_allow(&rl, LEASE_REVOKE_FAIL_LOG_INTERVAL_MS, &skipped))
            log_printf(LOG_WARN, "lease",
                       "expiry revoke failed, retrying id=%lld err=%s retry_ms=%d suppressed=%llu",
                       (long long)rc->id, kv_err_name(e), lease_retry_ms,
                       (unsigned long long)skipped);
        lessor *l = rc->l;
        pthread_mutex_lock(&l->mu);
        lease_entry *le = lease_table_get(&l->t, rc->id);
        if (le && le->expiring)
            lease_table_set_expiry(&l->t, le, now_ms() + lease_retry_ms);
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
    }
    free(rc);
}

static void submit_revoke(lessor *l, int64_t id)
{
    kv_request *req = calloc(1, sizeof *req);
    revoke_ctx *rc = malloc(sizeof *rc);
    if (!req || !rc) {
        free(req);
        free(rc);
        pthread_mutex_lock(&l->mu);
        lease_entry *le = lease_table_get(&l->t, id);
        if (le && le->expiring)
            lease_table_set_expiry(&l->t, le, now_ms() + lease_retry_ms);
        pthread_mutex_unlock(&l->mu);
        return;
    }
    req->kind = KV_REQ_LEASE_REVOKE;
    req->lease.id = id;
    req->lease.expired = true;
    rc->l = l;
    rc->id = id;
    kvstore_submit(l->s, req, expiry_revoke_done, rc);
}

static void *expiry_main(void *arg)
{
    lessor *l = arg;
    int64_t due[LEASE_MAX_DUE];
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        size_t n = 0;
        int64_t now = now_ms();
        lease_entry *e;
        while (n < LEASE_MAX_DUE && (e = lease_table_pop_expired(&l->t, now)))
            due[n++] = e->id;
        if (n) {
            pthread_mutex_unlock(&l->mu);
            /* LEASE_EXPIRY_LOG_INTERVAL_MS */
            static log_ratelimit rl = LOG_RATELIMIT_INIT;
            uint64_t skipped;
            if (log_enabled(LOG_INFO) &&
                log_ratelimit_allow(&rl, LEASE_EXPIRY_LOG_INTERVAL_MS, &skipped))
                log_printf(LOG_INFO, "lease", "leases expired count=%zu first_id=%lld suppressed_batches=%llu",
                           n, (long long)due[0], (unsigned long long)skipped);
            for (size_t i = 0; i < n; i++)
                submit_revoke(l, due[i]);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        e = lease_table_peek(&l->t);
        if (!e) {
            pthread_cond_wait(&l->cond, &l->mu);
            continue;
        }
        struct timespec ts = {.tv_sec = e->expiry_ms / 1000,
                              .tv_nsec = (long)(e->expiry_ms % 1000) * 1000000};
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int lessor_start(lessor *l)
{
    if (pthread_create(&l->thread, NULL, expiry_main, l) != 0)
        return -1;
    l->started = true;
    return 0;
}

void lessor_stop(lessor *l)
{
    if (!l || !l->started)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->started = false;
}

/* ---- committer side ---- */

void lessor_granted(lessor *l, int64_t id, int64_t ttl)
{
    pthread_mutex_lock(&l->mu);
    lease_entry *e = lease_table_get(&l->t, id);
    int64_t exp = now_ms() + ttl * 1000;
    if (e) {
        e->ttl = ttl;
        lease_table_set_expiry(&l->t, e, exp);
    } else if (!lease_table_add(&l->t, id, ttl, exp)) {
        /* out of memory: the lease is on disk and comes back at the next
         * start; until then it cannot expire or be kept alive */
        fprintf(stderr, "kvstore: out of memory adding lease %lld\n", (long long)id);
    }
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

void lessor_revoked(lessor *l, int64_t id)
{
    pthread_mutex_lock(&l->mu);
    lease_table_remove(&l->t, id);
    pthread_mutex_unlock(&l->mu);
}

int64_t lessor_next_id(lessor *l)
{
    uint64_t suffix = ++l->id_suffix & ((1ULL << 48) - 1);
    int64_t id = (int64_t)((l->id_prefix | suffix) & (uint64_t)INT64_MAX);
    return id ? id : lessor_next_id(l);
}

/* ---- any thread ---- */

kv_err lessor_renew(lessor *l, int64_t id, int64_t *ttl)
{
    kv_err err = KV_ERR_LEASE_NOT_FOUND;
    pthread_mutex_lock(&l->mu);
    lease_entry *e = lease_table_get(&l->t, id);
    if (e && !e->expiring) {
        lease_table_set_expiry(&l->t, e, now_ms() + e->ttl * 1000);
        *ttl = e->ttl;
        err = KV_OK;
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

bool lessor_is_expiring(lessor *l, int64_t id)
{
    pthread_mutex_lock(&l->mu);
    lease_entry *e = lease_table_get(&l->t, id);
    bool r = e && e->expiring;
    pthread_mutex_unlock(&l->mu);
    return r;
}

kv_err lessor_ttl(lessor *l, int64_t id, int64_t *granted, int64_t *left)
{
    kv_err err = KV_ERR_LEASE_NOT_FOUND;
    pthread_mutex_lock(&l->mu);
    lease_entry *e = lease_table_get(&l->t, id);
    if (e) {
        int64_t ms = e->expiring ? 0 : e->expiry_ms - now_ms();
        *granted = e->ttl;
        /* etcd truncates time.Until(expiry) to seconds, and some time
         * always passed since the grant: a fresh 60 s lease says 59 */
        *left = ms > 0 ? (ms - 1) / 1000 : 0;
        err = KV_OK;
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

kv_err lessor_list(lessor *l, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    pthread_mutex_lock(&l->mu);
    size_t cnt = l->t.count;
    int64_t *a = cnt ? malloc(cnt * sizeof *a) : NULL;
    if (cnt && !a) {
        pthread_mutex_unlock(&l->mu);
        return KV_ERR_NOMEM;
    }
    if (cnt)
        lease_table_ids(&l->t, a, cnt);
    pthread_mutex_unlock(&l->mu);
    if (cnt)
        qsort(a, cnt, sizeof *a, cmp_id);
    *ids = a;
    *n = cnt;
    return KV_OK;
}

size_t lessor_count(lessor *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->t.count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ---- kv.h: the public lease calls ---- */

kv_err kvstore_lease_renew(kvstore *s, int64_t id, int64_t *ttl)
{
    return lessor_renew(s->lessor, id, ttl);
}

void kv_lease_info_free(kv_lease_info *li)
{
    if (!li)
        return;
    for (size_t i = 0; i < li->n_keys; i++)
        kv_bytes_free(&li->keys[i]);
    free(li->keys);
    li->keys = NULL;
    li->n_keys = 0;
}

/* The keys attached to `id` in the committed state, in key order. */
static kv_err attached_keys(kvstore *s, int64_t id, kv_lease_info *out)
{
    uint8_t pfx[LEASE_ATTACH_PFX_LEN];
    size_t cap = 0;
    kv_err err = KV_OK;
    lease_attach_key(pfx, id, NULL, 0);
    backend_iter *it = backend_iter_new(s->be, NULL, BE_CF_LEASE);
    if (!it)
        return KV_ERR_NOMEM;
    for (backend_iter_seek(it, pfx, sizeof pfx); backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl;
        const uint8_t *k = backend_iter_key(it, &kl);
        if (kl < sizeof pfx || memcmp(k, pfx, sizeof pfx) != 0)
            break;
        if (out->n_keys == cap) {
            size_t nc = cap ? cap * 2 : 8;
            kv_bytes *na = realloc(out->keys, nc * sizeof *na);
            if (!na) {
                err = KV_ERR_NOMEM;
                break;
            }
            out->keys = na;
            cap = nc;
        }
        kv_bytes *b = &out->keys[out->n_keys];
        memset(b, 0, sizeof *b);
        if (kv_bytes_set(b, k + sizeof pfx, kl - sizeof pfx) < 0) {
            err = KV_ERR_NOMEM;
            break;
        }
        out->n_keys++;
    }
    if (!err)
        err = backend_iter_status(it);
    backend_iter_free(it);
    return err;
}

kv_err kvstore_lease_timetolive(kvstore *s, int64_t id, bool with_keys, kv_lease_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = id;
    kv_err err = lessor_ttl(s->lessor, id, &out->granted_ttl, &out->ttl);
    if (!err && with_keys)
        err = attached_keys(s, id, out);
    if (err)
        kv_lease_info_free(out);
    return err;
}

kv_err kvstore_lease_list(kvstore *s, int64_t **ids, size_t *n)
{
    return lessor_list(s->lessor, ids, n);
}
