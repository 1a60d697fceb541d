/*
 * store_model.c — randomized check against a trivial in-memory model of
 * etcd's MVCC: binary keys (with 0x00 and 0xFF bytes), puts, delete ranges,
 * multi-op txns; then every range (random intervals, from-key, all keys) at
 * every revision must equal the model's answer, before and after a
 * restart, with the index walk forced onto its seek path too.
 */
#include "key_index.h"
#include "store_testutil.h"
#include "testhelp.h"

#define MAXK 39
#define MAXV 4096

typedef struct mver {
    int64_t rev, create, version;
    bool alive;
} mver;

typedef struct mkey {
    uint8_t k[3];
    size_t len;
    mver v[MAXV];
    int n;
} mkey;

static mkey keys[MAXK];
static int nkeys;
static int64_t cur = 1;

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

static int keysort(const void *a, const void *b)
{
    const mkey *x = a, *y = b;
    return kcmp(x->k, x->len, y->k, y->len);
}

static const mver *at(const mkey *k, int64_t rev)
{
    const mver *best = NULL;
    for (int i = 0; i < k->n; i++)
        if (k->v[i].rev <= rev)
            best = &k->v[i];
    return best && best->alive ? best : NULL;
}

static bool in_range(const mkey *k, const uint8_t *a, size_t al, const uint8_t *e, size_t el)
{
    if (el == 0)
        return kcmp(k->k, k->len, a, al) == 0;
    if (kcmp(k->k, k->len, a, al) < 0)
        return false;
    if (el == 1 && e[0] == 0)
        return true;
    return kcmp(k->k, k->len, e, el) < 0;
}

static void mput(mkey *k, int64_t rev)
{
    const mver *p = at(k, rev);
    mver *v = &k->v[k->n++];
    v->rev = rev;
    v->alive = true;
    v->create = p ? p->create : rev;
    v->version = p ? p->version + 1 : 1;
}

static int mdel(const uint8_t *a, size_t al, const uint8_t *e, size_t el, int64_t rev)
{
    int n = 0;
    for (int i = 0; i < nkeys; i++)
        if (in_range(&keys[i], a, al, e, el) && at(&keys[i], rev)) {
            mver *v = &keys[i].v[keys[i].n++];
            memset(v, 0, sizeof *v);
            v->rev = rev;
            n++;
        }
    return n;
}

static kv_op put_op(const mkey *k, int64_t rev)
{
    char val[32];
    snprintf(val, sizeof val, "v%lld", (long long)rev);
    kv_op op = {.type = KV_OP_PUT};
    op.u.put.key = BN(k->k, k->len);
    op.u.put.value = B(val);
    return op;
}

static void rand_interval(uint8_t *a, size_t *al, uint8_t *e, size_t *el)
{
    const mkey *x = &keys[rand() % nkeys], *y = &keys[rand() % nkeys];
    memcpy(a, x->k, x->len);
    *al = x->len;
    switch (rand() % 4) {
    case 0: *el = 0; break;
    case 1: e[0] = 0; *el = 1; break;
    default: memcpy(e, y->k, y->len); *el = y->len; break;
    }
}

static int check_all(kvstore *s, int samples)
{
    int bad = 0;
    for (int i = 0; i < samples; i++) {
        uint8_t a[4], e[4];
        size_t al, el;
        rand_interval(a, &al, e, &el);
        if (rand() % 10 == 0) {
            a[0] = 0;
            al = 1;
            e[0] = 0;
            el = 1;
        }
        int64_t rev = 1 + rand() % cur;
        kv_range_req q = {0};
        kv_range_resp r;
        int64_t h;
        q.key = BN(a, al);
        q.range_end = BN(e, el);
        q.revision = rev;
        kv_err err = kvstore_range(s, &q, &r, &h);
        kv_range_req_free(&q);
        if (err) {
            bad++;
            continue;
        }
        size_t j = 0;
        bool ok = true;
        for (int k = 0; k < nkeys; k++) {
            if (!in_range(&keys[k], a, al, e, el))
                continue;
            const mver *v = at(&keys[k], rev);
            if (!v)
                continue;
            char val[32];
            snprintf(val, sizeof val, "v%lld", (long long)v->rev);
            if (j >= r.n_kvs) {
                ok = false;
                break;
            }
            kv_keyvalue *kv = &r.kvs[j++];
            if (kcmp(kv->key.data, kv->key.len, keys[k].k, keys[k].len) ||
                kv->mod_revision != v->rev || kv->create_revision != v->create ||
                kv->version != v->version || kv->value.len != strlen(val) ||
                memcmp(kv->value.data, val, kv->value.len))
                ok = false;
        }
        if (j != r.n_kvs || (int64_t)j != r.count)
            ok = false;
        if (!ok)
            bad++;
        kv_range_resp_free(&r);
    }
    return bad;
}

int main(void)
{
    const uint8_t alpha[3] = {0x00, 'a', 0xFF};
    for (int len = 1; len <= 3; len++) {
        int total = 1;
        for (int i = 0; i < len; i++)
            total *= 3;
        for (int n = 0; n < total; n++) {
            mkey *k = &keys[nkeys++];
            int x = n;
            for (int i = 0; i < len; i++) {
                k->k[i] = alpha[x % 3];
                x /= 3;
            }
            k->len = (size_t)len;
        }
    }
    qsort(keys, (size_t)nkeys, sizeof *keys, keysort);

    char *dir = tu_tmpdir();
    kvstore *s = tu_open(dir, NULL);
    srand(1234);
    int errors = 0;
    for (int op = 0; op < 1500; op++) {
        int kind = rand() % 10;
        if (kind < 6) {
            mkey *k = &keys[rand() % nkeys];
            kv_response *r = tu_do(s, put_op(k, cur + 1));
            if (r->err || r->header_revision != cur + 1)
                errors++;
            kv_response_free(r);
            mput(k, ++cur);
        } else if (kind < 8) {
            uint8_t a[4], e[4];
            size_t al, el;
            rand_interval(a, &al, e, &el);
            kv_op op2 = {.type = KV_OP_DELETE};
            op2.u.del.key = BN(a, al);
            op2.u.del.range_end = BN(e, el);
            kv_response *r = tu_do(s, op2);
            int n = mdel(a, al, e, el, cur + 1);
            if (n)
                cur++;
            if (r->err || r->resp.u.del.deleted != n || r->header_revision != cur)
                errors++;
            kv_response_free(r);
        } else {
            /* txn: put two distinct keys, delete a third single key */
            int i1 = rand() % nkeys, i2 = rand() % nkeys, i3 = rand() % nkeys;
            if (i1 == i2 || i1 == i3 || i2 == i3)
                continue;
            kv_txn_req *t = calloc(1, sizeof *t);
            t->success = calloc(3, sizeof *t->success);
            t->n_success = 3;
            t->success[0] = put_op(&keys[i1], cur + 1);
            t->success[1].type = KV_OP_DELETE;
            t->success[1].u.del.key = BN(keys[i3].k, keys[i3].len);
            t->success[2] = put_op(&keys[i2], cur + 1);
            kv_op top = {.type = KV_OP_TXN};
            top.u.txn = t;
            kv_response *r = tu_do(s, top);
            mput(&keys[i1], cur + 1);
            mdel(keys[i3].k, keys[i3].len, NULL, 0, cur + 1);
            mput(&keys[i2], cur + 1);
            cur++;
            if (r->err || r->header_revision != cur)
                errors++;
            kv_response_free(r);
        }
    }
    TEST("every write answered as the model says") {
        CHECK_EQ_INT(errors, 0);
        CHECK_EQ_INT(kvstore_rev(s), cur);
    }
    TEST("ranges at every revision equal the model") {
        CHECK_EQ_INT(check_all(s, 4000), 0);
    }
    TEST("same through the seek path of the index walk") {
        key_index_max_nexts = 1;
        CHECK_EQ_INT(check_all(s, 2000), 0);
        key_index_max_nexts = 100;
        CHECK_EQ_INT(check_all(s, 2000), 0);
        key_index_max_nexts = 3;
    }
    TEST("and after a restart") {
        kvstore_close(s);
        s = tu_open(dir, NULL);
        CHECK_EQ_INT(kvstore_rev(s), cur);
        CHECK_EQ_INT(check_all(s, 2000), 0);
    }
    kvstore_close(s);
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
