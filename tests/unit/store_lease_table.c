/*
 * store_lease_table.c — the lease table and its expiry heap against a
 * brute-force model: random adds, removes, expiry moves (keepalives) and
 * pops; after each step the heap invariant holds, every lease is found, and
 * pop_expired returns exactly the model's earliest due lease.
 */
#include <stdlib.h>

#include "lease_table.h"
#include "testhelp.h"

#define MAXL 2000

typedef struct model {
    bool live[MAXL];
    bool expiring[MAXL];
    int64_t expiry[MAXL];
} model;

static int64_t id_of(int i) { return i % 2 ? -(int64_t)i * 7919 : (int64_t)i * 104729 + 1; }

static bool heap_ok(const lease_table *t)
{
    for (size_t i = 0; i < t->nheap; i++) {
        if (t->heap[i]->heap_idx != i)
            return false;
        if (i && t->heap[(i - 1) / 2]->expiry_ms > t->heap[i]->expiry_ms)
            return false;
    }
    return true;
}

/* The model's earliest non-expiring expiry, or INT64_MAX. */
static int64_t model_min(const model *m)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < MAXL; i++)
        if (m->live[i] && !m->expiring[i] && m->expiry[i] < best)
            best = m->expiry[i];
    return best;
}

int main(void)
{
    TEST("empty table") {
        lease_table t;
        CHECK_EQ_INT(lease_table_init(&t), 0);
        CHECK(lease_table_peek(&t) == NULL);
        CHECK(lease_table_pop_expired(&t, 1000) == NULL);
        CHECK(!lease_table_remove(&t, 5));
        CHECK(lease_table_get(&t, 5) == NULL);
        lease_table_free(&t);
    }

    TEST("pops in expiry order, only when due") {
        lease_table t;
        lease_table_init(&t);
        lease_table_add(&t, 1, 10, 300);
        lease_table_add(&t, 2, 10, 100);
        lease_table_add(&t, 3, 10, 200);
        CHECK(lease_table_pop_expired(&t, 99) == NULL);
        lease_entry *e = lease_table_pop_expired(&t, 250);
        CHECK(e && e->id == 2 && e->expiring);
        e = lease_table_pop_expired(&t, 250);
        CHECK(e && e->id == 3);
        CHECK(lease_table_pop_expired(&t, 250) == NULL);
        /* an expiring lease is still in the table, out of the heap */
        CHECK(lease_table_get(&t, 2) != NULL);
        CHECK_EQ_INT(t.count, 3);
        CHECK_EQ_INT(t.nheap, 1);
        /* re-armed (a failed revoke) it comes back */
        lease_table_set_expiry(&t, lease_table_get(&t, 2), 400);
        CHECK(!lease_table_get(&t, 2)->expiring);
        CHECK_EQ_INT(lease_table_peek(&t)->id, 1);
        CHECK(lease_table_remove(&t, 1));
        CHECK_EQ_INT(lease_table_peek(&t)->id, 2);
        CHECK(heap_ok(&t));
        lease_table_free(&t);
    }

    TEST("random operations match a brute-force model") {
        static model m;
        lease_table t;
        lease_table_init(&t);
        srand(12345);
        int64_t now = 0;
        long bad = 0, pops = 0;
        for (int step = 0; step < 200000; step++) {
            int i = rand() % MAXL;
            int op = rand() % 10;
            if (op < 3) { /* grant */
                if (!m.live[i]) {
                    m.live[i] = true;
                    m.expiring[i] = false;
                    m.expiry[i] = now + rand() % 5000;
                    if (!lease_table_add(&t, id_of(i), 5, m.expiry[i]))
                        bad++;
                }
            } else if (op < 5) { /* revoke */
                bool had = m.live[i];
                m.live[i] = false;
                if (lease_table_remove(&t, id_of(i)) != had)
                    bad++;
            } else if (op < 8) { /* keepalive */
                lease_entry *e = lease_table_get(&t, id_of(i));
                if ((e != NULL) != m.live[i])
                    bad++;
                if (e && !m.expiring[i]) {
                    m.expiry[i] = now + rand() % 5000;
                    lease_table_set_expiry(&t, e, m.expiry[i]);
                }
            } else { /* time passes, pop what is due */
                now += rand() % 50;
                for (;;) {
                    int64_t mm = model_min(&m);
                    lease_entry *e = lease_table_pop_expired(&t, now);
                    if (!e) {
                        if (mm <= now)
                            bad++;
                        break;
                    }
                    pops++;
                    int j = -1;
                    for (int k = 0; k < MAXL; k++)
                        if (m.live[k] && id_of(k) == e->id)
                            j = k;
                    if (j < 0 || m.expiring[j] || m.expiry[j] != mm || mm > now) {
                        bad++;
                        break;
                    }
                    m.expiring[j] = true;
                }
            }
            if (step % 997 == 0 && !heap_ok(&t))
                bad++;
        }
        size_t live = 0;
        for (int i = 0; i < MAXL; i++) {
            live += m.live[i];
            if (m.live[i] && !lease_table_get(&t, id_of(i)))
                bad++;
        }
        CHECK_EQ_INT(t.count, live);
        int64_t *ids = malloc(MAXL * sizeof *ids);
        CHECK_EQ_INT(lease_table_ids(&t, ids, MAXL), live);
        free(ids);
        CHECK(heap_ok(&t));
        CHECK(pops > 1000);
        CHECK_EQ_INT(bad, 0);
        lease_table_free(&t);
    }
    return TEST_REPORT();
}
