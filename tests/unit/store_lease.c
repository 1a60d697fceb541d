/*
 * store_lease.c — leases through the store: grant (explicit, auto id,
 * duplicate, min and max TTL), puts attached to leases (and to missing
 * ones, in txns too), attachment moves (re-put with another lease, without
 * a lease, ignore_lease, delete), revoke (one revision, key order, DELETE
 * events through the commit hook), expiry timing, keepalive, the expiring
 * state, TTL compares, a failed batch leaving no lease behind, restart
 * (leases and attachments kept, TTL refreshed), and a concurrent run of
 * expiring leases and puts (for TSan).
 */
#include <pthread.h>
#include <time.h>

#include "backend.h"
#include "lease.h"
#include "store_testutil.h"
#include "testhelp.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static kv_event *hev;          /* events seen by the hook (copies of keys) */
static size_t nhev;

static void hook(void *arg, int64_t rev_to, const kv_event *evs, size_t n)
{
    (void)arg;
    (void)rev_to;
    pthread_mutex_lock(&mu);
    hev = realloc(hev, (nhev + n) * sizeof *hev);
    for (size_t i = 0; i < n; i++) {
        kv_event *e = &hev[nhev++];
        memset(e, 0, sizeof *e);
        e->type = evs[i].type;
        e->kv.mod_revision = evs[i].kv.mod_revision;
        e->kv.lease = evs[i].kv.lease;
        kv_bytes_set(&e->kv.key, evs[i].kv.key.data, evs[i].kv.key.len);
    }
    pthread_mutex_unlock(&mu);
}

static void hook_reset(void)
{
    pthread_mutex_lock(&mu);
    kv_events_free(hev, nhev);
    hev = NULL;
    nhev = 0;
    pthread_mutex_unlock(&mu);
}

static size_t hook_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = nhev;
    pthread_mutex_unlock(&mu);
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static kv_response *lease_req(kvstore *s, kv_req_kind kind, int64_t id, int64_t ttl)
{
    kv_request *q = calloc(1, sizeof *q);
    q->kind = kind;
    q->lease.id = id;
    q->lease.ttl = ttl;
    return kvstore_do(s, q);
}

/* Grant; returns the id, or -err. */
static int64_t grant(kvstore *s, int64_t id, int64_t ttl, int64_t *ttl_out)
{
    kv_response *r = lease_req(s, KV_REQ_LEASE_GRANT, id, ttl);
    int64_t ret = r->err ? -(int64_t)r->err : r->lease.id;
    if (ttl_out)
        *ttl_out = r->lease.ttl;
    kv_response_free(r);
    return ret;
}

/* Revoke; returns the header revision, or -err. */
static int64_t lrevoke(kvstore *s, int64_t id)
{
    kv_response *r = lease_req(s, KV_REQ_LEASE_REVOKE, id, 0);
    int64_t ret = r->err ? -(int64_t)r->err : r->header_revision;
    kv_response_free(r);
    return ret;
}

static int64_t put_lease(kvstore *s, const char *k, const char *v, int64_t lease)
{
    kv_op op = op_put(k, v);
    op.u.put.lease = lease;
    kv_response *r = tu_do(s, op);
    int64_t ret = r->err ? -(int64_t)r->err : r->header_revision;
    kv_response_free(r);
    return ret;
}

/* The lease of key k now (-1 if absent). */
static int64_t lease_of(kvstore *s, const char *k)
{
    kv_range_resp r;
    if (tu_range(s, k, NULL, 0, &r) != KV_OK)
        return -2;
    int64_t l = r.n_kvs ? r.kvs[0].lease : -1;
    kv_range_resp_free(&r);
    return l;
}

/* The attached keys of a lease, joined with ',' (static). */
static const char *keys_of(kvstore *s, int64_t id)
{
    static char buf[1024];
    kv_lease_info li;
    if (kvstore_lease_timetolive(s, id, true, &li) != KV_OK)
        return "<none>";
    buf[0] = 0;
    for (size_t i = 0; i < li.n_keys; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%.*s", i ? "," : "",
                 (int)li.keys[i].len, (const char *)li.keys[i].data);
    kv_lease_info_free(&li);
    return buf;
}

static kvstore_opts fast_opts(void)
{
    kvstore_opts o;
    kvstore_opts_default(&o);
    o.sync_writes = false;
    o.lease_min_ttl = 1;
    return o;
}

int main(void)
{
    char *dir = tu_tmpdir();
    kvstore_opts o = fast_opts();
    kvstore *s = tu_open(dir, &o);
    kvstore_set_commit_hook(s, hook, NULL);

    TEST("grant: explicit, duplicate, too large, min TTL, auto id, negative id") {
        int64_t ttl;
        CHECK_EQ_INT(grant(s, 100, 60, &ttl), 100);
        CHECK_EQ_INT(ttl, 60);
        CHECK_EQ_INT(grant(s, 100, 60, NULL), -KV_ERR_LEASE_EXISTS);
        CHECK_EQ_INT(grant(s, 101, KV_LEASE_MAX_TTL + 1, NULL), -KV_ERR_LEASE_TTL_TOO_LARGE);
        /* too large is checked before the duplicate, as etcd */
        CHECK_EQ_INT(grant(s, 100, KV_LEASE_MAX_TTL + 1, NULL), -KV_ERR_LEASE_TTL_TOO_LARGE);
        CHECK_EQ_INT(grant(s, 102, KV_LEASE_MAX_TTL, &ttl), 102);
        CHECK_EQ_INT(ttl, KV_LEASE_MAX_TTL);
        CHECK_EQ_INT(grant(s, 103, -5, &ttl), 103);
        CHECK_EQ_INT(ttl, 1); /* raised to the minimum */
        int64_t a = grant(s, 0, 60, NULL), b = grant(s, 0, 60, NULL);
        CHECK(a > 0 && b > 0 && a != b);
        CHECK_EQ_INT(grant(s, -1, 60, NULL), -1);
        CHECK_EQ_INT(kvstore_rev(s), 1); /* grants take no revision */
        int64_t *ids;
        size_t n;
        CHECK_EQ_INT(kvstore_lease_list(s, &ids, &n), KV_OK);
        CHECK_EQ_INT(n, 6);
        CHECK_EQ_INT(ids[0], -1); /* ascending */
        free(ids);
    }

    TEST("put with a lease; missing lease refused, also inside a txn") {
        CHECK_EQ_INT(put_lease(s, "a", "1", 100), 2);
        CHECK_EQ_INT(put_lease(s, "b", "1", 100), 3);
        CHECK_EQ_INT(put_lease(s, "c", "1", 999), -KV_ERR_LEASE_NOT_FOUND);
        CHECK_EQ_INT(lease_of(s, "a"), 100);
        kv_txn_req *t = calloc(1, sizeof *t);
        t->success = calloc(1, sizeof *t->success);
        t->n_success = 1;
        t->success[0] = op_put("c", "x");
        t->success[0].u.put.lease = 999;
        kv_op op = {.type = KV_OP_TXN};
        op.u.txn = t;
        kv_response *r = tu_do(s, op);
        CHECK_EQ_INT(r->err, KV_ERR_LEASE_NOT_FOUND);
        kv_response_free(r);
        CHECK_EQ_STR(keys_of(s, 100), "a,b");
    }

    TEST("attachments follow puts, ignore_lease and deletes") {
        CHECK_EQ_INT(grant(s, 200, 60, NULL), 200);
        CHECK(put_lease(s, "k1", "1", 200) > 0);
        CHECK(put_lease(s, "k2", "1", 200) > 0);
        CHECK(put_lease(s, "k3", "1", 200) > 0);
        CHECK(put_lease(s, "k4", "1", 200) > 0);
        CHECK(put_lease(s, "k1", "2", 0) > 0);    /* detached */
        CHECK(put_lease(s, "k2", "2", 100) > 0);  /* moved */
        CHECK(tu_del(s, "k3", NULL, NULL) > 0);   /* gone */
        kv_op op = op_put("k4", "3");
        op.u.put.ignore_lease = true;             /* kept */
        kv_response *r = tu_do(s, op);
        CHECK_EQ_INT(r->err, KV_OK);
        kv_response_free(r);
        CHECK_EQ_INT(lease_of(s, "k4"), 200);
        CHECK_EQ_STR(keys_of(s, 200), "k4");
        CHECK_EQ_STR(keys_of(s, 100), "a,b,k2");
    }

    TEST("compare on LEASE") {
        kv_txn_req *t = calloc(1, sizeof *t);
        t->compare = calloc(1, sizeof *t->compare);
        t->n_compare = 1;
        t->compare[0].key = B("k4");
        t->compare[0].target = KV_CMP_LEASE;
        t->compare[0].result = KV_CMP_EQUAL;
        t->compare[0].number = 200;
        kv_op op = {.type = KV_OP_TXN};
        op.u.txn = t;
        kv_response *r = tu_do(s, op);
        CHECK_EQ_INT(r->err, KV_OK);
        CHECK(r->resp.u.txn->succeeded);
        kv_response_free(r);
    }

    TEST("revoke: keys deleted in one revision, in key order, events; then not found") {
        hook_reset();
        int64_t before = kvstore_rev(s);
        CHECK_EQ_INT(lrevoke(s, 100), before + 1);
        CHECK_EQ_INT(nhev, 3);
        if (nhev == 3) {
            CHECK(hev[0].type == KV_EVENT_DELETE && hev[0].kv.key.len == 1 && hev[0].kv.key.data[0] == 'a');
            CHECK(hev[1].kv.key.data[0] == 'b' && hev[2].kv.key.len == 2);
            CHECK(hev[0].kv.mod_revision == before + 1 && hev[2].kv.mod_revision == before + 1);
        }
        CHECK_EQ_INT(lease_of(s, "a"), -1);
        CHECK_EQ_INT(lease_of(s, "k2"), -1);
        CHECK_EQ_INT(lrevoke(s, 100), -KV_ERR_LEASE_NOT_FOUND);
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 100, true, &li), KV_ERR_LEASE_NOT_FOUND);
        /* a lease without keys: no revision */
        before = kvstore_rev(s);
        CHECK_EQ_INT(lrevoke(s, 102), before);
    }

    TEST("expiry: revoked about TTL after the grant, keys deleted, watchers told") {
        hook_reset();
        int64_t t0 = now_ms();
        CHECK_EQ_INT(grant(s, 300, 1, NULL), 300);
        CHECK(put_lease(s, "e1", "1", 300) > 0);
        CHECK(put_lease(s, "e2", "1", 300) > 0);
        while (lease_of(s, "e1") != -1 && now_ms() - t0 < 5000)
            sleep_ms(5);
        int64_t dt = now_ms() - t0;
        printf("  expiry of a 1 s lease observed after %lld ms\n", (long long)dt);
        CHECK(dt >= 990 && dt < 1300);
        CHECK_EQ_INT(lease_of(s, "e2"), -1);
        CHECK_EQ_INT(hook_count(), 4); /* 2 puts, 2 deletes */
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 300, false, &li), KV_ERR_LEASE_NOT_FOUND);
    }

    TEST("keepalive moves the expiry; unknown lease not found") {
        CHECK_EQ_INT(grant(s, 400, 1, NULL), 400);
        CHECK(put_lease(s, "ka", "1", 400) > 0);
        for (int i = 0; i < 6; i++) {
            sleep_ms(300);
            int64_t ttl = 0;
            CHECK_EQ_INT(kvstore_lease_renew(s, 400, &ttl), KV_OK);
            CHECK_EQ_INT(ttl, 1);
        }
        CHECK_EQ_INT(lease_of(s, "ka"), 400); /* 1.8 s, alive */
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 400, false, &li), KV_OK);
        CHECK_EQ_INT(li.granted_ttl, 1);
        CHECK(li.ttl == 0 || li.ttl == 1);
        int64_t ttl;
        CHECK_EQ_INT(kvstore_lease_renew(s, 4242, &ttl), KV_ERR_LEASE_NOT_FOUND);
        sleep_ms(1300);
        CHECK_EQ_INT(lease_of(s, "ka"), -1);
        CHECK_EQ_INT(kvstore_lease_renew(s, 400, &ttl), KV_ERR_LEASE_NOT_FOUND);
    }

    TEST("timetolive counts down in whole seconds") {
        CHECK_EQ_INT(grant(s, 500, 10, NULL), 500);
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 500, false, &li), KV_OK);
        CHECK_EQ_INT(li.ttl, 9);
        CHECK_EQ_INT(li.granted_ttl, 10);
        CHECK(li.n_keys == 0 && li.keys == NULL);
    }

    TEST("an expiry revoke for a lease granted again is dropped") {
        CHECK_EQ_INT(grant(s, 550, 60, NULL), 550);
        CHECK(put_lease(s, "st", "1", 550) > 0);
        kv_request *q = calloc(1, sizeof *q);
        q->kind = KV_REQ_LEASE_REVOKE;
        q->lease.id = 550;
        q->lease.expired = true; /* as if 550 had expired, then come back */
        kv_response *r = kvstore_do(s, q);
        CHECK_EQ_INT(r->err, KV_ERR_LEASE_NOT_FOUND);
        kv_response_free(r);
        CHECK_EQ_INT(lease_of(s, "st"), 550);
        CHECK_EQ_INT(lrevoke(s, 550) > 0, 1);
    }

    TEST("a failed batch grants nothing and attaches nothing") {
        backend_fail_writes = 1;
        CHECK_EQ_INT(grant(s, 600, 60, NULL), -KV_ERR_IO);
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 600, false, &li), KV_ERR_LEASE_NOT_FOUND);
        CHECK_EQ_INT(grant(s, 600, 60, NULL), 600);
        backend_fail_writes = 1;
        CHECK_EQ_INT(put_lease(s, "f", "1", 600), -KV_ERR_IO);
        CHECK_EQ_STR(keys_of(s, 600), "");
        backend_fail_writes = 1;
        CHECK_EQ_INT(lrevoke(s, 600), -KV_ERR_IO);
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 600, false, &li), KV_OK);
        CHECK(put_lease(s, "f", "1", 600) > 0);
    }

    TEST("restart: leases and attachments kept, TTL refreshed to a full TTL") {
        CHECK_EQ_INT(grant(s, 700, 3, NULL), 700);
        CHECK(put_lease(s, "r1", "1", 700) > 0);
        CHECK(put_lease(s, "r2", "1", 700) > 0);
        sleep_ms(1100);
        kvstore_close(s);
        s = tu_open(dir, &o);
        kvstore_set_commit_hook(s, hook, NULL);
        kv_lease_info li;
        CHECK_EQ_INT(kvstore_lease_timetolive(s, 700, true, &li), KV_OK);
        CHECK_EQ_INT(li.granted_ttl, 3);
        CHECK_EQ_INT(li.ttl, 3); /* 3 s + 1 s from the open, not 1.9 s left */
        CHECK_EQ_INT(li.n_keys, 2);
        kv_lease_info_free(&li);
        CHECK_EQ_STR(keys_of(s, 600), "f");
        int64_t t0 = now_ms();
        while (lease_of(s, "r1") != -1 && now_ms() - t0 < 6000)
            sleep_ms(10);
        int64_t dt = now_ms() - t0;
        CHECK(dt > 3500 && dt < 4500);
        CHECK_EQ_INT(lease_of(s, "r2"), -1);
        CHECK(kvstore_applied_index(s) > 20);
    }

    TEST("hash: stable for equal contents, changes with them") {
        uint32_t h1, h2, h3;
        int64_t r1, r2, r3;
        CHECK_EQ_INT(kvstore_hash(s, &h1, &r1), KV_OK);
        CHECK_EQ_INT(kvstore_hash(s, &h2, &r2), KV_OK);
        CHECK(h1 == h2 && r1 == r2);
        CHECK(tu_put(s, "hash", "1") > 0);
        CHECK_EQ_INT(kvstore_hash(s, &h3, &r3), KV_OK);
        CHECK(h3 != h1 && r3 == r1 + 1);
        CHECK_EQ_INT(kvstore_defragment(s), KV_OK);
        CHECK_EQ_INT(kvstore_hash(s, &h2, &r2), KV_OK);
        CHECK(h2 == h3);
        CHECK(kvstore_db_size_in_use(s) <= kvstore_db_size(s));
    }

    TEST("concurrent: 200 short leases expiring while puts attach and detach keys") {
        enum { NL = 200 };
        for (int i = 0; i < NL; i++)
            CHECK_EQ_INT(grant(s, 10000 + i, 1, NULL), 10000 + i);
        char k[32];
        for (int round = 0; round < 3; round++)
            for (int i = 0; i < NL; i++) {
                snprintf(k, sizeof k, "c/%03d/%d", i, round);
                int64_t r = put_lease(s, k, "v", 10000 + i);
                CHECK(r > 0 || r == -KV_ERR_LEASE_NOT_FOUND);
                int64_t ttl;
                if (i % 3 == 0)
                    kvstore_lease_renew(s, 10000 + i, &ttl);
            }
        int64_t t0 = now_ms();
        kv_range_resp rr;
        for (;;) {
            CHECK_EQ_INT(tu_range(s, "c/", "c0", 0, &rr), KV_OK);
            size_t n = rr.n_kvs;
            kv_range_resp_free(&rr);
            if (n == 0 || now_ms() - t0 > 5000)
                break;
            sleep_ms(20);
        }
        CHECK(now_ms() - t0 < 3000);
        int64_t *ids;
        size_t n;
        kvstore_lease_list(s, &ids, &n);
        for (size_t i = 0; i < n; i++)
            CHECK(ids[i] < 10000 || ids[i] >= 10000 + NL);
        free(ids);
    }

    TEST("5000 leases expiring together: all revoked soon after the last TTL") {
        enum { NL = 5000 };
        for (int i = 0; i < NL; i++) {
            kv_request *q = calloc(1, sizeof *q);
            q->kind = KV_REQ_LEASE_GRANT;
            q->lease.id = 200000 + i;
            q->lease.ttl = 1;
            kv_response_free(kvstore_do(s, q));
            char k[32];
            snprintf(k, sizeof k, "many/%05d", i);
            put_lease(s, k, "v", 200000 + i);
        }
        int64_t t0 = now_ms();
        size_t n = 1;
        while (n && now_ms() - t0 < 10000) {
            int64_t *ids;
            size_t all;
            kvstore_lease_list(s, &ids, &all);
            n = 0;
            for (size_t i = 0; i < all; i++)
                n += ids[i] >= 200000 && ids[i] < 200000 + NL;
            free(ids);
            if (n)
                sleep_ms(10);
        }
        int64_t dt = now_ms() - t0;
        printf("  5000 leases revoked %lld ms after the last grant (TTL 1 s)\n", (long long)dt);
        CHECK_EQ_INT(n, 0);
        CHECK(dt < 2500);
        kv_range_resp rr;
        CHECK_EQ_INT(tu_range(s, "many/", "many0", 0, &rr), KV_OK);
        CHECK_EQ_INT(rr.n_kvs, 0);
        kv_range_resp_free(&rr);
    }

    kvstore_close(s);
    hook_reset();
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
