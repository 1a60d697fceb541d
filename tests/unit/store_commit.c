/*
 * store_commit.c — the committer: group commit under many concurrent
 * submitters (revisions consecutive, no holes, hook before callbacks, in
 * revision order), batches mixing failing and good requests, write failures
 * (nothing applied, the store keeps working), close draining the queue,
 * durability across a restart, hook swaps waiting for a running call.
 */
#include <pthread.h>

#include "backend.h"
#include "store_testutil.h"
#include "testhelp.h"

#define NTHREADS 8
#define PER_THREAD 300

static kvstore *S;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int64_t hook_last;      /* last rev the hook saw */
static int64_t hook_calls, hook_events, hook_bad;
static int64_t *seen;          /* seen[rev] = times a callback reported rev */
static int64_t cb_done, cb_bad;
static bool hook_block, hook_blocked;

static void hook(void *arg, int64_t rev_to, const kv_event *evs, size_t n)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    if (kvstore_rev(S) != rev_to)
        hook_bad++;
    for (size_t i = 0; i < n; i++) {
        int64_t r = evs[i].kv.mod_revision;
        if (r < hook_last || r > rev_to || (r > hook_last + 1 && !(i && r == evs[i - 1].kv.mod_revision)))
            if (r != hook_last + 1)
                hook_bad++;
        hook_last = r;
    }
    if (hook_last != rev_to)
        hook_bad++;
    hook_calls++;
    hook_events += (int64_t)n;
    while (hook_block) {
        hook_blocked = true;
        pthread_cond_broadcast(&cv);
        pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
}

static void on_done(void *arg, kv_response *r)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    if (r->err != KV_OK || r->header_revision > hook_last || r->header_revision < 2)
        cb_bad++;
    else
        seen[r->header_revision]++;
    cb_done++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    kv_response_free(r);
}

static void *submitter(void *p)
{
    long id = (long)p;
    for (int i = 0; i < PER_THREAD; i++) {
        char k[32];
        snprintf(k, sizeof k, "t%ld/%d", id, i % 17);
        if (i % 3 == 0) {
            int64_t rev = tu_put(S, k, "sync");
            pthread_mutex_lock(&mu);
            if (rev < 2)
                cb_bad++;
            else
                seen[rev]++;
            cb_done++;
            pthread_mutex_unlock(&mu);
        } else {
            kvstore_submit(S, tu_req_op(op_put(k, "async")), on_done, NULL);
        }
    }
    return NULL;
}

typedef struct res {
    kv_err err;
    int64_t rev;
    bool done;
} res;

static void on_res(void *arg, kv_response *r)
{
    res *x = arg;
    pthread_mutex_lock(&mu);
    x->err = r->err;
    x->rev = r->header_revision;
    x->done = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    kv_response_free(r);
}

static void wait_res(res *x, int n)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!x[i].done)
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

/* Makes the committer block inside the hook of a put, so that what is
 * submitted meanwhile forms the next batch. */
static void block_committer(void)
{
    pthread_mutex_lock(&mu);
    hook_block = true;
    hook_blocked = false;
    pthread_mutex_unlock(&mu);
    kvstore_submit(S, tu_req_op(op_put("blocker", "x")), on_done, NULL);
    pthread_mutex_lock(&mu);
    while (!hook_blocked)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void release_committer(void)
{
    pthread_mutex_lock(&mu);
    hook_block = false;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static bool swap_returned;
static int64_t hook2_calls;

static void hook2(void *arg, int64_t rev_to, const kv_event *evs, size_t n)
{
    (void)arg; (void)rev_to; (void)evs; (void)n;
    pthread_mutex_lock(&mu);
    hook2_calls++;
    pthread_mutex_unlock(&mu);
}

static void *swap_hook_thread(void *arg)
{
    (void)arg;
    kvstore_set_commit_hook(S, hook2, NULL);
    pthread_mutex_lock(&mu);
    swap_returned = true;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void self_removing_hook(void *arg, int64_t rev_to, const kv_event *evs, size_t n)
{
    hook2(arg, rev_to, evs, n);
    kvstore_set_commit_hook(S, NULL, NULL);
}

int main(void)
{
    char *dir = tu_tmpdir();
    S = tu_open(dir, NULL);
    kvstore_set_commit_hook(S, hook, NULL);
    hook_last = 1;
    int64_t total = NTHREADS * PER_THREAD;
    seen = calloc((size_t)total + 100, sizeof *seen);

    TEST("group commit: concurrent submitters, consecutive revisions, no holes") {
        pthread_t th[NTHREADS];
        for (long i = 0; i < NTHREADS; i++)
            pthread_create(&th[i], NULL, submitter, (void *)i);
        for (int i = 0; i < NTHREADS; i++)
            pthread_join(th[i], NULL);
        pthread_mutex_lock(&mu);
        while (cb_done < total)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        CHECK_EQ_INT(cb_bad, 0);
        CHECK_EQ_INT(hook_bad, 0);
        CHECK_EQ_INT(kvstore_rev(S), total + 1);
        CHECK_EQ_INT(hook_events, total);
        int holes = 0, dups = 0;
        for (int64_t r = 2; r <= total + 1; r++) {
            if (seen[r] == 0)
                holes++;
            if (seen[r] > 1)
                dups++;
        }
        CHECK_EQ_INT(holes, 0);
        CHECK_EQ_INT(dups, 0);
        CHECK(hook_calls <= total);
        printf("group commit: %lld writes in %lld batches\n", (long long)total, (long long)hook_calls);
        kv_event *evs;
        size_t n;
        int64_t next;
        CHECK(kvstore_read_events(S, 2, total + 1, 0, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, total);
        kv_events_free(evs, n);
    }
    TEST("a batch mixing failing and good requests") {
        int64_t rev0 = kvstore_rev(S);
        block_committer();
        res r[5] = {0};
        kvstore_submit(S, tu_req_op(op_put("g1", "1")), on_res, &r[0]);
        kvstore_submit(S, tu_req_op(op_put("", "1")), on_res, &r[1]);
        kv_op bad = op_put("g2", NULL);
        bad.u.put.ignore_value = true;
        kvstore_submit(S, tu_req_op(bad), on_res, &r[2]);
        kvstore_submit(S, tu_req_op(op_del("nothing", NULL)), on_res, &r[3]);
        kvstore_submit(S, tu_req_op(op_put("g2", "2")), on_res, &r[4]);
        release_committer();
        wait_res(r, 5);
        CHECK(r[0].err == KV_OK && r[0].rev == rev0 + 2);
        CHECK(r[1].err == KV_ERR_EMPTY_KEY);
        CHECK(r[2].err == KV_ERR_KEY_NOT_FOUND);
        CHECK(r[3].err == KV_OK && r[3].rev == rev0 + 2);
        CHECK(r[4].err == KV_OK && r[4].rev == rev0 + 3);
        CHECK_EQ_INT(kvstore_rev(S), rev0 + 3);
    }
    TEST("write failure: the whole batch fails, nothing applied, store keeps working") {
        int64_t rev0 = kvstore_rev(S);
        block_committer(); /* rev0 + 1 */
        res r[4] = {0};
        kvstore_submit(S, tu_req_op(op_put("f1", "1")), on_res, &r[0]);
        kvstore_submit(S, tu_req_op(op_put("", "1")), on_res, &r[1]);
        kvstore_submit(S, tu_req_op(op_del("g1", NULL)), on_res, &r[2]);
        kvstore_submit(S, tu_req_op(op_range("g1", NULL)), on_res, &r[3]);
        backend_fail_err = KV_ERR_NOSPACE;
        backend_fail_writes = 1;
        release_committer();
        wait_res(r, 4);
        CHECK(r[0].err == KV_ERR_NOSPACE);
        CHECK(r[1].err == KV_ERR_EMPTY_KEY);
        CHECK(r[2].err == KV_ERR_NOSPACE);
        CHECK(r[3].err == KV_ERR_NOSPACE); /* it read uncommitted state */
        CHECK_EQ_INT(kvstore_rev(S), rev0 + 1);
        CHECK_EQ_STR(tu_get(S, "f1", 0), "<none>");
        CHECK_EQ_STR(tu_get(S, "g1", 0), "1");
        backend_fail_err = KV_ERR_IO;
        backend_fail_writes = 1;
        CHECK_EQ_INT(tu_put(S, "f1", "1"), -(int64_t)KV_ERR_IO);
        backend_fail_writes = 1;
        CHECK_EQ_INT(tu_compact(S, 2, false), -(int64_t)KV_ERR_IO);
        CHECK_EQ_INT(kvstore_compact_rev(S), 0);
        CHECK_EQ_INT(tu_put(S, "f1", "1"), rev0 + 2);
        kv_range_resp rr;
        CHECK(tu_range(S, "f1", NULL, 0, &rr) == KV_OK && rr.n_kvs == 1);
        CHECK(rr.kvs[0].version == 1 && rr.kvs[0].create_revision == rev0 + 2);
        kv_range_resp_free(&rr);
        kv_event *evs;
        size_t n;
        int64_t next;
        CHECK(kvstore_read_events(S, rev0 + 1, rev0 + 2, 0, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, 2); /* blocker, f1: no trace of the failed batch */
        kv_events_free(evs, n);
    }
    TEST("set_commit_hook returns only after a running hook call ends") {
        int64_t calls0 = hook_calls;
        block_committer(); /* the committer is now inside hook() */
        pthread_t t;
        pthread_create(&t, NULL, swap_hook_thread, NULL);
        usleep(200 * 1000);
        pthread_mutex_lock(&mu);
        CHECK(!swap_returned); /* still waiting for hook() */
        pthread_mutex_unlock(&mu);
        release_committer();
        pthread_join(t, NULL);
        CHECK(swap_returned);
        CHECK(tu_put(S, "after-swap", "v") > 0);
        pthread_mutex_lock(&mu);
        CHECK_EQ_INT(hook_calls, calls0 + 1); /* the old hook: the blocker only */
        CHECK_EQ_INT(hook2_calls, 1);
        pthread_mutex_unlock(&mu);
        /* a hook removing itself from inside its call does not wait on itself */
        kvstore_set_commit_hook(S, self_removing_hook, NULL);
        CHECK(tu_put(S, "self-remove", "v") > 0);
        CHECK(tu_put(S, "self-remove2", "v") > 0);
        pthread_mutex_lock(&mu);
        CHECK_EQ_INT(hook2_calls, 2);
        pthread_mutex_unlock(&mu);
    }
    TEST("close finishes every submitted request; restart keeps everything") {
        int64_t rev0 = kvstore_rev(S);
        res r[50] = {0};
        for (int i = 0; i < 50; i++) {
            char k[16];
            snprintf(k, sizeof k, "c%d", i);
            kvstore_submit(S, tu_req_op(op_put(k, "v")), on_res, &r[i]);
        }
        kvstore_close(S);
        int ok = 0;
        for (int i = 0; i < 50; i++)
            ok += r[i].done && r[i].err == KV_OK;
        CHECK_EQ_INT(ok, 50);
        S = tu_open(dir, NULL);
        CHECK_EQ_INT(kvstore_rev(S), rev0 + 50);
        CHECK_EQ_STR(tu_get(S, "c49", 0), "v");
        CHECK_EQ_STR(tu_get(S, "t3/5", 0), "sync");
        CHECK_EQ_STR(tu_get(S, "t3/6", 0), "async");
    }
    kvstore_close(S);
    free(seen);
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
