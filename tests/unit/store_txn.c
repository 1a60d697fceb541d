/*
 * store_txn.c — txn semantics as etcd 3.4.23 answers them (each case was
 * run against a real etcd): compares on every target/result, missing keys
 * and ranges; branches; nested txns (compares evaluated before the txn,
 * nested headers); reads seeing own writes; per-response header revisions;
 * duplicate-key rules; op limits; error precedence; atomicity.
 */
#include "store_testutil.h"
#include "testhelp.h"

static kv_txn_req *txn_new(void)
{
    return calloc(1, sizeof(kv_txn_req));
}

static void add_cmp(kv_txn_req *t, const char *k, const char *end, int target, int result,
                    int64_t num, const char *val)
{
    t->compare = realloc(t->compare, (t->n_compare + 1) * sizeof *t->compare);
    kv_compare *c = &t->compare[t->n_compare++];
    memset(c, 0, sizeof *c);
    c->key = B(k);
    c->range_end = B(end);
    c->target = target;
    c->result = result;
    c->number = num;
    c->value = B(val);
}

static void add_op(kv_txn_req *t, bool success, kv_op op)
{
    kv_op **a = success ? &t->success : &t->failure;
    size_t *n = success ? &t->n_success : &t->n_failure;
    *a = realloc(*a, (*n + 1) * sizeof **a);
    (*a)[(*n)++] = op;
}

static kv_op op_txn(kv_txn_req *t)
{
    kv_op op = {.type = KV_OP_TXN};
    op.u.txn = t;
    return op;
}

/* runs a txn; returns the response */
static kv_response *run(kvstore *s, kv_txn_req *t)
{
    return tu_do(s, op_txn(t));
}

/* compare outcome on a one-compare txn: 1 true, 0 false, -err */
static int cmp1(kvstore *s, const char *k, const char *end, int target, int result, int64_t num,
                const char *val)
{
    kv_txn_req *t = txn_new();
    add_cmp(t, k, end, target, result, num, val);
    kv_response *r = run(s, t);
    int ret = r->err ? -(int)r->err : r->resp.u.txn->succeeded;
    kv_response_free(r);
    return ret;
}

static kv_err txn_err(kvstore *s, kv_txn_req *t)
{
    kv_response *r = run(s, t);
    kv_err e = r->err;
    kv_response_free(r);
    return e;
}

int main(void)
{
    char *dir = tu_tmpdir();
    kvstore *s = tu_open(dir, NULL);
    tu_put(s, "a", "1"); /* 2 */
    tu_put(s, "b", "2"); /* 3 */
    tu_put(s, "b", "3"); /* 4: b v2 create 3 mod 4 */

    TEST("compare every target and result on an existing key") {
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VERSION, KV_CMP_EQUAL, 2, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VERSION, KV_CMP_GREATER, 1, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VERSION, KV_CMP_LESS, 2, NULL), 0);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VERSION, KV_CMP_NOT_EQUAL, 2, NULL), 0);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_CREATE, KV_CMP_EQUAL, 3, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_MOD, KV_CMP_EQUAL, 4, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_MOD, KV_CMP_LESS, 5, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_LEASE, KV_CMP_EQUAL, 0, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VALUE, KV_CMP_EQUAL, 0, "3"), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VALUE, KV_CMP_GREATER, 0, "2"), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VALUE, KV_CMP_LESS, 0, "30"), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VALUE, KV_CMP_NOT_EQUAL, 0, "3"), 0);
        /* unknown result: true; unknown target: compares as equal */
        CHECK_EQ_INT(cmp1(s, "b", NULL, KV_CMP_VERSION, 9, 5, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "b", NULL, 9, KV_CMP_EQUAL, 5, NULL), 1);
    }
    TEST("compare on a missing key") {
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_VALUE, KV_CMP_NOT_EQUAL, 0, "x"), 0);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_VALUE, KV_CMP_EQUAL, 0, ""), 0);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_LEASE, KV_CMP_EQUAL, 0, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_VERSION, KV_CMP_EQUAL, 0, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_CREATE, KV_CMP_LESS, 1, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_MOD, KV_CMP_GREATER, 0, NULL), 0);
        CHECK_EQ_INT(cmp1(s, "nx", NULL, KV_CMP_VERSION, 9, 5, NULL), 1);
    }
    TEST("compare over a range: every key must satisfy it") {
        CHECK_EQ_INT(cmp1(s, "a", "c", KV_CMP_VERSION, KV_CMP_GREATER, 0, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "a", "c", KV_CMP_VERSION, KV_CMP_EQUAL, 1, NULL), 0);
        CHECK_EQ_INT(cmp1(s, "a", "c", KV_CMP_MOD, KV_CMP_LESS, 5, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "x", "z", KV_CMP_VERSION, KV_CMP_EQUAL, 0, NULL), 1);
        CHECK_EQ_INT(cmp1(s, "x", "z", KV_CMP_VALUE, KV_CMP_NOT_EQUAL, 0, "q"), 0);
        /* from-key */
        kv_txn_req *t = txn_new();
        add_cmp(t, "a", NULL, KV_CMP_CREATE, KV_CMP_GREATER, 1, NULL);
        kv_bytes_set(&t->compare[0].range_end, "", 1);
        kv_response *r = run(s, t);
        CHECK(r->err == KV_OK && r->resp.u.txn->succeeded);
        kv_response_free(r);
    }
    TEST("empty txn, branch choice, header revisions as etcd") {
        kv_txn_req *t = txn_new();
        kv_response *r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 4 && r->resp.u.txn->succeeded);
        CHECK(r->resp.u.txn->n_responses == 0);
        kv_response_free(r);
        /* etcd: [range a, put b, range b, delete zz, txn{range a, put c}]
         * headers 4, 5, 5, 5, nested txn {} (0) with 4, 5; top 5 */
        t = txn_new();
        add_op(t, true, op_range("a", NULL));
        add_op(t, true, op_put("b", "x"));
        add_op(t, true, op_range("b", NULL));
        add_op(t, true, op_del("zz", NULL));
        kv_txn_req *n = txn_new();
        add_op(n, true, op_range("a", NULL));
        add_op(n, true, op_put("c", ""));
        add_op(t, true, op_txn(n));
        add_op(t, false, op_put("never", "x"));
        r = run(s, t);
        CHECK(r->err == KV_OK);
        CHECK_EQ_INT(r->header_revision, 5);
        CHECK_EQ_INT(r->resp.header_revision, 5);
        kv_txn_resp *tr = r->resp.u.txn;
        CHECK(tr->succeeded && tr->n_responses == 5);
        CHECK_EQ_INT(tr->responses[0].header_revision, 4);
        CHECK_EQ_INT(tr->responses[1].header_revision, 5);
        CHECK_EQ_INT(tr->responses[2].header_revision, 5);
        CHECK_EQ_INT(tr->responses[3].header_revision, 5);
        CHECK_EQ_INT(tr->responses[4].header_revision, 0);
        CHECK(tr->responses[2].type == KV_OP_RANGE && tr->responses[2].u.range.n_kvs == 1);
        CHECK(kv_is(&tr->responses[2].u.range.kvs[0], "b", "x", 3, 5, 3)); /* sees own put */
        kv_txn_resp *nt = tr->responses[4].u.txn;
        CHECK(nt->succeeded && nt->n_responses == 2);
        CHECK_EQ_INT(nt->responses[0].header_revision, 5);
        CHECK_EQ_INT(nt->responses[1].header_revision, 5);
        kv_response_free(r);
        CHECK_EQ_INT(kvstore_rev(s), 5);
        /* both puts share main revision 5 with sub 0, 1 */
        kv_event *evs;
        size_t ne;
        int64_t next;
        CHECK(kvstore_read_events(s, 5, 5, 0, &evs, &ne, &next) == KV_OK && ne == 2);
        CHECK(evs[0].kv.key.len == 1 && evs[0].kv.key.data[0] == 'b');
        CHECK(evs[1].kv.key.len == 1 && evs[1].kv.key.data[0] == 'c');
        kv_events_free(evs, ne);
    }
    TEST("read-only txn and delete of nothing take no revision") {
        kv_txn_req *t = txn_new();
        add_op(t, true, op_range("a", NULL));
        add_op(t, true, op_del("zz", NULL));
        add_op(t, true, op_txn(txn_new()));
        kv_response *r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 5);
        CHECK_EQ_INT(r->resp.u.txn->responses[1].header_revision, 5);
        CHECK_EQ_INT(r->resp.u.txn->responses[2].header_revision, 0);
        kv_response_free(r);
        CHECK_EQ_INT(kvstore_rev(s), 5);
        t = txn_new();
        add_op(t, true, op_del("zz", NULL));
        add_op(t, true, op_put("d", ""));
        r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 6);
        CHECK_EQ_INT(r->resp.u.txn->responses[0].header_revision, 5);
        CHECK_EQ_INT(r->resp.u.txn->responses[1].header_revision, 6);
        kv_response_free(r);
    }
    TEST("failure branch; nested compares see the state before the txn") {
        kv_txn_req *t = txn_new();
        add_cmp(t, "a", NULL, KV_CMP_VALUE, KV_CMP_EQUAL, 0, "nope");
        add_op(t, true, op_put("s", "1"));
        add_op(t, false, op_put("f", "1"));
        kv_response *r = run(s, t);
        CHECK(r->err == KV_OK && !r->resp.u.txn->succeeded && r->header_revision == 7);
        kv_response_free(r);
        CHECK_EQ_STR(tu_get(s, "f", 0), "1");
        CHECK_EQ_STR(tu_get(s, "s", 0), "<none>");
        t = txn_new();
        add_op(t, true, op_put("n", "1"));
        kv_txn_req *n = txn_new();
        add_cmp(n, "n", NULL, KV_CMP_VERSION, KV_CMP_GREATER, 0, NULL);
        add_op(n, true, op_range("n", NULL));
        add_op(t, true, op_txn(n));
        r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 8);
        kv_txn_resp *nt = r->resp.u.txn->responses[1].u.txn;
        CHECK(!nt->succeeded && nt->n_responses == 0);
        kv_response_free(r);
    }
    TEST("delete then range in one txn; delete from-key + put allowed") {
        kv_txn_req *t = txn_new();
        add_op(t, true, op_del("a", NULL));
        add_op(t, true, op_range("a", NULL));
        kv_response *r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 9);
        CHECK(r->resp.u.txn->responses[1].u.range.n_kvs == 0);
        CHECK_EQ_INT(r->resp.u.txn->responses[1].header_revision, 9);
        kv_response_free(r);
        t = txn_new();
        kv_op d = op_del("b", NULL);
        kv_bytes_set(&d.u.del.range_end, "", 1);
        add_op(t, true, d);
        add_op(t, true, op_put("c", "9"));
        r = run(s, t);
        CHECK(r->err == KV_OK && r->header_revision == 10);
        kv_response_free(r);
        kv_range_resp rr;
        CHECK(tu_range(s, "c", NULL, 0, &rr) == KV_OK && rr.n_kvs == 1);
        CHECK(kv_is(&rr.kvs[0], "c", "9", 10, 10, 1));
        kv_range_resp_free(&rr);
        CHECK(tu_range(s, "b", "z", 0, &rr) == KV_OK);
        CHECK_EQ_INT(rr.count, 1);
        kv_range_resp_free(&rr);
    }
    TEST("duplicate keys (etcd checkIntervals)") {
        kv_txn_req *t = txn_new();
        add_op(t, true, op_put("b", ""));
        add_op(t, true, op_del("a", "c"));
        CHECK(txn_err(s, t) == KV_ERR_DUPLICATE_KEY);
        t = txn_new();
        add_op(t, true, op_put("q", ""));
        add_op(t, true, op_put("q", ""));
        CHECK(txn_err(s, t) == KV_ERR_DUPLICATE_KEY);
        t = txn_new(); /* deletes may overlap deletes */
        add_op(t, true, op_del("x1", NULL));
        add_op(t, true, op_del("x", "y"));
        CHECK(txn_err(s, t) == KV_OK);
        t = txn_new(); /* then/else of a nested txn may put the same key */
        kv_txn_req *n = txn_new();
        add_op(n, true, op_put("q", ""));
        add_op(n, false, op_put("q", ""));
        add_op(t, true, op_txn(n));
        CHECK(txn_err(s, t) == KV_OK);
        t = txn_new();
        n = txn_new();
        add_op(n, true, op_put("q", ""));
        add_op(t, true, op_put("q", ""));
        add_op(t, true, op_txn(n));
        CHECK(txn_err(s, t) == KV_ERR_DUPLICATE_KEY);
        t = txn_new();
        n = txn_new();
        add_op(n, true, op_put("q", ""));
        add_op(t, true, op_del("q", NULL));
        add_op(t, true, op_txn(n));
        CHECK(txn_err(s, t) == KV_ERR_DUPLICATE_KEY);
        t = txn_new(); /* nested delete vs outer put */
        n = txn_new();
        add_op(n, false, op_del("p", "r"));
        add_op(t, true, op_put("q", ""));
        add_op(t, true, op_txn(n));
        CHECK(txn_err(s, t) == KV_ERR_DUPLICATE_KEY);
        t = txn_new(); /* success and failure are checked separately */
        add_op(t, true, op_put("q", ""));
        add_op(t, false, op_put("q", ""));
        CHECK(txn_err(s, t) == KV_OK);
        t = txn_new(); /* ranges are not checked */
        add_op(t, true, op_put("q", ""));
        add_op(t, true, op_range("q", NULL));
        CHECK(txn_err(s, t) == KV_OK);
    }
    TEST("too many ops; nested txns get what their parent leaves") {
        kv_txn_req *t = txn_new();
        for (int i = 0; i < 129; i++)
            add_op(t, true, op_range("a", NULL));
        CHECK(txn_err(s, t) == KV_ERR_TOO_MANY_OPS);
        t = txn_new();
        for (int i = 0; i < 128; i++)
            add_op(t, false, op_range("a", NULL));
        CHECK(txn_err(s, t) == KV_OK);
        t = txn_new();
        for (int i = 0; i < 129; i++)
            add_op(t, true, op_range("", NULL)); /* too many before empty key */
        CHECK(txn_err(s, t) == KV_ERR_TOO_MANY_OPS);
        for (int nn = 27; nn <= 28; nn++) {
            t = txn_new();
            for (int i = 0; i < 100; i++)
                add_op(t, true, op_range("a", NULL));
            kv_txn_req *n = txn_new();
            for (int i = 0; i < nn; i++)
                add_op(n, true, op_range("a", NULL));
            add_op(t, true, op_txn(n));
            CHECK(txn_err(s, t) == (nn == 27 ? KV_OK : KV_ERR_TOO_MANY_OPS));
        }
        kvstore_opts o;
        kvstore_opts_default(&o);
        CHECK_EQ_INT(o.max_txn_ops, 128);
    }
    TEST("empty keys and put argument errors inside txns") {
        kv_txn_req *t = txn_new();
        add_cmp(t, "", NULL, KV_CMP_VERSION, KV_CMP_EQUAL, 0, NULL);
        CHECK(txn_err(s, t) == KV_ERR_EMPTY_KEY);
        t = txn_new();
        add_op(t, true, op_put("q", ""));
        add_op(t, true, op_put("q", ""));
        add_op(t, false, op_range("", NULL));
        CHECK(txn_err(s, t) == KV_ERR_EMPTY_KEY); /* before duplicate */
        t = txn_new();
        add_op(t, false, op_del("", NULL));
        CHECK(txn_err(s, t) == KV_ERR_EMPTY_KEY);
        t = txn_new();
        kv_op p = op_put("a", "v");
        p.u.put.ignore_value = true;
        add_op(t, true, p);
        CHECK(txn_err(s, t) == KV_ERR_VALUE_PROVIDED);
        t = txn_new();
        p = op_put("a", NULL);
        p.u.put.ignore_lease = true;
        p.u.put.lease = 1;
        add_op(t, true, p);
        CHECK(txn_err(s, t) == KV_ERR_LEASE_PROVIDED);
    }
    TEST("error precedence and atomicity (nothing applied)") {
        int64_t rev = kvstore_rev(s);
        kv_txn_req *t = txn_new();
        kv_op r = op_range("c", NULL);
        r.u.range.revision = 100;
        add_op(t, true, op_put("w1", "x"));
        add_op(t, true, r);
        kv_op p = op_put("nx", NULL);
        p.u.put.ignore_value = true;
        add_op(t, true, p);
        CHECK(txn_err(s, t) == KV_ERR_KEY_NOT_FOUND); /* puts checked before ranges */
        t = txn_new();
        p = op_put("nx", NULL);
        p.u.put.ignore_value = true;
        p.u.put.lease = 5;
        add_op(t, true, p);
        CHECK(txn_err(s, t) == KV_ERR_KEY_NOT_FOUND); /* in a txn: key before lease */
        t = txn_new();
        p = op_put("w2", "x");
        p.u.put.lease = 5;
        add_op(t, true, op_put("w1", "x"));
        add_op(t, true, p);
        CHECK(txn_err(s, t) == KV_ERR_LEASE_NOT_FOUND);
        t = txn_new();
        r = op_range("c", NULL);
        r.u.range.revision = 100;
        add_op(t, true, op_put("w1", "x"));
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_ERR_FUTURE_REV);
        t = txn_new(); /* checks follow the chosen branch only */
        add_cmp(t, "c", NULL, KV_CMP_VERSION, KV_CMP_EQUAL, 42, NULL);
        r = op_range("c", NULL);
        r.u.range.revision = 100;
        add_op(t, true, r);
        add_op(t, false, op_put("w3", "x"));
        CHECK(txn_err(s, t) == KV_OK);
        rev++;
        CHECK_EQ_INT(kvstore_rev(s), rev);
        CHECK_EQ_STR(tu_get(s, "w1", 0), "<none>");
        t = txn_new(); /* etcd: a range at the txn's own new revision is "future" */
        add_op(t, true, op_put("w4", "x"));
        r = op_range("w4", NULL);
        r.u.range.revision = rev + 1;
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_ERR_FUTURE_REV);
        t = txn_new(); /* a range of a nested txn is checked too */
        kv_txn_req *n = txn_new();
        r = op_range("c", NULL);
        r.u.range.revision = 1000;
        add_op(n, true, r);
        add_op(t, true, op_put("w5", "x"));
        add_op(t, true, op_txn(n));
        CHECK(txn_err(s, t) == KV_ERR_FUTURE_REV);
        t = txn_new(); /* negative revision: -1 passes, -5 is "compacted" (etcd's -1 start) */
        r = op_range("c", NULL);
        r.u.range.revision = -1;
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_OK);
        t = txn_new();
        r = op_range("c", NULL);
        r.u.range.revision = -5;
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_ERR_COMPACTED);
        CHECK_EQ_INT(kvstore_rev(s), rev);
    }
    TEST("txn put prev_kv, ignore_value inside a txn, old-revision range") {
        int64_t rev = kvstore_rev(s);
        kv_txn_req *t = txn_new();
        kv_op p = op_put("c", "10");
        p.u.put.prev_kv = true;
        add_op(t, true, p);
        p = op_put("w3", NULL);
        p.u.put.ignore_value = true;
        add_op(t, true, p);
        kv_op r = op_range("c", NULL);
        r.u.range.revision = 9;
        add_op(t, true, r);
        kv_response *x = run(s, t);
        CHECK_EQ_STR(kv_err_name(x->err), "KV_OK");
        CHECK_EQ_INT(x->header_revision, rev + 1);
        if (x->err) {
            kv_response_free(x);
            continue;
        }
        kv_txn_resp *tr = x->resp.u.txn;
        CHECK(tr->responses[0].u.put.prev_kv && kv_is(tr->responses[0].u.put.prev_kv, "c", "9", 10, 10, 1));
        CHECK(tr->responses[2].u.range.n_kvs == 1);
        CHECK(kv_is(&tr->responses[2].u.range.kvs[0], "c", "", 5, 5, 1));
        CHECK_EQ_INT(tr->responses[2].header_revision, rev + 1);
        kv_response_free(x);
        CHECK_EQ_STR(tu_get(s, "w3", 0), "x");
    }
    TEST("compaction inside txns") {
        int64_t rev = kvstore_rev(s);
        CHECK_EQ_INT(tu_compact(s, 5, true), rev);
        kv_txn_req *t = txn_new();
        kv_op r = op_range("c", NULL);
        r.u.range.revision = 4;
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_ERR_COMPACTED);
        t = txn_new();
        r = op_range("c", NULL);
        r.u.range.revision = 5;
        add_op(t, true, r);
        CHECK(txn_err(s, t) == KV_OK);
    }
    kvstore_close(s);
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
