/*
 * store_compact.c — compaction: etcd's key_index.go walkthrough (compact at
 * a put, at a tombstone, keys with several generations), the errors and
 * edges of KV_REQ_COMPACT, physical removal checked against snapshots taken
 * before it (with tiny batches and a concurrent reader), and resuming an
 * interrupted compaction after a restart.
 */
#include <pthread.h>
#include <time.h>

#include "backend.h"
#include "key_index.h"
#include "kvstore_int.h"
#include "store_testutil.h"
#include "testhelp.h"

/* revisions of the entries of `key` in the index family, newest first,
 * as "5,4t,3" */
static const char *index_of(kvstore *s, const char *key)
{
    static char buf[4096];
    uint8_t esc[256];
    size_t el = key_index_escape(esc, (const uint8_t *)key, strlen(key));
    backend_iter *it = backend_iter_new(s->be, NULL, BE_CF_INDEX);
    buf[0] = 0;
    backend_iter_seek(it, esc, el);
    for (; backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = backend_iter_key(it, &kl);
        const uint8_t *v = backend_iter_value(it, &vl);
        if (kl != el + 16 || memcmp(k, esc, el))
            break;
        int64_t m, sub;
        key_index_val iv;
        revision_decode_inv(k + el, &m, &sub);
        key_index_val_decode(v, vl, &iv);
        char one[64];
        snprintf(one, sizeof one, "%s%lld%s", buf[0] ? "," : "", (long long)m, iv.tombstone ? "t" : "");
        strcat(buf, one);
    }
    backend_iter_free(it);
    return buf;
}

static size_t count_cf(kvstore *s, int cf)
{
    size_t n = 0;
    backend_iter *it = backend_iter_new(s->be, NULL, cf);
    for (backend_iter_seek_first(it); backend_iter_valid(it); backend_iter_next(it))
        n++;
    backend_iter_free(it);
    return n;
}

static int64_t c_done(kvstore *s)
{
    pthread_mutex_lock(&s->cmu);
    int64_t d = s->c_done;
    pthread_mutex_unlock(&s->cmu);
    return d;
}

static bool wait_done(kvstore *s, int64_t rev)
{
    for (int i = 0; i < 1000; i++) {
        if (c_done(s) >= rev)
            return true;
        usleep(10000);
    }
    return false;
}

/* the whole keyspace at rev as one string */
static char *snapshot(kvstore *s, int64_t rev)
{
    kv_range_req q = {0};
    kv_range_resp r;
    int64_t h;
    kv_bytes_set(&q.key, "", 1);
    kv_bytes_set(&q.range_end, "", 1);
    q.revision = rev;
    kv_err e = kvstore_range(s, &q, &r, &h);
    kv_range_req_free(&q);
    if (e)
        return strdup(kv_err_name(e));
    size_t cap = 64 + r.n_kvs * 96, o = 0;
    char *out = malloc(cap);
    o += (size_t)snprintf(out + o, cap - o, "n=%lld;", (long long)r.count);
    for (size_t i = 0; i < r.n_kvs; i++) {
        kv_keyvalue *kv = &r.kvs[i];
        o += (size_t)snprintf(out + o, cap - o, "%.*s=%.*s/%lld/%lld/%lld;", (int)kv->key.len,
                              (const char *)kv->key.data, (int)kv->value.len,
                              (const char *)kv->value.data, (long long)kv->create_revision,
                              (long long)kv->mod_revision, (long long)kv->version);
    }
    kv_range_resp_free(&r);
    return out;
}

typedef struct reader_arg {
    kvstore *s;
    char **snaps;
    int64_t from, to;
    int stop;
    int mismatches, reads;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        for (int64_t r = a->from; r <= a->to && !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE); r++) {
            char *x = snapshot(a->s, r);
            if (strcmp(x, a->snaps[r]))
                a->mismatches++;
            __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELEASE);
            free(x);
        }
    }
    return NULL;
}

static void slow_batch(kvstore *s)
{
    (void)s;
    usleep(200);
}

static int batches_seen;
static void fail_after_first(kvstore *s)
{
    (void)s;
    if (__atomic_add_fetch(&batches_seen, 1, __ATOMIC_SEQ_CST) == 2)
        __atomic_store_n(&backend_fail_writes, 1000000, __ATOMIC_SEQ_CST);
}

int main(void)
{
    char *dir = tu_tmpdir();
    kvstore *s = tu_open(dir, NULL);

    TEST("compact errors and edges") {
        int64_t deleted;
        CHECK_EQ_INT(tu_compact(s, 2, false), -(int64_t)KV_ERR_FUTURE_REV);
        CHECK_EQ_INT(tu_compact(s, 0, false), 1); /* etcd: allowed on a fresh store */
        CHECK_EQ_INT(kvstore_compact_rev(s), 0);
        CHECK_EQ_INT(tu_compact(s, 0, false), -(int64_t)KV_ERR_COMPACTED);
        CHECK_EQ_INT(tu_compact(s, 1, true), 1);
        CHECK_EQ_INT(tu_compact(s, 1, false), -(int64_t)KV_ERR_COMPACTED);
        CHECK_EQ_INT(kvstore_rev(s), 1);
        /* the walkthrough: foo put 2, put 3, del 4, put 5, del 6; bar keeps revs coming */
        tu_put(s, "foo", "2");
        tu_put(s, "foo", "3");
        tu_del(s, "foo", NULL, &deleted);
        tu_put(s, "foo", "5");
        tu_del(s, "foo", NULL, &deleted);
        tu_put(s, "bar", "7");
        tu_put(s, "bar", "8");
        CHECK_EQ_STR(index_of(s, "foo"), "6t,5,4t,3,2");
        CHECK_EQ_INT(tu_compact(s, 9, false), -(int64_t)KV_ERR_FUTURE_REV);
    }
    TEST("compact at a put keeps it (etcd compact(2))") {
        CHECK_EQ_INT(tu_compact(s, 3, true), 8);
        CHECK_EQ_INT(kvstore_compact_rev(s), 3);
        CHECK_EQ_STR(index_of(s, "foo"), "6t,5,4t,3");
        CHECK_EQ_STR(tu_get(s, "foo", 3), "3");
        CHECK_EQ_STR(tu_get(s, "foo", 4), "<none>");
        CHECK_EQ_STR(tu_get(s, "foo", 5), "5");
        CHECK_EQ_STR(tu_get(s, "foo", 2), "<ERR>");
        kv_range_resp r;
        CHECK(tu_range(s, "foo", NULL, 2, &r) == KV_ERR_COMPACTED);
        CHECK(tu_range(s, "foo", NULL, 3, &r) == KV_OK); /* == compact rev allowed */
        kv_range_resp_free(&r);
        kv_event *evs;
        size_t n;
        int64_t next;
        /* as etcd: below the compaction revision is compacted, the
         * compaction revision itself is readable (its put is kept) */
        CHECK(kvstore_read_events(s, 2, 8, 0, &evs, &n, &next) == KV_ERR_COMPACTED);
        CHECK(kvstore_read_events(s, 3, 8, 0, &evs, &n, &next) == KV_OK && n == 6);
        CHECK(n && evs[0].kv.mod_revision == 3 && evs[0].type == KV_EVENT_PUT);
        kv_events_free(evs, n);
        CHECK(kvstore_read_events(s, 4, 8, 0, &evs, &n, &next) == KV_OK && n == 5);
        kv_events_free(evs, n);
        kv_keyvalue kv;
        bool found;
        CHECK(kvstore_get_at(s, (const uint8_t *)"foo", 3, 2, &kv, &found) == KV_ERR_COMPACTED);
    }
    TEST("compact at a tombstone removes it and everything older (etcd compact(4))") {
        CHECK_EQ_INT(tu_compact(s, 4, true), 8);
        CHECK_EQ_STR(index_of(s, "foo"), "6t,5");
        CHECK_EQ_STR(tu_get(s, "foo", 4), "<none>");
        CHECK_EQ_STR(tu_get(s, "foo", 5), "5");
    }
    TEST("compact past the last tombstone removes the key (etcd compact(5), (6))") {
        CHECK_EQ_INT(tu_compact(s, 5, true), 8);
        CHECK_EQ_STR(index_of(s, "foo"), "6t,5");
        CHECK_EQ_INT(tu_compact(s, 7, true), 8);
        CHECK_EQ_STR(index_of(s, "foo"), "");
        CHECK_EQ_STR(index_of(s, "bar"), "8,7");
        CHECK_EQ_INT(tu_compact(s, 8, true), 8);
        CHECK_EQ_STR(index_of(s, "bar"), "8");
        CHECK_EQ_INT(count_cf(s, BE_CF_REV), 1);
        CHECK_EQ_INT(count_cf(s, BE_CF_INDEX), 1);
        CHECK_EQ_STR(tu_get(s, "bar", 8), "8");
    }
    TEST("restart keeps the compaction point") {
        kvstore_close(s);
        s = tu_open(dir, NULL);
        CHECK_EQ_INT(kvstore_compact_rev(s), 8);
        CHECK_EQ_INT(kvstore_rev(s), 8);
        CHECK_EQ_INT(tu_compact(s, 8, false), -(int64_t)KV_ERR_COMPACTED);
        CHECK_EQ_STR(tu_get(s, "bar", 0), "8");
    }
    kvstore_close(s);
    tu_rmrf(dir);
    free(dir);

    /* randomized history, compaction in tiny batches, concurrent reader */
    TEST("physical compaction keeps every read at >= C exact") {
        dir = tu_tmpdir();
        kvstore_opts o;
        kvstore_opts_default(&o);
        o.compaction_batch = 3;
        s = tu_open(dir, &o);
        srand(42);
        for (int i = 0; i < 400; i++) {
            char k[16], v[16];
            snprintf(k, sizeof k, "k%02d", rand() % 15);
            snprintf(v, sizeof v, "v%d", i);
            int64_t d;
            if (rand() % 5 == 0)
                tu_del(s, k, rand() % 3 ? NULL : "k10", &d);
            else
                tu_put(s, k, v);
        }
        int64_t cur = kvstore_rev(s);
        char **snaps = calloc((size_t)cur + 1, sizeof *snaps);
        for (int64_t r = 1; r <= cur; r++)
            snaps[r] = snapshot(s, r);
        kv_event *all;
        size_t nall;
        int64_t next;
        CHECK(kvstore_read_events(s, 1, cur, 0, &all, &nall, &next) == KV_OK);
        int64_t C = cur / 2;
        reader_arg ra = {.s = s, .snaps = snaps, .from = C, .to = cur};
        pthread_t th;
        __atomic_store_n(&compactor_batch_hook, slow_batch, __ATOMIC_RELEASE);
        pthread_create(&th, NULL, reader, &ra);
        /* the reader must be reading while the compactor runs: wait for
         * its first reads (a loaded machine may not schedule it at once) */
        for (int i = 0; i < 2000 && __atomic_load_n(&ra.reads, __ATOMIC_ACQUIRE) < 3; i++)
            usleep(1000);
        CHECK_EQ_INT(tu_compact(s, C, true), cur);
        __atomic_store_n(&ra.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        __atomic_store_n(&compactor_batch_hook, NULL, __ATOMIC_RELEASE);
        CHECK_EQ_INT(ra.mismatches, 0);
        CHECK(ra.reads > 0);
        for (int64_t r = C; r <= cur; r++) {
            char *x = snapshot(s, r);
            if (strcmp(x, snaps[r]))
                fprintf(stderr, "rev %lld differs\n", (long long)r);
            CHECK(strcmp(x, snaps[r]) == 0);
            free(x);
        }
        for (int64_t r = 1; r < C; r++) {
            char *x = snapshot(s, r);
            CHECK_EQ_STR(x, "KV_ERR_COMPACTED");
            free(x);
        }
        /* events above C unchanged */
        kv_event *evs;
        size_t n;
        CHECK(kvstore_read_events(s, C + 1, cur, 0, &evs, &n, &next) == KV_OK);
        size_t first = 0;
        while (first < nall && all[first].kv.mod_revision <= C)
            first++;
        CHECK_EQ_INT(n, nall - first);
        for (size_t i = 0; i < n && i + first < nall; i++) {
            kv_event *a = &all[i + first], *b = &evs[i];
            CHECK(a->type == b->type && a->kv.mod_revision == b->kv.mod_revision &&
                  a->kv.version == b->kv.version && a->kv.key.len == b->kv.key.len &&
                  a->kv.value.len == b->kv.value.len);
        }
        kv_events_free(evs, n);
        /* what remains: entries above C plus, per key, its live version at C */
        size_t above = nall - first, live_at_c = 0;
        kv_range_resp rr;
        kv_range_req q = {0};
        int64_t h;
        kv_bytes_set(&q.key, "", 1);
        kv_bytes_set(&q.range_end, "", 1);
        q.revision = C;
        q.keys_only = true;
        CHECK(kvstore_range(s, &q, &rr, &h) == KV_OK);
        for (size_t i = 0; i < rr.n_kvs; i++)
            live_at_c++;
        kv_range_resp_free(&rr);
        kv_range_req_free(&q);
        CHECK_EQ_INT(count_cf(s, BE_CF_REV), above + live_at_c);
        CHECK_EQ_INT(count_cf(s, BE_CF_INDEX), above + live_at_c);
        kv_events_free(all, nall);
        for (int64_t r = 1; r <= cur; r++)
            free(snaps[r]);
        free(snaps);
        kvstore_close(s);
        tu_rmrf(dir);
        free(dir);
    }
    TEST("an interrupted compaction resumes after a restart") {
        dir = tu_tmpdir();
        kvstore_opts o;
        kvstore_opts_default(&o);
        o.compaction_batch = 4;
        s = tu_open(dir, &o);
        for (int i = 0; i < 200; i++) {
            char k[16];
            snprintf(k, sizeof k, "r%03d", i % 40);
            tu_put(s, k, "x");
        }
        int64_t cur = kvstore_rev(s);
        char *want = snapshot(s, cur);
        batches_seen = 0;
        __atomic_store_n(&compactor_batch_hook, fail_after_first, __ATOMIC_RELEASE);
        CHECK_EQ_INT(tu_compact(s, cur - 1, false), cur);
        for (int i = 0; i < 200 && __atomic_load_n(&batches_seen, __ATOMIC_SEQ_CST) < 2; i++)
            usleep(5000);
        CHECK(__atomic_load_n(&batches_seen, __ATOMIC_SEQ_CST) >= 2);
        CHECK(c_done(s) < cur - 1);
        kvstore_close(s);
        __atomic_store_n(&compactor_batch_hook, NULL, __ATOMIC_RELEASE);
        __atomic_store_n(&backend_fail_writes, 0, __ATOMIC_SEQ_CST);
        s = tu_open(dir, &o);
        CHECK_EQ_INT(kvstore_compact_rev(s), cur - 1);
        CHECK(wait_done(s, cur - 1));
        CHECK_EQ_INT(count_cf(s, BE_CF_REV), 41); /* 40 keys + the one written at cur */
        char *got = snapshot(s, cur);
        CHECK_EQ_STR(got, want);
        free(got);
        free(want);
        kvstore_close(s);
        tu_rmrf(dir);
        free(dir);
    }
    TEST("a newer compaction while one runs") {
        dir = tu_tmpdir();
        kvstore_opts o;
        kvstore_opts_default(&o);
        o.compaction_batch = 2;
        s = tu_open(dir, &o);
        for (int i = 0; i < 100; i++) {
            char k[16];
            snprintf(k, sizeof k, "n%02d", i % 10);
            tu_put(s, k, "x");
        }
        __atomic_store_n(&compactor_batch_hook, slow_batch, __ATOMIC_RELEASE);
        CHECK_EQ_INT(tu_compact(s, 50, false), 101);
        CHECK_EQ_INT(tu_compact(s, 101, true), 101);
        __atomic_store_n(&compactor_batch_hook, NULL, __ATOMIC_RELEASE);
        CHECK_EQ_INT(count_cf(s, BE_CF_REV), 10);
        CHECK_EQ_INT(count_cf(s, BE_CF_INDEX), 10);
        kvstore_close(s);
        tu_rmrf(dir);
        free(dir);
    }
    return TEST_REPORT();
}
