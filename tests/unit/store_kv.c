/*
 * store_kv.c — put / delete / range semantics against etcd 3.4 (values
 * checked on a real etcd 3.4.23): versions and generations, tombstones,
 * reads at old revisions, every range option, errors, get_at, read_events,
 * restart.
 */
#include "store_testutil.h"
#include "testhelp.h"

static kv_range_req rq(const char *k, const char *end)
{
    kv_range_req q = {0};
    q.key = B(k);
    q.range_end = B(end);
    return q;
}

/* keys of a range as "a,b,c" */
static const char *keys_of(const kv_range_resp *r)
{
    static char buf[1024];
    buf[0] = 0;
    for (size_t i = 0; i < r->n_kvs; i++) {
        if (i)
            strcat(buf, ",");
        strncat(buf, (const char *)r->kvs[i].key.data, r->kvs[i].key.len);
    }
    return buf;
}

static kv_err do_range(kvstore *s, kv_range_req *q, kv_range_resp *r)
{
    int64_t h;
    kv_err e = kvstore_range(s, q, r, &h);
    kv_range_req_free(q);
    return e;
}

int main(void)
{
    char *dir = tu_tmpdir();
    kvstore *s = tu_open(dir, NULL);

    TEST("fresh store at revision 1, first write gets 2") {
        CHECK_EQ_INT(kvstore_rev(s), 1);
        CHECK_EQ_INT(kvstore_compact_rev(s), 0);
        CHECK_EQ_INT(tu_put(s, "foo", "bar"), 2);
        CHECK_EQ_INT(kvstore_rev(s), 2);
    }
    TEST("versions, create/mod revisions, generations") {
        CHECK_EQ_INT(tu_put(s, "foo", "bar2"), 3);
        kv_range_resp r;
        CHECK(tu_range(s, "foo", NULL, 0, &r) == KV_OK);
        CHECK_EQ_INT(r.n_kvs, 1);
        CHECK(kv_is(&r.kvs[0], "foo", "bar2", 2, 3, 2));
        CHECK_EQ_INT(r.count, 1);
        kv_range_resp_free(&r);
        int64_t n;
        CHECK_EQ_INT(tu_del(s, "foo", NULL, &n), 4);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_STR(tu_get(s, "foo", 0), "<none>");
        CHECK_EQ_INT(tu_put(s, "foo", "new"), 5);
        CHECK(tu_range(s, "foo", NULL, 0, &r) == KV_OK);
        CHECK(r.n_kvs == 1 && kv_is(&r.kvs[0], "foo", "new", 5, 5, 1));
        kv_range_resp_free(&r);
    }
    TEST("reads at old revisions") {
        CHECK_EQ_STR(tu_get(s, "foo", 1), "<none>");
        CHECK_EQ_STR(tu_get(s, "foo", 2), "bar");
        CHECK_EQ_STR(tu_get(s, "foo", 3), "bar2");
        CHECK_EQ_STR(tu_get(s, "foo", 4), "<none>");
        CHECK_EQ_STR(tu_get(s, "foo", 5), "new");
        kv_range_resp r;
        CHECK(tu_range(s, "foo", NULL, 6, &r) == KV_ERR_FUTURE_REV);
        CHECK(tu_range(s, "foo", NULL, -3, &r) == KV_OK); /* <= 0: current */
        CHECK(r.n_kvs == 1);
        kv_range_resp_free(&r);
    }
    TEST("delete of nothing takes no revision; header is current") {
        int64_t n;
        CHECK_EQ_INT(tu_del(s, "nothing", NULL, &n), 5);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(tu_del(s, "foo", NULL, &n), 6);
        CHECK_EQ_INT(tu_del(s, "foo", NULL, &n), 6);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(kvstore_rev(s), 6);
    }
    TEST("put prev_kv, ignore_value, ignore_lease, errors") {
        kv_op op = op_put("p", "1");
        kv_response *r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->header_revision == 7 && r->resp.type == KV_OP_PUT);
        CHECK(r->resp.header_revision == 7);
        kv_response_free(r);
        op = op_put("p", "2");
        op.u.put.prev_kv = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->resp.u.put.prev_kv && kv_is(r->resp.u.put.prev_kv, "p", "1", 7, 7, 1));
        kv_response_free(r);
        op = op_put("q", "2");
        op.u.put.prev_kv = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_OK && !r->resp.u.put.prev_kv);
        kv_response_free(r);
        /* ignore_value keeps the value */
        op = op_put("p", NULL);
        op.u.put.ignore_value = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->header_revision == 10);
        kv_response_free(r);
        CHECK_EQ_STR(tu_get(s, "p", 0), "2");
        op = op_put("p", "x");
        op.u.put.ignore_value = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_VALUE_PROVIDED && r->header_revision == 10);
        kv_response_free(r);
        op = op_put("missing", NULL);
        op.u.put.ignore_value = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_KEY_NOT_FOUND);
        kv_response_free(r);
        op = op_put("p", "v");
        op.u.put.ignore_lease = true;
        op.u.put.lease = 5;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_LEASE_PROVIDED);
        kv_response_free(r);
        op = op_put("p", "v");
        op.u.put.ignore_lease = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->header_revision == 11);
        kv_response_free(r);
        op = op_put("missing", "v");
        op.u.put.ignore_lease = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_KEY_NOT_FOUND);
        kv_response_free(r);
        /* top-level put: lease check comes before key-not-found (etcd) */
        op = op_put("missing", NULL);
        op.u.put.ignore_value = true;
        op.u.put.lease = 5;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_LEASE_NOT_FOUND);
        kv_response_free(r);
        op = op_put("", "v");
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_EMPTY_KEY);
        kv_response_free(r);
        op = op_put("", "v");
        op.u.put.ignore_value = true;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_EMPTY_KEY);
        kv_response_free(r);
        op = op_put("k", "v");
        op.u.put.ignore_value = true;
        op.u.put.ignore_lease = true;
        op.u.put.lease = 3;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_VALUE_PROVIDED);
        kv_response_free(r);
        op = op_del("", NULL);
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_EMPTY_KEY);
        kv_response_free(r);
        CHECK_EQ_INT(kvstore_rev(s), 11);
    }
    TEST("empty value, binary keys with zero bytes") {
        CHECK_EQ_INT(tu_put(s, "e", ""), 12);
        kv_range_resp r;
        CHECK(tu_range(s, "e", NULL, 0, &r) == KV_OK && r.n_kvs == 1 && r.kvs[0].value.len == 0);
        kv_range_resp_free(&r);
        kv_op op = {.type = KV_OP_PUT};
        op.u.put.key = BN("z\0a", 3);
        op.u.put.value = B("zero");
        kv_response *x = tu_do(s, op);
        CHECK(x->err == KV_OK);
        kv_response_free(x);
        kv_range_req q = {0};
        q.key = BN("z\0", 2);
        q.range_end = BN("z\x01", 2);
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK(r.n_kvs == 1 && r.kvs[0].key.len == 3 && memcmp(r.kvs[0].key.data, "z\0a", 3) == 0);
        kv_range_resp_free(&r);
        q = (kv_range_req){0};
        q.key = BN("z", 1);
        q.range_end = BN("z\0", 2); /* [z, z\0) = just "z" */
        CHECK(do_range(s, &q, &r) == KV_OK && r.n_kvs == 0);
        kv_range_resp_free(&r);
    }
    kvstore_close(s);
    tu_rmrf(dir);
    free(dir);

    /* a store with a known layout for the range options */
    dir = tu_tmpdir();
    s = tu_open(dir, NULL);
    /* rev 2..: a=1 b=22 c=333 d=4444 ; then b updated, c updated twice */
    tu_put(s, "a", "3");     /* 2 */
    tu_put(s, "b", "1");     /* 3 */
    tu_put(s, "c", "2");     /* 4 */
    tu_put(s, "d", "0");     /* 5 */
    tu_put(s, "b", "5");     /* 6: b v2 */
    tu_put(s, "c", "4");     /* 7: c v2 */
    tu_put(s, "c", "4");     /* 8: c v3 */
    tu_put(s, "foo", "f");   /* 9 */
    tu_put(s, "foo/1", "x"); /* 10 */
    tu_put(s, "foo0", "y");  /* 11 */
    tu_put(s, "fop", "z");   /* 12 */

    TEST("range: single, prefix, from-key, all keys, inverted") {
        kv_range_resp r;
        CHECK(tu_range(s, "a", "c", 0, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "a,b");
        CHECK_EQ_INT(r.count, 2);
        kv_range_resp_free(&r);
        CHECK(tu_range(s, "foo", "fop", 0, &r) == KV_OK); /* prefix foo */
        CHECK_EQ_STR(keys_of(&r), "foo,foo/1,foo0");
        kv_range_resp_free(&r);
        kv_range_req q = rq("d", NULL);
        q.range_end = BN("", 1);
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "d,foo,foo/1,foo0,fop");
        kv_range_resp_free(&r);
        q = (kv_range_req){0};
        q.key = BN("", 1);
        q.range_end = BN("", 1);
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_INT(r.count, 8);
        CHECK_EQ_INT(r.n_kvs, 8);
        kv_range_resp_free(&r);
        CHECK(tu_range(s, "c", "a", 0, &r) == KV_OK && r.n_kvs == 0 && r.count == 0);
        kv_range_resp_free(&r);
        CHECK(tu_range(s, "nope", NULL, 0, &r) == KV_OK && r.n_kvs == 0 && r.count == 0);
        kv_range_resp_free(&r);
        CHECK(tu_range(s, "", NULL, 0, &r) == KV_ERR_EMPTY_KEY);
        CHECK(tu_range(s, "a", "z", 4, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "a,b,c");
        kv_range_resp_free(&r);
    }
    TEST("range: limit, more, count, keys_only, count_only") {
        kv_range_resp r;
        kv_range_req q = rq("a", "z");
        q.limit = 2;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "a,b");
        CHECK(r.more);
        CHECK_EQ_INT(r.count, 8);
        CHECK(r.kvs[0].value.len == 1);
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.limit = 4;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK(r.n_kvs == 4 && !r.more && r.count == 4);
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.keys_only = true;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK(r.n_kvs == 4 && r.kvs[2].value.len == 0 && r.kvs[2].value.data == NULL);
        CHECK(kv_is(&r.kvs[2], "c", NULL, 4, 8, 3));
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.count_only = true;
        q.limit = 1;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK(r.n_kvs == 0 && r.count == 4 && !r.more);
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.limit = -1;
        CHECK(do_range(s, &q, &r) == KV_OK && r.n_kvs == 4 && !r.more);
        kv_range_resp_free(&r);
    }
    TEST("range: sort every target and order") {
        kv_range_resp r;
        struct { int tgt, ord; const char *want; } cases[] = {
            {KV_SORT_KEY, KV_SORT_NONE, "a,b,c,d"},
            {KV_SORT_KEY, KV_SORT_ASCEND, "a,b,c,d"},
            {KV_SORT_KEY, KV_SORT_DESCEND, "d,c,b,a"},
            {KV_SORT_VALUE, KV_SORT_ASCEND, "d,a,c,b"},
            {KV_SORT_VALUE, KV_SORT_NONE, "d,a,c,b"}, /* non-key target: ascend */
            {KV_SORT_VALUE, KV_SORT_DESCEND, "b,c,a,d"},
            {KV_SORT_VERSION, KV_SORT_ASCEND, "a,d,b,c"},
            {KV_SORT_VERSION, KV_SORT_DESCEND, "c,b,a,d"}, /* ties keep key order */
            {KV_SORT_CREATE, KV_SORT_DESCEND, "d,c,b,a"},
            {KV_SORT_CREATE, KV_SORT_ASCEND, "a,b,c,d"},
            {KV_SORT_MOD, KV_SORT_ASCEND, "a,d,b,c"},
            {KV_SORT_MOD, KV_SORT_DESCEND, "c,b,d,a"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            kv_range_req q = rq("a", "e");
            q.sort_target = cases[i].tgt;
            q.sort_order = cases[i].ord;
            CHECK(do_range(s, &q, &r) == KV_OK);
            if (strcmp(keys_of(&r), cases[i].want))
                fprintf(stderr, "sort case %zu: got %s want %s\n", i, keys_of(&r), cases[i].want);
            CHECK_EQ_STR(keys_of(&r), cases[i].want);
            kv_range_resp_free(&r);
        }
        /* sort + limit: sort everything, then truncate */
        kv_range_req q = rq("a", "e");
        q.sort_target = KV_SORT_VALUE;
        q.sort_order = KV_SORT_DESCEND;
        q.limit = 2;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "b,c");
        CHECK(r.more && r.count == 4);
        kv_range_resp_free(&r);
        /* keys_only + sort by value still sorts by the value */
        q = rq("a", "e");
        q.sort_target = KV_SORT_VALUE;
        q.keys_only = true;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "d,a,c,b");
        CHECK(r.kvs[0].value.len == 0);
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.sort_target = 9;
        CHECK(do_range(s, &q, &r) == KV_ERR_INVALID_SORT);
        /* etcd 3.4: an unknown sort order is accepted and does not sort */
        q = rq("a", "e");
        q.sort_order = 7;
        q.limit = 1;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "a");
        CHECK(r.more);
        kv_range_resp_free(&r);
    }
    TEST("range: revision filters (before limit, count unaffected)") {
        kv_range_resp r;
        kv_range_req q = rq("a", "e");
        q.min_mod_revision = 5;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "b,c,d");
        CHECK_EQ_INT(r.count, 4);
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.max_mod_revision = 6;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "a,b,d");
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.min_create_revision = 3;
        q.max_create_revision = 4;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "b,c");
        kv_range_resp_free(&r);
        q = rq("a", "e");
        q.min_create_revision = 3;
        q.limit = 1;
        CHECK(do_range(s, &q, &r) == KV_OK);
        CHECK_EQ_STR(keys_of(&r), "b");
        CHECK(r.more && r.count == 4);
        kv_range_resp_free(&r);
    }
    TEST("range at an old revision with a key having many versions") {
        for (int i = 0; i < 20; i++)
            tu_put(s, "hot", "v");
        int64_t now = kvstore_rev(s);
        kv_range_resp r;
        CHECK(tu_range(s, "a", "z", now - 10, &r) == KV_OK);
        CHECK_EQ_INT(r.count, 9);
        for (size_t i = 0; i < r.n_kvs; i++)
            if (r.kvs[i].key.len == 3 && !memcmp(r.kvs[i].key.data, "hot", 3))
                CHECK_EQ_INT(r.kvs[i].version, 10);
        kv_range_resp_free(&r);
        CHECK(tu_range(s, "a", "z", 12, &r) == KV_OK);
        CHECK_EQ_INT(r.count, 8);
        kv_range_resp_free(&r);
    }
    TEST("delete range: shared main rev, sub revs, prev_kvs, events") {
        int64_t before = kvstore_rev(s);
        kv_op op = op_del("foo", "fop");
        op.u.del.prev_kv = true;
        kv_response *r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->header_revision == before + 1);
        CHECK_EQ_INT(r->resp.u.del.deleted, 3);
        CHECK_EQ_INT(r->resp.u.del.n_prev_kvs, 3);
        CHECK(kv_is(&r->resp.u.del.prev_kvs[1], "foo/1", "x", 10, 10, 1));
        kv_response_free(r);
        kv_event *evs;
        size_t n;
        int64_t next;
        CHECK(kvstore_read_events(s, before + 1, before + 1, 0, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(next, before + 2);
        for (size_t i = 0; i < n; i++) {
            CHECK(evs[i].type == KV_EVENT_DELETE);
            CHECK(evs[i].kv.mod_revision == before + 1 && evs[i].kv.create_revision == 0);
            CHECK(evs[i].kv.version == 0 && evs[i].kv.value.len == 0);
        }
        CHECK(evs[0].kv.key.len == 3 && evs[2].kv.key.len == 4);
        kv_events_free(evs, n);
    }
    TEST("read_events: puts, max_events never splits a revision") {
        kv_event *evs;
        size_t n;
        int64_t next;
        CHECK(kvstore_read_events(s, 2, 4, 0, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, 3);
        CHECK_EQ_INT(next, 5);
        CHECK(evs[0].type == KV_EVENT_PUT && kv_is(&evs[0].kv, "a", "3", 2, 2, 1));
        kv_events_free(evs, n);
        int64_t cur = kvstore_rev(s);
        CHECK(kvstore_read_events(s, cur, cur + 10, 2, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, 3); /* the delete of 3 keys at cur */
        CHECK_EQ_INT(next, cur + 1);
        kv_events_free(evs, n);
        CHECK(kvstore_read_events(s, 2, cur, 2, &evs, &n, &next) == KV_OK);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(next, 4);
        kv_events_free(evs, n);
        CHECK(kvstore_read_events(s, cur + 1, cur + 5, 2, &evs, &n, &next) == KV_OK);
        CHECK(n == 0 && evs == NULL);
    }
    TEST("get_at") {
        kv_keyvalue kv;
        bool found;
        CHECK(kvstore_get_at(s, (const uint8_t *)"c", 1, 7, &kv, &found) == KV_OK && found);
        CHECK(kv_is(&kv, "c", "4", 4, 7, 2));
        kv_keyvalue_free(&kv);
        CHECK(kvstore_get_at(s, (const uint8_t *)"c", 1, 3, &kv, &found) == KV_OK && !found);
        CHECK(kvstore_get_at(s, (const uint8_t *)"foo", 3, kvstore_rev(s), &kv, &found) == KV_OK && !found);
        CHECK(kvstore_get_at(s, (const uint8_t *)"foo", 3, kvstore_rev(s) - 1, &kv, &found) == KV_OK && found);
        kv_keyvalue_free(&kv);
    }
    TEST("range through the committer") {
        kv_op op = op_range("a", "c");
        kv_response *r = tu_do(s, op);
        CHECK(r->err == KV_OK && r->header_revision == kvstore_rev(s));
        CHECK(r->resp.type == KV_OP_RANGE && r->resp.u.range.n_kvs == 2);
        kv_response_free(r);
        op = op_range("a", "c");
        op.u.range.revision = kvstore_rev(s) + 1;
        r = tu_do(s, op);
        CHECK(r->err == KV_ERR_FUTURE_REV);
        kv_response_free(r);
    }
    TEST("restart: same revision and data") {
        int64_t rev = kvstore_rev(s);
        kvstore_close(s);
        s = tu_open(dir, NULL);
        CHECK_EQ_INT(kvstore_rev(s), rev);
        CHECK_EQ_STR(tu_get(s, "c", 0), "4");
        CHECK_EQ_STR(tu_get(s, "c", 4), "2");
        CHECK_EQ_INT(tu_put(s, "after", "restart"), rev + 1);
        CHECK(kvstore_db_size(s) > 0);
    }
    kvstore_close(s);
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
