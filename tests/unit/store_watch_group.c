/*
 * store_watch_group.c — watcher_group against brute force: single-key
 * members in the hash (many per key, head promotion on removal, table
 * growth), range members in the interval tree (prefix, [a,b), from-key,
 * all keys), random add/remove/to_tail, every match compared set for set,
 * and the iteration list kept whole.
 */
#include "watcher_group.h"
#include "testhelp.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem {
    wg_member m;
    uint8_t key[4], end[4];
    size_t klen, elen;
    bool inf, in;
    int hit;
} mem;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 7);
}

static size_t rand_key(uint8_t *k, size_t minlen)
{
    static const uint8_t alpha[] = {0, 'a', 'b', 'c'};
    size_t n = minlen + rnd() % (4 - minlen);
    for (size_t i = 0; i < n; i++)
        k[i] = alpha[rnd() % 4];
    return n;
}

static int cmpb(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : al < bl ? -1 : al > bl;
}

static void rand_mem(mem *x)
{
    x->klen = rand_key(x->key, 1);
    x->inf = false;
    x->elen = 0;
    switch (rnd() % 4) {
    case 0: case 1: break; /* single key: the common case */
    case 2:
        x->inf = true;
        break;
    default:
        do
            x->elen = rand_key(x->end, 1);
        while (cmpb(x->key, x->klen, x->end, x->elen) >= 0 && (x->klen = rand_key(x->key, 1)));
        if (cmpb(x->key, x->klen, x->end, x->elen) >= 0)
            x->inf = true, x->elen = 0;
    }
    wg_member_set(&x->m, x->key, x->klen, x->end, x->elen, x->inf);
}

static bool brute(const mem *x, const uint8_t *k, size_t kl)
{
    if (!x->inf && !x->elen)
        return cmpb(x->key, x->klen, k, kl) == 0;
    return cmpb(x->key, x->klen, k, kl) <= 0 && (x->inf || cmpb(k, kl, x->end, x->elen) < 0);
}

static void visit(wg_member *m, void *arg)
{
    (void)arg;
    ((mem *)m)->hit++;
}

int main(void)
{
    TEST("2,000 members on one key, removal of heads and non-heads") {
        enum { N = 2000 };
        static mem v[N];
        watcher_group g;
        CHECK_EQ_INT(watcher_group_init(&g), 0);
        for (int i = 0; i < N; i++) {
            wg_member_set(&v[i].m, (const uint8_t *)"hot", 3, NULL, 0, false);
            watcher_group_add(&g, &v[i].m);
        }
        watcher_group_match(&g, (const uint8_t *)"hot", 3, visit, NULL);
        watcher_group_match(&g, (const uint8_t *)"ho", 2, visit, NULL);
        watcher_group_match(&g, (const uint8_t *)"hotx", 4, visit, NULL);
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += v[i].hit != 1;
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(g.nheads, 1);
        /* remove the first added (the head), then every third */
        for (int i = 0; i < N; i += 3)
            watcher_group_remove(&g, &v[i].m);
        for (int i = 0; i < N; i++)
            v[i].hit = 0;
        watcher_group_match(&g, (const uint8_t *)"hot", 3, visit, NULL);
        bad = 0;
        for (int i = 0; i < N; i++)
            bad += v[i].hit != (i % 3 ? 1 : 0);
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(watcher_group_size(&g), N - (N + 2) / 3);
        for (int i = 0; i < N; i++)
            if (i % 3)
                watcher_group_remove(&g, &v[i].m);
        CHECK_EQ_INT(g.nheads, 0);
        CHECK(g.all_head == NULL && g.all_tail == NULL && watcher_group_size(&g) == 0);
        watcher_group_destroy(&g);
    }

    TEST("random members, adds/removes/to_tail vs brute force; list stays whole") {
        enum { N = 400 };
        static mem v[N];
        watcher_group g;
        CHECK_EQ_INT(watcher_group_init(&g), 0);
        int bad_match = 0, bad_list = 0, queries = 0;
        size_t live = 0;
        for (int round = 0; round < 20000; round++) {
            mem *x = &v[rnd() % N];
            uint32_t op = rnd() % 10;
            if (op < 6) {
                if (x->in) {
                    watcher_group_remove(&g, &x->m);
                    x->in = false;
                    live--;
                } else {
                    rand_mem(x);
                    watcher_group_add(&g, &x->m);
                    x->in = true;
                    live++;
                }
            } else if (op < 7) {
                if (x->in)
                    watcher_group_to_tail(&g, &x->m);
            } else {
                uint8_t k[4];
                size_t kl = rand_key(k, 0);
                for (int i = 0; i < N; i++)
                    v[i].hit = 0;
                watcher_group_match(&g, k, kl, visit, NULL);
                for (int i = 0; i < N; i++)
                    bad_match += v[i].hit != (v[i].in && brute(&v[i], k, kl) ? 1 : 0);
                queries++;
            }
            if (round % 97 == 0) {
                size_t cnt = 0;
                const wg_member *prev = NULL;
                for (const wg_member *m = g.all_head; m; m = m->all_next) {
                    bad_list += m->all_prev != prev;
                    bad_list += !((const mem *)m)->in;
                    prev = m;
                    cnt++;
                }
                bad_list += prev != g.all_tail;
                bad_list += cnt != live || watcher_group_size(&g) != live;
                bad_list += itree_check(&g.ranges) != 0;
            }
        }
        CHECK_EQ_INT(bad_match, 0);
        CHECK_EQ_INT(bad_list, 0);
        CHECK(queries > 5000);
        CHECK(g.nbuckets >= 16);
        watcher_group_destroy(&g);
    }

    TEST("wg_member_contains agrees with matching") {
        mem x;
        wg_member_set(&x.m, (const uint8_t *)"foo", 3, (const uint8_t *)"fop", 3, false);
        CHECK(wg_member_contains(&x.m, (const uint8_t *)"foo", 3));
        CHECK(wg_member_contains(&x.m, (const uint8_t *)"foo\xff", 4));
        CHECK(!wg_member_contains(&x.m, (const uint8_t *)"fop", 3));
        CHECK(!wg_member_contains(&x.m, (const uint8_t *)"fo", 2));
        wg_member_set(&x.m, (const uint8_t *)"foo", 3, NULL, 0, true);
        CHECK(wg_member_contains(&x.m, (const uint8_t *)"zzz", 3));
        CHECK(!wg_member_contains(&x.m, (const uint8_t *)"fon", 3));
        wg_member_set(&x.m, (const uint8_t *)"foo", 3, NULL, 0, false);
        CHECK(wg_member_contains(&x.m, (const uint8_t *)"foo", 3));
        CHECK(!wg_member_contains(&x.m, (const uint8_t *)"foo1", 4));
    }

    return TEST_REPORT();
}
