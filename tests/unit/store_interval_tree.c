/*
 * store_interval_tree.c — the interval tree against a brute-force list:
 * random byte-string intervals (short strings over a tiny alphabet, so
 * prefixes, equal bounds and "\0" collide often), +infinity ends, random
 * inserts and removes with a full invariant check after each, stabbing
 * queries compared set-for-set.
 */
#include "interval_tree.h"
#include "testhelp.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct item {
    itree_node node;
    uint8_t b[4], e[4];
    size_t blen, elen;
    bool inf, in;
} item;

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static size_t rand_str(uint8_t *s)
{
    static const uint8_t alpha[] = {0, 'a', 'b', 'c', 0xff};
    size_t n = rnd() % 4;
    for (size_t i = 0; i < n; i++)
        s[i] = alpha[rnd() % sizeof alpha];
    return n;
}

static void rand_item(item *it)
{
    for (;;) {
        it->blen = rand_str(it->b);
        it->inf = rnd() % 5 == 0;
        if (it->inf)
            break;
        it->elen = rand_str(it->e);
        if (itree_bytes_cmp(it->b, it->blen, it->e, it->elen) < 0)
            break;
    }
    itree_node_set(&it->node, it->b, it->blen, it->e, it->elen, it->inf);
}

static bool contains(const item *it, const uint8_t *k, size_t klen)
{
    return itree_bytes_cmp(it->b, it->blen, k, klen) <= 0 &&
           (it->inf || itree_bytes_cmp(k, klen, it->e, it->elen) < 0);
}

typedef struct hits {
    item *v[4096];
    size_t n;
    bool sorted_by_begin;
    const uint8_t *lastb;
    size_t lastblen;
} hits;

static void collect(itree_node *n, void *arg)
{
    hits *h = arg;
    item *it = (item *)n;
    if (h->lastb && itree_bytes_cmp(h->lastb, h->lastblen, it->b, it->blen) > 0)
        h->sorted_by_begin = false;
    h->lastb = it->b;
    h->lastblen = it->blen;
    h->v[h->n++] = it;
}

static int ptrcmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(item *const *)a, y = (uintptr_t)*(item *const *)b;
    return x < y ? -1 : x > y;
}

/* Stabs with every key of length <= 3 over the alphabet would be 156 keys;
 * a random sample keeps the run short while covering them all over time. */
static int query_matches(itree *t, item *items, size_t n)
{
    uint8_t k[4];
    size_t klen = rand_str(k);
    static hits h;
    static item *want[4096];
    size_t nw = 0;
    h.n = 0;
    h.sorted_by_begin = true;
    h.lastb = NULL;
    itree_stab(t, k, klen, collect, &h);
    for (size_t i = 0; i < n; i++)
        if (items[i].in && contains(&items[i], k, klen))
            want[nw++] = &items[i];
    if (nw != h.n || !h.sorted_by_begin)
        return 0;
    qsort(h.v, h.n, sizeof h.v[0], ptrcmp);
    qsort(want, nw, sizeof want[0], ptrcmp);
    return memcmp(h.v, want, nw * sizeof want[0]) == 0;
}

int main(void)
{
    TEST("empty tree") {
        itree t;
        itree_init(&t);
        hits h = {.n = 0};
        itree_stab(&t, (const uint8_t *)"a", 1, collect, &h);
        CHECK_EQ_INT(h.n, 0);
        CHECK_EQ_INT(itree_check(&t), 0);
    }

    TEST("from-key end is +infinity, half-open ends, shorter-first order") {
        itree t;
        itree_init(&t);
        item a, b, c;
        itree_node_set(&a.node, (const uint8_t *)"foo", 3, NULL, 0, true);     /* >= "foo" */
        itree_node_set(&b.node, (const uint8_t *)"foo", 3, (const uint8_t *)"fop", 3, false); /* prefix foo */
        itree_node_set(&c.node, (const uint8_t *)"\0", 1, NULL, 0, true);     /* all keys */
        itree_insert(&t, &a.node);
        itree_insert(&t, &b.node);
        itree_insert(&t, &c.node);
        CHECK_EQ_INT(itree_check(&t), 0);
        hits h = {.n = 0};
        itree_stab(&t, (const uint8_t *)"fo", 2, collect, &h);
        CHECK_EQ_INT(h.n, 1); /* only all-keys */
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"foo", 3, collect, &h);
        CHECK_EQ_INT(h.n, 3);
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"foo\xff\xff", 5, collect, &h);
        CHECK_EQ_INT(h.n, 3);
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"fop", 3, collect, &h);
        CHECK_EQ_INT(h.n, 2); /* end is exclusive */
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"\xff\xff\xff\xff", 4, collect, &h);
        CHECK_EQ_INT(h.n, 2);
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"", 0, collect, &h);
        CHECK_EQ_INT(h.n, 0); /* "" < "\0" */
        itree_remove(&t, &b.node);
        CHECK_EQ_INT(itree_check(&t), 0);
        h.n = 0;
        itree_stab(&t, (const uint8_t *)"foo", 3, collect, &h);
        CHECK_EQ_INT(h.n, 2);
        itree_remove(&t, &a.node);
        itree_remove(&t, &c.node);
        CHECK(t.root == NULL);
        CHECK_EQ_INT(itree_check(&t), 0);
    }

    TEST("many equal intervals: distinct nodes, removable one by one") {
        enum { N = 2000 };
        static item v[N];
        itree t;
        itree_init(&t);
        for (int i = 0; i < N; i++) {
            itree_node_set(&v[i].node, (const uint8_t *)"k", 1, (const uint8_t *)"l", 1, false);
            itree_insert(&t, &v[i].node);
        }
        CHECK_EQ_INT(itree_check(&t), 0);
        hits *h = calloc(1, sizeof *h);
        itree_stab(&t, (const uint8_t *)"k1", 2, collect, h);
        CHECK_EQ_INT(h->n, N);
        for (int i = 0; i < N; i += 2)
            itree_remove(&t, &v[i].node);
        CHECK_EQ_INT(itree_check(&t), 0);
        h->n = 0;
        itree_stab(&t, (const uint8_t *)"k", 1, collect, h);
        CHECK_EQ_INT(h->n, N / 2);
        free(h);
    }

    TEST("random inserts/removes vs brute force, invariants after every op") {
        enum { N = 600 };
        static item items[N];
        itree t;
        itree_init(&t);
        int bad_inv = 0, bad_q = 0;
        size_t live = 0;
        for (int round = 0; round < 30000; round++) {
            item *it = &items[rnd() % N];
            if (it->in) {
                itree_remove(&t, &it->node);
                it->in = false;
                live--;
            } else {
                rand_item(it);
                itree_insert(&t, &it->node);
                it->in = true;
                live++;
            }
            if ((round < 3000 || round % 7 == 0) && itree_check(&t) != 0)
                bad_inv++;
            if (!query_matches(&t, items, N))
                bad_q++;
            /* Drain phases exercise deletion down to an empty tree. */
            if (round % 10000 == 9999) {
                for (int i = 0; i < N; i++)
                    if (items[i].in) {
                        itree_remove(&t, &items[i].node);
                        items[i].in = false;
                        live--;
                        if (itree_check(&t) != 0)
                            bad_inv++;
                        if (i % 13 == 0 && !query_matches(&t, items, N))
                            bad_q++;
                    }
            }
        }
        CHECK_EQ_INT(bad_inv, 0);
        CHECK_EQ_INT(bad_q, 0);
        CHECK_EQ_INT(t.count, live);
    }

    TEST("exhaustive keys against a fixed random set") {
        enum { N = 300 };
        static item items[N];
        itree t;
        itree_init(&t);
        for (int i = 0; i < N; i++) {
            rand_item(&items[i]);
            itree_insert(&t, &items[i].node);
            items[i].in = true;
        }
        CHECK_EQ_INT(itree_check(&t), 0);
        /* every key of length <= 3 over the alphabet */
        static const uint8_t alpha[] = {0, 'a', 'b', 'c', 0xff};
        int bad = 0, nkeys = 0;
        uint8_t k[3];
        for (int len = 0; len <= 3; len++) {
            int total = 1;
            for (int i = 0; i < len; i++)
                total *= 5;
            for (int x = 0; x < total; x++) {
                int y = x;
                for (int i = 0; i < len; i++) {
                    k[i] = alpha[y % 5];
                    y /= 5;
                }
                static hits h;
                h.n = 0;
                itree_stab(&t, k, (size_t)len, collect, &h);
                size_t want = 0;
                for (int i = 0; i < N; i++)
                    want += contains(&items[i], k, (size_t)len);
                bad += want != h.n;
                nkeys++;
            }
        }
        CHECK_EQ_INT(nkeys, 156);
        CHECK_EQ_INT(bad, 0);
    }

    return TEST_REPORT();
}
