/*
 * compactor.c — physical compaction in the background (etcd's
 * kvstore_compaction.go + keyIndex.compact, without holding any store lock).
 *
 * The committer makes a compaction at C durable (META_COMPACT) and publishes
 * it; from then on reads below C fail.  This thread then removes, per key,
 * every version superseded at or before C: walking the "index" family in
 * key order, for each key the newest entry with main <= C is kept unless it
 * is a tombstone, and every older entry is deleted, from "index" and "rev".
 *
 * Invariants that keep concurrent reads at R >= C exact:
 *   - nothing above C is touched, and the kept entry is the one a read at
 *     R >= C can reach when nothing newer <= R exists;
 *   - a key's versions are deleted oldest first (batches are atomic and
 *     written in order), so at any moment what remains of a key is a suffix
 *     of its history: a tombstone that is itself removed goes last, and a
 *     reader never sees an older put "resurface" from under it.
 * Work is cut in batches of opts.compaction_batch deletions; after each key
 * that ends a batch the batch also records META_COMPACT_CURSOR = (C, key),
 * so a restart resumes there.  When done, META_COMPACT_DONE = C and the
 * physical=true waiters are answered.  A newer target restarts the walk
 * from the start (deleting is idempotent).
 *
 * Locking: cmu guards c_target, c_done, waiters, cstop (kvstore_int.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "key_index.h"
#include "kvstore_int.h"
#include "log.h"
#include "revision.h"

void (*compactor_batch_hook)(kvstore *s);

/* After a failed pass (an I/O error: disk full, a read error) the compactor
 * tries again after this long: soon enough that compaction resumes within
 * a second of the disk recovering, rare enough not to spin on a disk that
 * stays broken (a pass restarts from its cursor, so a retry is cheap). */
#define COMPACTOR_RETRY_MS 1000
/* A failure that persists fails every retry: its log line is written at
 * most once per this interval, with the number of failures in between
 * (the first failure is always logged at once). */
#define COMPACTOR_FAIL_LOG_INTERVAL_MS 10000

typedef struct ver {
    int64_t main_rev, sub_rev;
} ver;

static int64_t target_now(kvstore *s, bool *stop)
{
    pthread_mutex_lock(&s->cmu);
    int64_t t = s->c_target;
    *stop = s->cstop;
    pthread_mutex_unlock(&s->cmu);
    return t;
}

static kv_err flush(kvstore *s, backend_batch *wb)
{
    if (backend_batch_count(wb) == 0)
        return KV_OK;
    kv_err e = backend_batch_write(s->be, wb, false);
    backend_batch_clear(wb);
    void (*hook)(kvstore *) = __atomic_load_n(&compactor_batch_hook, __ATOMIC_ACQUIRE);
    if (!e && hook)
        hook(s);
    return e;
}

static void put_cursor(backend_batch *wb, int64_t c, const uint8_t *esc, size_t el)
{
    uint8_t *v = malloc(8 + el);
    if (!v)
        return; /* progress is an optimization */
    be64_put(v, (uint64_t)c);
    memcpy(v + 8, esc, el);
    backend_batch_put(wb, BE_CF_META, META_COMPACT_CURSOR, strlen(META_COMPACT_CURSOR), v, 8 + el);
    free(v);
}

/* Deletes one version from both families. */
static void del_version(backend_batch *wb, const uint8_t *esc, size_t el, uint8_t *kbuf,
                        const ver *v)
{
    memcpy(kbuf, esc, el);
    revision_encode_inv(kbuf + el, v->main_rev, v->sub_rev);
    backend_batch_delete(wb, BE_CF_INDEX, kbuf, el + REV_KEY_LEN);
    uint8_t rk[REV_KEY_LEN];
    revision_encode(rk, v->main_rev, v->sub_rev);
    backend_batch_delete(wb, BE_CF_REV, rk, sizeof rk);
}

/* One pass at target c.  Returns KV_OK when finished, 1 if interrupted
 * (new target or stop), or an error. */
static int run(kvstore *s, int64_t c)
{
    backend_batch *wb = backend_batch_new(s->be, false);
    uint8_t *start = NULL, *pre = NULL, *kbuf = NULL;
    size_t start_len = 0, pre_cap = 0;
    ver *vs = NULL;
    size_t nv = 0, capv = 0, pending = 0;
    int ret = KV_OK;
    if (!wb)
        return KV_ERR_NOMEM;

    /* resume? */
    char *cv = NULL;
    size_t cl = 0;
    bool found = false;
    if (backend_get(s->be, NULL, BE_CF_META, META_COMPACT_CURSOR, strlen(META_COMPACT_CURSOR),
                    &cv, &cl, &found) == KV_OK && found) {
        if (cl > 8 && (int64_t)be64_get((const uint8_t *)cv) == c) {
            start_len = cl - 8 + REV_KEY_LEN;
            start = malloc(start_len);
            if (start) {
                memcpy(start, cv + 8, cl - 8);
                memset(start + cl - 8, 0xFF, REV_KEY_LEN); /* past that key */
            }
        }
        backend_free(cv);
    }

    for (;;) {
        backend_iter *it = backend_iter_new(s->be, NULL, BE_CF_INDEX);
        bool batch_full = false;
        if (!it) {
            ret = KV_ERR_NOMEM;
            goto out;
        }
        if (start)
            backend_iter_seek(it, start, start_len);
        else
            backend_iter_seek_first(it);
        while (backend_iter_valid(it) && !batch_full) {
            size_t kl, vl;
            const uint8_t *k = backend_iter_key(it, &kl);
            const uint8_t *v = backend_iter_value(it, &vl);
            if (kl < REV_KEY_LEN + 2) {
                ret = KV_ERR_IO;
                break;
            }
            size_t el = kl - REV_KEY_LEN;
            if (el + REV_KEY_LEN > pre_cap) {
                pre_cap = 2 * (el + REV_KEY_LEN);
                uint8_t *np = realloc(pre, pre_cap);
                uint8_t *nk = realloc(kbuf, pre_cap);
                if (np)
                    pre = np;
                if (nk)
                    kbuf = nk;
                if (!np || !nk) {
                    ret = KV_ERR_NOMEM;
                    break;
                }
            }
            memcpy(pre, k, el);
            /* this key's versions, newest first: skip those above c */
            nv = 0;
            bool keep_tomb = false, have_keep = false;
            for (;;) {
                int64_t m, sub;
                key_index_val iv;
                revision_decode_inv(k + el, &m, &sub);
                if (key_index_val_decode(v, vl, &iv) < 0) {
                    ret = KV_ERR_IO;
                    break;
                }
                if (m <= c) {
                    if (!have_keep) {
                        have_keep = true;
                        keep_tomb = iv.tombstone;
                    }
                    if (nv == capv) {
                        capv = capv ? capv * 2 : 16;
                        ver *nvs = realloc(vs, capv * sizeof *vs);
                        if (!nvs) {
                            ret = KV_ERR_NOMEM;
                            break;
                        }
                        vs = nvs;
                    }
                    vs[nv].main_rev = m;
                    vs[nv].sub_rev = sub;
                    nv++;
                } else {
                    /* jump to the newest version <= c */
                    memcpy(kbuf, pre, el);
                    revision_encode_inv(kbuf + el, c, -1);
                    backend_iter_seek(it, kbuf, el + REV_KEY_LEN);
                    goto same_key_check;
                }
                backend_iter_next(it);
            same_key_check:
                if (!backend_iter_valid(it))
                    break;
                k = backend_iter_key(it, &kl);
                v = backend_iter_value(it, &vl);
                if (kl != el + REV_KEY_LEN || memcmp(k, pre, el) != 0)
                    break;
            }
            if (ret)
                break;
            /* vs[0] is the keeper; delete vs[nv-1] .. vs[1] (oldest first),
             * then vs[0] if it is a tombstone */
            size_t ndel_end = keep_tomb ? 0 : 1;
            for (size_t i = nv; i > ndel_end; i--) {
                del_version(wb, pre, el, kbuf, &vs[i - 1]);
                if (++pending >= s->opts.compaction_batch && i - 1 > ndel_end) {
                    /* split inside a key: safe, oldest first */
                    if ((ret = flush(s, wb)))
                        break;
                    pending = 0;
                }
            }
            if (ret)
                break;
            if (pending >= s->opts.compaction_batch) {
                put_cursor(wb, c, pre, el);
                if ((ret = flush(s, wb)))
                    break;
                pending = 0;
                batch_full = true;
                free(start);
                start_len = el + REV_KEY_LEN;
                start = malloc(start_len);
                if (!start) {
                    ret = KV_ERR_NOMEM;
                    break;
                }
                memcpy(start, pre, el);
                memset(start + el, 0xFF, REV_KEY_LEN);
            }
        }
        if (!ret && !batch_full)
            ret = backend_iter_status(it);
        backend_iter_free(it);
        if (ret)
            goto out;
        if (!batch_full)
            break; /* walked everything */
        bool stop;
        if (target_now(s, &stop) != c || stop) {
            ret = 1;
            goto out;
        }
    }
    /* done */
    uint8_t d[8];
    be64_put(d, (uint64_t)c);
    backend_batch_delete(wb, BE_CF_META, META_COMPACT_CURSOR, strlen(META_COMPACT_CURSOR));
    backend_batch_put(wb, BE_CF_META, META_COMPACT_DONE, strlen(META_COMPACT_DONE), d, 8);
    ret = flush(s, wb);
out:
    backend_batch_free(wb);
    free(start);
    free(pre);
    free(kbuf);
    free(vs);
    return ret;
}

static void answer(kvstore *s, compact_waiter *w, kv_err err)
{
    w->resp->err = err;
    w->resp->header_revision = kvstore_rev(s);
    w->done(w->arg, w->resp);
    free(w);
}

static void *compactor_main(void *arg)
{
    kvstore *s = arg;
    pthread_mutex_lock(&s->cmu);
    for (;;) {
        while (!s->cstop && s->c_target <= s->c_done)
            pthread_cond_wait(&s->ccond, &s->cmu);
        if (s->cstop)
            break;
        int64_t c = s->c_target;
        pthread_mutex_unlock(&s->cmu);
        int r = run(s, c);
        if (r == KV_OK) {
            atomic_fetch_add_explicit(&s->st_compactions, 1, memory_order_relaxed);
            log_printf(LOG_INFO, "store", "compaction finished rev=%lld", (long long)c);
        } else if (r != 1) {
            static log_ratelimit rl = LOG_RATELIMIT_INIT;
            uint64_t skipped;
            if (log_ratelimit_allow(&rl, COMPACTOR_FAIL_LOG_INTERVAL_MS, &skipped))
                log_printf(LOG_ERROR, "store",
                           "compaction failed, retrying every %dms rev=%lld err=%s suppressed=%llu",
                           COMPACTOR_RETRY_MS, (long long)c, kv_err_name((kv_err)r),
                           (unsigned long long)skipped);
        }
        pthread_mutex_lock(&s->cmu);
        if (r == KV_OK) {
            if (c > s->c_done)
                s->c_done = c;
            compact_waiter **pp = &s->waiters, *ready = NULL;
            while (*pp) {
                compact_waiter *w = *pp;
                if (w->rev <= s->c_done) {
                    *pp = w->next;
                    w->next = ready;
                    ready = w;
                } else {
                    pp = &w->next;
                }
            }
            pthread_mutex_unlock(&s->cmu);
            while (ready) {
                compact_waiter *w = ready;
                ready = w->next;
                answer(s, w, KV_OK);
            }
            pthread_mutex_lock(&s->cmu);
        } else if (r != 1 && !s->cstop) {
            /* I/O error: retry later */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += COMPACTOR_RETRY_MS / 1000;
            ts.tv_nsec += (long)(COMPACTOR_RETRY_MS % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->ccond, &s->cmu, &ts);
        }
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

int compactor_start(kvstore *s)
{
    return pthread_create(&s->compactor, NULL, compactor_main, s) == 0 ? 0 : -1;
}

void compactor_stop(kvstore *s)
{
    pthread_mutex_lock(&s->cmu);
    s->cstop = true;
    pthread_cond_broadcast(&s->ccond);
    pthread_mutex_unlock(&s->cmu);
    pthread_join(s->compactor, NULL);
    compact_waiter *w = s->waiters;
    s->waiters = NULL;
    while (w) {
        compact_waiter *n = w->next;
        answer(s, w, KV_ERR_CLOSED);
        w = n;
    }
}

void compactor_schedule(kvstore *s, int64_t rev)
{
    log_printf(LOG_INFO, "store", "compaction scheduled rev=%lld", (long long)rev);
    pthread_mutex_lock(&s->cmu);
    if (rev > s->c_target)
        s->c_target = rev;
    pthread_cond_signal(&s->ccond);
    pthread_mutex_unlock(&s->cmu);
}

void compactor_wait(kvstore *s, int64_t rev, kvstore_done_fn done, void *arg, kv_response *resp)
{
    compact_waiter *w = malloc(sizeof *w);
    if (!w) {
        resp->err = KV_ERR_NOMEM;
        done(arg, resp);
        return;
    }
    w->rev = rev;
    w->done = done;
    w->arg = arg;
    w->resp = resp;
    pthread_mutex_lock(&s->cmu);
    if (s->c_done >= rev) {
        pthread_mutex_unlock(&s->cmu);
        answer(s, w, KV_OK);
        return;
    }
    w->next = s->waiters;
    s->waiters = w;
    pthread_mutex_unlock(&s->cmu);
}
