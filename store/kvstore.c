/*
 * kvstore.c — etcd's mvcc store (kvstore.go, kvstore_txn.go) and the apply
 * layer of its server (etcdserver/apply.go, v3rpc/key.go checks) on RocksDB.
 *
 * Reads (kvstore_range, kvstore_get_at, kvstore_read_events) run on the
 * caller's thread against the published revision: they ignore index entries
 * above it, so they need neither a lock nor a snapshot.  Physical compaction
 * may remove versions a reader below the new compaction revision needs; such
 * a reader re-reads compact_main after its read and answers
 * KV_ERR_COMPACTED, which is what it would have got a moment later anyway.
 *
 * Writes go through one committer thread (group commit): it takes every
 * pending request, applies them in order into one WriteBatchWithIndex (so
 * each request, and each op of a txn, reads the writes before it), numbers
 * them with consecutive revisions (a request that changes nothing takes
 * none), writes the batch plus META_REV with one sync, publishes the
 * revision, calls the commit hook with the events, then the callbacks.
 * A request that fails validation writes nothing: every check runs before
 * the first write, in etcd's order; the only failures after a write are
 * RocksDB read/write errors, and they fail the whole batch (nothing is
 * applied, the revision is not advanced).
 *
 * Meta column family (values 8-byte big-endian):
 *   "format"          "kvgate1"
 *   "rev"             last committed store revision (1 for a fresh store)
 *   "compact"         scheduled compaction revision (absent: none)
 *   "compact_done"    physical compaction finished through this revision
 *   "compact_cursor"  8-byte revision + escaped key: compactor progress
 *   "applied"         requests applied so far (status' raftIndex)
 * Start-up reads these and, for the lessor, the lease records (lease.h).
 *
 * Leases: grants and revokes are committer requests too.  A put or delete
 * keeps the "lease" family's key -> lease attachments in step with the
 * keys' lease fields in the same batch; a revoke deletes the attached keys
 * as one write txn (one revision, DELETE events through the commit hook).
 * The lessor's memory follows the batch once it is durable.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "gosort.h"
#include "key_index.h"
#include "kv_record.h"
#include "kvstore_int.h"
#include "log.h"
#include "revision.h"

struct kvstore_pending {
    kvstore_pending *next;
    kv_request *req;
    kvstore_done_fn done;
    void *arg;
    kv_response *resp;
    bool wait_physical; /* compact with physical: answer from the compactor */
};

/* ------------------------------------------------------------------ */
/* small helpers */

static inline int64_t aload(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void astore(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kvstore: out of memory\n");
        abort();
    }
    return p;
}

typedef struct kvvec {
    kv_keyvalue *a;
    size_t n, cap;
} kvvec;

static kv_keyvalue *kvvec_push(kvvec *v)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        kv_keyvalue *na = realloc(v->a, nc * sizeof *na);
        if (!na)
            return NULL;
        v->a = na;
        v->cap = nc;
    }
    kv_keyvalue *kv = &v->a[v->n++];
    memset(kv, 0, sizeof *kv);
    return kv;
}

static void kvvec_free(kvvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        kv_keyvalue_free(&v->a[i]);
    free(v->a);
    v->a = NULL;
    v->n = v->cap = 0;
}

/* A reusable growable buffer (committer scratch). */
typedef struct gbuf {
    uint8_t *p;
    size_t cap;
} gbuf;

static uint8_t *gbuf_get(gbuf *b, size_t n)
{
    if (n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np)
            return NULL;
        b->p = np;
        b->cap = nc;
    }
    return b->p;
}

/* What the store reads through: the DB, or the committer's batch + DB. */
typedef struct view {
    kvstore *s;
    backend_batch *wb;
} view;

/* Reads the record of version (main, sub) into a new kv_keyvalue (value
 * only if with_value).  A missing record is KV_ERR_COMPACTED: only
 * compaction removes records (callers re-check the compaction revision). */
static kv_err load_kv(view *v, int64_t main_rev, int64_t sub_rev, bool with_value,
                      kv_keyvalue *out)
{
    uint8_t k[REV_KEY_LEN];
    char *val = NULL;
    size_t vl = 0;
    bool found = false;
    kv_record_view rec;
    revision_encode(k, main_rev, sub_rev);
    kv_err e = backend_get(v->s->be, v->wb, BE_CF_REV, k, sizeof k, &val, &vl, &found);
    if (e)
        return e;
    if (!found)
        return KV_ERR_COMPACTED;
    if (kv_record_decode((const uint8_t *)val, vl, &rec) < 0) {
        backend_free(val);
        return KV_ERR_IO;
    }
    memset(out, 0, sizeof *out);
    if (kv_bytes_set(&out->key, rec.key, rec.key_len) < 0 ||
        (with_value && kv_bytes_set(&out->value, rec.value, rec.value_len) < 0)) {
        kv_keyvalue_free(out);
        backend_free(val);
        return KV_ERR_NOMEM;
    }
    out->create_revision = rec.create_revision;
    out->mod_revision = main_rev;
    out->version = rec.version;
    out->lease = rec.lease;
    backend_free(val);
    return KV_OK;
}

/* Fills kv (key, revisions, version, lease; value if with_value) from an
 * index entry. */
static kv_err entry_to_kv(view *v, const key_index_entry *e, bool with_value, kv_keyvalue *kv)
{
    if (with_value)
        return load_kv(v, e->main_rev, e->sub_rev, true, kv);
    memset(kv, 0, sizeof *kv);
    if (e->esc_len > 2) {
        kv->key.data = malloc(e->esc_len);
        if (!kv->key.data)
            return KV_ERR_NOMEM;
        long n = key_index_unescape(kv->key.data, e->esc, e->esc_len);
        if (n < 0) {
            kv_bytes_free(&kv->key);
            return KV_ERR_IO;
        }
        kv->key.len = (size_t)n;
    }
    kv->create_revision = e->v.create_revision;
    kv->mod_revision = e->main_rev;
    kv->version = e->v.version;
    kv->lease = e->v.lease;
    return KV_OK;
}

/* ------------------------------------------------------------------ */
/* range (etcd 3.4 applierV3backend.Range + mvcc rangeKeys) */

typedef struct range_ctx {
    view *v;
    int64_t limit; /* fetch at most this many (0: all) */
    bool count_only, with_value;
    int64_t count;
    kvvec kvs;
} range_ctx;

static int range_cb(void *arg, const key_index_entry *e)
{
    range_ctx *rc = arg;
    rc->count++;
    if (rc->count_only || (rc->limit > 0 && (int64_t)rc->kvs.n >= rc->limit))
        return 0;
    kv_keyvalue *kv = kvvec_push(&rc->kvs);
    if (!kv)
        return -KV_ERR_NOMEM;
    kv_err err = entry_to_kv(rc->v, e, rc->with_value, kv);
    if (err) {
        rc->kvs.n--;
        return -(int)err;
    }
    return 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

/* etcd 3.4's kvSortBy{Key,Version,Create,Mod,Value}: Less compares the
 * target field only, and sort.Sort (unstable) decides where ties go, so the
 * sort itself is Go's, replayed by gosort.c.  sort.Reverse(x).Less(i, j) is
 * x.Less(j, i). */
typedef struct kv_sorter {
    kv_keyvalue *kvs;
    int target;      /* kv_sort_target */
    bool descending; /* etcd wraps the sorter in sort.Reverse */
} kv_sorter;

static bool kv_sort_less(void *arg, long i, long j)
{
    const kv_sorter *so = arg;
    if (so->descending) {
        long t = i;
        i = j;
        j = t;
    }
    const kv_keyvalue *a = &so->kvs[i], *b = &so->kvs[j];
    switch (so->target) {
    case KV_SORT_KEY: return kv_mem_cmp(a->key.data, a->key.len, b->key.data, b->key.len) < 0;
    case KV_SORT_VERSION: return a->version < b->version;
    case KV_SORT_CREATE: return a->create_revision < b->create_revision;
    case KV_SORT_MOD: return a->mod_revision < b->mod_revision;
    case KV_SORT_VALUE:
        return kv_mem_cmp(a->value.data, a->value.len, b->value.data, b->value.len) < 0;
    }
    return false;
}

static void kv_sort_swap(void *arg, long i, long j)
{
    kv_keyvalue *kvs = ((kv_sorter *)arg)->kvs, t = kvs[i];
    kvs[i] = kvs[j];
    kvs[j] = t;
}

static void prune(kvvec *v, int which, int64_t lim)
{
    size_t o = 0;
    for (size_t i = 0; i < v->n; i++) {
        kv_keyvalue *kv = &v->a[i];
        bool drop = false;
        switch (which) {
        case 0: drop = kv->mod_revision > lim; break;
        case 1: drop = kv->mod_revision < lim; break;
        case 2: drop = kv->create_revision > lim; break;
        case 3: drop = kv->create_revision < lim; break;
        }
        if (drop)
            kv_keyvalue_free(kv);
        else
            v->a[o++] = *kv;
    }
    v->n = o;
}

static bool sort_target_ok(int t)
{
    return t >= KV_SORT_KEY && t <= KV_SORT_VALUE;
}

/* The range of request r against state `v` whose current revision is cur.
 * *rev_read is set to the revision read at. */
static kv_err view_range(view *v, const kv_range_req *r, int64_t cur, int64_t compact_main,
                         kv_range_resp *out, int64_t *rev_read)
{
    memset(out, 0, sizeof *out);
    if (r->key.len == 0)
        return KV_ERR_EMPTY_KEY;
    /* etcd 3.4 panics on an unknown sort target; an unknown sort order it
     * treats as "sorted" (fetch all) without sorting. */
    if (!sort_target_ok(r->sort_target))
        return KV_ERR_INVALID_SORT;
    if (r->revision > cur)
        return KV_ERR_FUTURE_REV;
    int64_t rev = r->revision <= 0 ? cur : r->revision;
    if (rev < compact_main)
        return KV_ERR_COMPACTED;
    *rev_read = rev;

    int64_t limit = r->limit;
    if (r->sort_order != KV_SORT_NONE || r->min_mod_revision || r->max_mod_revision ||
        r->min_create_revision || r->max_create_revision)
        limit = 0;
    /* One extra for "more".  etcd's limit+1 wraps negative at INT64_MAX and
     * its mvcc reads a limit <= 0 as "all"; a negative client limit is "all"
     * too (and never truncates below). */
    if (limit > 0)
        limit = limit < INT64_MAX ? limit + 1 : 0;
    range_ctx rc = {.v = v, .limit = limit, .count_only = r->count_only,
                    .with_value = !r->keys_only || r->sort_target == KV_SORT_VALUE};
    backend_iter *it = backend_iter_new(v->s->be, v->wb, BE_CF_INDEX);
    if (!it)
        return KV_ERR_NOMEM;
    kv_err err = key_index_range(it, r->key.data, r->key.len, r->range_end.data,
                                 r->range_end.len, rev, range_cb, &rc);
    backend_iter_free(it);
    if (err) {
        kvvec_free(&rc.kvs);
        return err;
    }
    if (r->max_mod_revision)
        prune(&rc.kvs, 0, r->max_mod_revision);
    if (r->min_mod_revision)
        prune(&rc.kvs, 1, r->min_mod_revision);
    if (r->max_create_revision)
        prune(&rc.kvs, 2, r->max_create_revision);
    if (r->min_create_revision)
        prune(&rc.kvs, 3, r->min_create_revision);
    int order = r->sort_order;
    if (r->sort_target != KV_SORT_KEY && order == KV_SORT_NONE)
        order = KV_SORT_ASCEND;
    if (order == KV_SORT_ASCEND || order == KV_SORT_DESCEND) {
        kv_sorter so = {rc.kvs.a, r->sort_target, order == KV_SORT_DESCEND};
        gosort_sort((long)rc.kvs.n, kv_sort_less, kv_sort_swap, &so);
    }
    if (r->limit > 0 && (int64_t)rc.kvs.n > r->limit) {
        for (size_t i = (size_t)r->limit; i < rc.kvs.n; i++)
            kv_keyvalue_free(&rc.kvs.a[i]);
        rc.kvs.n = (size_t)r->limit;
        out->more = true;
    }
    if (r->keys_only)
        for (size_t i = 0; i < rc.kvs.n; i++)
            kv_bytes_free(&rc.kvs.a[i].value);
    out->kvs = rc.kvs.a;
    out->n_kvs = rc.kvs.n;
    if (!out->n_kvs) {
        free(out->kvs);
        out->kvs = NULL;
    }
    out->count = rc.count;
    return KV_OK;
}

kv_err kvstore_range(kvstore *s, const kv_range_req *req, kv_range_resp *resp,
                     int64_t *header_rev)
{
    int64_t cur = aload(&s->rev);
    int64_t rev = req->revision > 0 ? req->revision : cur, used;
    view v = {s, NULL};
    kv_err err = view_range(&v, req, cur, aload(&s->compact_main), resp, &used);
    if (err == KV_OK || err == KV_ERR_COMPACTED || err == KV_ERR_IO) {
        if (rev < aload(&s->compact_main)) {
            /* below the compaction point, or raced with a compaction that
             * removed part of what we read */
            kv_range_resp_free(resp);
            memset(resp, 0, sizeof *resp);
            err = KV_ERR_COMPACTED;
        } else if (err == KV_ERR_COMPACTED) {
            err = KV_ERR_IO; /* a record the index names is missing */
        }
    }
    if (header_rev)
        *header_rev = cur;
    return err;
}

/* ------------------------------------------------------------------ */
/* single-key lookups */

typedef struct latest {
    bool found;
    int64_t main_rev, sub_rev;
    key_index_val v;
} latest;

static int latest_cb(void *arg, const key_index_entry *e)
{
    latest *l = arg;
    l->found = true;
    l->main_rev = e->main_rev;
    l->sub_rev = e->sub_rev;
    l->v = e->v;
    return 1;
}

static kv_err lookup(view *v, const uint8_t *key, size_t klen, int64_t rev, latest *out)
{
    memset(out, 0, sizeof *out);
    backend_iter *it = backend_iter_new(v->s->be, v->wb, BE_CF_INDEX);
    if (!it)
        return KV_ERR_NOMEM;
    kv_err err = key_index_range(it, key, klen, NULL, 0, rev, latest_cb, out);
    backend_iter_free(it);
    return err;
}

kv_err kvstore_get_at(kvstore *s, const uint8_t *key, size_t key_len, int64_t rev,
                      kv_keyvalue *out, bool *found)
{
    view v = {s, NULL};
    latest l;
    memset(out, 0, sizeof *out);
    *found = false;
    if (rev < aload(&s->compact_main))
        return KV_ERR_COMPACTED;
    kv_err err = lookup(&v, key, key_len, rev, &l);
    if (!err && l.found)
        err = load_kv(&v, l.main_rev, l.sub_rev, true, out);
    if (rev < aload(&s->compact_main)) {
        if (!err && l.found)
            kv_keyvalue_free(out);
        return KV_ERR_COMPACTED;
    }
    if (err == KV_ERR_COMPACTED)
        err = KV_ERR_IO;
    if (!err)
        *found = l.found;
    return err;
}

/* ------------------------------------------------------------------ */
/* history */

kv_err kvstore_read_events(kvstore *s, int64_t from_rev, int64_t to_rev, size_t max_events,
                           kv_event **evs, size_t *n, int64_t *next_rev)
{
    return kvstore_read_events_max(s, from_rev, to_rev, max_events, 0, evs, n, next_rev);
}

kv_err kvstore_read_events_max(kvstore *s, int64_t from_rev, int64_t to_rev, size_t max_events,
                               size_t max_bytes, kv_event **evs, size_t *n, int64_t *next_rev)
{
    *evs = NULL;
    *n = 0;
    if (from_rev < 1)
        from_rev = 1;
    int64_t cur = aload(&s->rev);
    if (to_rev > cur)
        to_rev = cur; /* above the published revision is not committed yet */
    *next_rev = to_rev + 1 > from_rev ? to_rev + 1 : from_rev;
    /* etcd: a start below the compaction revision is compacted; the
     * compaction revision itself is still readable (its puts are kept, a
     * delete at it is gone with the key's history) */
    if (from_rev < kvstore_compact_rev(s))
        return KV_ERR_COMPACTED;
    if (from_rev > to_rev)
        return KV_OK;
    kv_event *a = NULL;
    size_t cnt = 0, cap = 0, bytes = 0;
    kv_err err = KV_OK;
    int64_t last_main = -1;
    backend_iter *it = backend_iter_new(s->be, NULL, BE_CF_REV);
    if (!it)
        return KV_ERR_NOMEM;
    uint8_t k0[REV_KEY_LEN];
    revision_encode(k0, from_rev, 0);
    backend_iter_seek(it, k0, sizeof k0);
    for (; backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = backend_iter_key(it, &kl);
        const uint8_t *val = backend_iter_value(it, &vl);
        int64_t m, sub;
        kv_record_view rec;
        if (kl != REV_KEY_LEN || kv_record_decode(val, vl, &rec) < 0) {
            err = KV_ERR_IO;
            break;
        }
        revision_decode(k, &m, &sub);
        if (m > to_rev)
            break;
        if (m != last_main && ((max_events && cnt >= max_events) ||
                               (max_bytes && cnt && bytes >= max_bytes))) {
            *next_rev = m;
            break;
        }
        last_main = m;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            kv_event *na = realloc(a, nc * sizeof *na);
            if (!na) {
                err = KV_ERR_NOMEM;
                break;
            }
            a = na;
            cap = nc;
        }
        kv_event *ev = &a[cnt];
        memset(ev, 0, sizeof *ev);
        ev->type = rec.tombstone ? KV_EVENT_DELETE : KV_EVENT_PUT;
        ev->kv.mod_revision = m;
        if (kv_bytes_set(&ev->kv.key, rec.key, rec.key_len) < 0 ||
            (!rec.tombstone && kv_bytes_set(&ev->kv.value, rec.value, rec.value_len) < 0)) {
            kv_event_free(ev);
            err = KV_ERR_NOMEM;
            break;
        }
        if (!rec.tombstone) {
            ev->kv.create_revision = rec.create_revision;
            ev->kv.version = rec.version;
            ev->kv.lease = rec.lease;
        }
        bytes += rec.key_len + (rec.tombstone ? 0 : rec.value_len);
        cnt++;
    }
    if (!err)
        err = backend_iter_status(it);
    backend_iter_free(it);
    if (!err && from_rev < kvstore_compact_rev(s))
        err = KV_ERR_COMPACTED; /* raced with a compaction */
    if (err) {
        kv_events_free(a, cnt);
        return err;
    }
    if (!cnt) {
        free(a);
        a = NULL;
    }
    *evs = a;
    *n = cnt;
    return KV_OK;
}

/* ------------------------------------------------------------------ */
/* the committer's apply */

typedef struct evvec {
    kv_event *a;
    size_t n, cap;
} evvec;

/* A lease grant or revoke of the batch, applied to the lessor's memory
 * once the batch is durable. */
typedef struct lease_effect {
    bool grant;
    int64_t id, ttl;
} lease_effect;

/* Committer-owned state. */
typedef struct committer {
    kvstore *s;
    backend_batch *wb;
    int64_t rev;          /* revision after the requests applied so far */
    int64_t compact_main; /* idem for the compaction revision */
    int64_t applied;      /* idem for the applied-request count */
    evvec ev;
    gbuf kbuf, vbuf;
    lease_effect *lfx;
    size_t nlfx, caplfx;
} committer;

/* State of one write transaction (a put, a delete, or a whole txn). */
typedef struct wtxn {
    committer *c;
    view v;
    int64_t begin; /* store revision before the txn */
    int64_t sub;   /* changes so far */
    bool *path;    /* compare outcomes, etcd's txnPath (DFS order) */
    size_t npath, cappath;
    /* Starts of the from-key deletes (range_end "\0") met so far by the
     * check pass, in execution order.  etcd's duplicate-key check lets such
     * a delete overlap a later put, so a put with ignore_value/ignore_lease
     * may find its key gone by then: the check pass must see that, or the
     * apply pass would fail after writing (borrowed pointers into the req). */
    const kv_bytes **fromkey;
    size_t nfromkey, capfromkey;
} wtxn;

static bool is_fromkey_end(const kv_bytes *end)
{
    return end->len == 1 && end->data[0] == 0;
}

/* True if a from-key delete met earlier in the txn covers `key`. */
static bool wtxn_deleted_earlier(const wtxn *t, const kv_bytes *key)
{
    for (size_t i = 0; i < t->nfromkey; i++)
        if (kv_mem_cmp(t->fromkey[i]->data, t->fromkey[i]->len, key->data, key->len) <= 0)
            return true;
    return false;
}

static kv_err wtxn_note_fromkey(wtxn *t, const kv_bytes *start)
{
    if (t->nfromkey == t->capfromkey) {
        size_t cap = t->capfromkey ? 2 * t->capfromkey : 4;
        const kv_bytes **p = realloc(t->fromkey, cap * sizeof *p);
        if (!p)
            return KV_ERR_NOMEM;
        t->fromkey = p;
        t->capfromkey = cap;
    }
    t->fromkey[t->nfromkey++] = start;
    return KV_OK;
}

static int64_t wtxn_rev(const wtxn *t)
{
    return t->begin + (t->sub > 0);
}

static kv_event *ev_push(committer *c)
{
    if (c->ev.n == c->ev.cap) {
        size_t nc = c->ev.cap ? c->ev.cap * 2 : 64;
        kv_event *na = realloc(c->ev.a, nc * sizeof *na);
        if (!na)
            return NULL;
        c->ev.a = na;
        c->ev.cap = nc;
    }
    kv_event *e = &c->ev.a[c->ev.n++];
    memset(e, 0, sizeof *e);
    return e;
}

static void ev_clear(committer *c)
{
    for (size_t i = 0; i < c->ev.n; i++)
        kv_event_free(&c->ev.a[i]);
    c->ev.n = 0;
}

/* Does lease `id` exist in state v (the committer's batch over the DB)?
 * Read errors count as "exists": the write that follows will hit them. */
static bool lease_exists(view *v, int64_t id)
{
    uint8_t k[LEASE_REC_KEY_LEN];
    char *val = NULL;
    size_t vl = 0;
    bool found = false;
    lease_rec_key(k, id);
    if (backend_get(v->s->be, v->wb, BE_CF_LEASE, k, sizeof k, &val, &vl, &found))
        return true;
    backend_free(val);
    return found;
}

/* Attach (attach = true) or detach `key` to/from lease `id` in the batch. */
static kv_err lease_attach(committer *c, int64_t id, const uint8_t *key, size_t klen, bool attach)
{
    uint8_t *k = gbuf_get(&c->kbuf, LEASE_ATTACH_PFX_LEN + klen);
    if (!k)
        return KV_ERR_NOMEM;
    size_t kl = lease_attach_key(k, id, key, klen);
    if (attach)
        backend_batch_put(c->wb, BE_CF_LEASE, k, kl, "", 0);
    else
        backend_batch_delete(c->wb, BE_CF_LEASE, k, kl);
    return KV_OK;
}

static kv_err lease_effect_push(committer *c, bool grant, int64_t id, int64_t ttl)
{
    if (c->nlfx == c->caplfx) {
        size_t nc = c->caplfx ? c->caplfx * 2 : 16;
        lease_effect *na = realloc(c->lfx, nc * sizeof *na);
        if (!na)
            return KV_ERR_NOMEM;
        c->lfx = na;
        c->caplfx = nc;
    }
    c->lfx[c->nlfx++] = (lease_effect){grant, id, ttl};
    return KV_OK;
}

/* Writes one version (index entry + record) at (t->begin+1, t->sub++). */
static kv_err write_version(wtxn *t, const uint8_t *key, size_t klen, bool tomb,
                            const uint8_t *value, size_t vlen, int64_t create, int64_t version,
                            int64_t lease, int64_t *main_out)
{
    committer *c = t->c;
    int64_t m = t->begin + 1, sub = t->sub++;
    uint8_t *ik = gbuf_get(&c->kbuf, key_index_esc_max(klen) + REV_KEY_LEN);
    uint8_t *rec = gbuf_get(&c->vbuf, kv_record_size(klen, vlen));
    if (!ik || !rec)
        return KV_ERR_NOMEM;
    size_t el = key_index_escape(ik, key, klen);
    revision_encode_inv(ik + el, m, sub);
    uint8_t iv[KEY_INDEX_VAL_LEN];
    key_index_val kiv = {tomb, create, version, lease};
    key_index_val_encode(iv, &kiv);
    backend_batch_put(c->wb, BE_CF_INDEX, ik, el + REV_KEY_LEN, iv, sizeof iv);
    uint8_t rk[REV_KEY_LEN];
    revision_encode(rk, m, sub);
    kv_record_encode(rec, tomb, key, klen, value, vlen, create, version, lease);
    backend_batch_put(c->wb, BE_CF_REV, rk, sizeof rk, rec, kv_record_size(klen, vlen));
    *main_out = m;
    return KV_OK;
}

/* A put that passed every check. */
static kv_err apply_put(wtxn *t, const kv_put_req *p, kv_put_resp *out, int64_t *hdr)
{
    latest l;
    kv_keyvalue prev = {0};
    bool have_prev = false;
    memset(out, 0, sizeof *out);
    kv_err err = lookup(&t->v, p->key.data, p->key.len, wtxn_rev(t), &l);
    if (err)
        return err;
    if (l.found && (p->prev_kv || p->ignore_value)) {
        err = load_kv(&t->v, l.main_rev, l.sub_rev, true, &prev);
        if (err)
            return err == KV_ERR_COMPACTED ? KV_ERR_IO : err;
        have_prev = true;
    }
    if ((p->ignore_value || p->ignore_lease) && !l.found) {
        /* checked before; only reachable through a bug */
        return KV_ERR_KEY_NOT_FOUND;
    }
    const uint8_t *val = p->ignore_value ? prev.value.data : p->value.data;
    size_t vlen = p->ignore_value ? prev.value.len : p->value.len;
    int64_t lease = p->ignore_lease ? l.v.lease : p->lease;
    int64_t m = t->begin + 1;
    int64_t create = l.found ? l.v.create_revision : m;
    int64_t version = l.found ? l.v.version + 1 : 1;
    err = write_version(t, p->key.data, p->key.len, false, val, vlen, create, version, lease, &m);
    int64_t old_lease = l.found ? l.v.lease : 0;
    if (!err && old_lease != lease && old_lease)
        err = lease_attach(t->c, old_lease, p->key.data, p->key.len, false);
    if (!err && old_lease != lease && lease)
        err = lease_attach(t->c, lease, p->key.data, p->key.len, true);
    kv_event *ev = err ? NULL : ev_push(t->c);
    if (!err && !ev)
        err = KV_ERR_NOMEM;
    if (!err) {
        ev->type = KV_EVENT_PUT;
        ev->kv.create_revision = create;
        ev->kv.mod_revision = m;
        ev->kv.version = version;
        ev->kv.lease = lease;
        if (kv_bytes_set(&ev->kv.key, p->key.data, p->key.len) < 0 ||
            kv_bytes_set(&ev->kv.value, val, vlen) < 0)
            err = KV_ERR_NOMEM;
    }
    if (!err && p->prev_kv && have_prev) {
        out->prev_kv = malloc(sizeof *out->prev_kv);
        if (!out->prev_kv)
            err = KV_ERR_NOMEM;
        else {
            *out->prev_kv = prev;
            have_prev = false;
        }
    }
    if (have_prev)
        kv_keyvalue_free(&prev);
    *hdr = t->begin + 1;
    return err;
}

/* Collects the live keys of a delete range. */
typedef struct del_ctx {
    view *v;
    bool prev;
    kvvec kvs; /* key (+ full kv if prev) */
} del_ctx;

static int del_cb(void *arg, const key_index_entry *e)
{
    del_ctx *d = arg;
    kv_keyvalue *kv = kvvec_push(&d->kvs);
    if (!kv)
        return -KV_ERR_NOMEM;
    kv_err err = entry_to_kv(d->v, e, d->prev, kv);
    if (err) {
        d->kvs.n--;
        return -(int)(err == KV_ERR_COMPACTED ? KV_ERR_IO : err);
    }
    return 0;
}

static kv_err apply_delete(wtxn *t, const kv_delete_req *dr, kv_delete_resp *out, int64_t *hdr)
{
    memset(out, 0, sizeof *out);
    del_ctx d = {.v = &t->v, .prev = dr->prev_kv};
    backend_iter *it = backend_iter_new(t->c->s->be, t->c->wb, BE_CF_INDEX);
    if (!it)
        return KV_ERR_NOMEM;
    kv_err err = key_index_range(it, dr->key.data, dr->key.len, dr->range_end.data,
                                 dr->range_end.len, wtxn_rev(t), del_cb, &d);
    backend_iter_free(it);
    for (size_t i = 0; !err && i < d.kvs.n; i++) {
        kv_keyvalue *kv = &d.kvs.a[i];
        int64_t m;
        err = write_version(t, kv->key.data, kv->key.len, true, NULL, 0, 0, 0, 0, &m);
        if (!err && kv->lease)
            err = lease_attach(t->c, kv->lease, kv->key.data, kv->key.len, false);
        kv_event *ev = err ? NULL : ev_push(t->c);
        if (!err && !ev)
            err = KV_ERR_NOMEM;
        if (!err) {
            ev->type = KV_EVENT_DELETE;
            ev->kv.mod_revision = m;
            if (kv_bytes_set(&ev->kv.key, kv->key.data, kv->key.len) < 0)
                err = KV_ERR_NOMEM;
        }
    }
    if (err) {
        kvvec_free(&d.kvs);
        return err;
    }
    out->deleted = (int64_t)d.kvs.n;
    if (dr->prev_kv && d.kvs.n) {
        out->prev_kvs = d.kvs.a;
        out->n_prev_kvs = d.kvs.n;
    } else {
        kvvec_free(&d.kvs);
    }
    *hdr = (out->deleted || t->sub > 0) ? t->begin + 1 : t->begin;
    return KV_OK;
}

/* ---- txn checks, in etcd's order ---- */

static kv_err check_put_req(const kv_put_req *p)
{
    if (p->key.len == 0)
        return KV_ERR_EMPTY_KEY;
    if (p->ignore_value && p->value.len)
        return KV_ERR_VALUE_PROVIDED;
    if (p->ignore_lease && p->lease)
        return KV_ERR_LEASE_PROVIDED;
    return KV_OK;
}

static kv_err check_txn_req(const kv_txn_req *t, long max_ops);

static kv_err check_op(const kv_op *op, long max_ops)
{
    switch (op->type) {
    case KV_OP_RANGE:
        if (op->u.range.key.len == 0)
            return KV_ERR_EMPTY_KEY;
        if (!sort_target_ok(op->u.range.sort_target))
            return KV_ERR_INVALID_SORT;
        return KV_OK;
    case KV_OP_PUT: return check_put_req(&op->u.put);
    case KV_OP_DELETE: return op->u.del.key.len ? KV_OK : KV_ERR_EMPTY_KEY;
    case KV_OP_TXN: return op->u.txn ? check_txn_req(op->u.txn, max_ops) : KV_ERR_KEY_NOT_FOUND;
    }
    return KV_ERR_KEY_NOT_FOUND; /* etcd: empty RequestOp */
}

/* etcd v3rpc checkTxnRequest: a nested txn gets the ops left by its parent. */
static kv_err check_txn_req(const kv_txn_req *t, long max_ops)
{
    long opc = (long)t->n_compare;
    if (opc < (long)t->n_success)
        opc = (long)t->n_success;
    if (opc < (long)t->n_failure)
        opc = (long)t->n_failure;
    if (opc > max_ops)
        return KV_ERR_TOO_MANY_OPS;
    for (size_t i = 0; i < t->n_compare; i++)
        if (t->compare[i].key.len == 0)
            return KV_ERR_EMPTY_KEY;
    kv_err e;
    for (size_t i = 0; i < t->n_success; i++)
        if ((e = check_op(&t->success[i], max_ops - opc)))
            return e;
    for (size_t i = 0; i < t->n_failure; i++)
        if ((e = check_op(&t->failure[i], max_ops - opc)))
            return e;
    return KV_OK;
}

/* etcd checkIntervals: puts may not overlap puts or deletes of the same
 * branch (nested txns included; then/else of one nested txn may put the
 * same key).  Intervals as etcd's adt: [key, end) with an empty end =
 * +infinity, a point = [key, key\0); note etcd takes range_end "\0"
 * literally here, so a from-key delete overlaps nothing. */
typedef struct ivl {
    const kv_bytes *key, *end; /* end NULL: point */
} ivl;

typedef struct ivset {
    ivl *dels;
    size_t nd, capd;
    const kv_bytes **puts;
    size_t np, capp;
} ivset;

static bool grow(void **a, size_t *cap, size_t n, size_t elt)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *na = realloc(*a, nc * elt);
    if (!na)
        return false;
    *a = na;
    *cap = nc;
    return true;
}

static bool dels_hit(const ivset *s, const kv_bytes *k)
{
    for (size_t i = 0; i < s->nd; i++) {
        const ivl *d = &s->dels[i];
        if (!d->end) {
            if (kv_mem_cmp(d->key->data, d->key->len, k->data, k->len) == 0)
                return true;
            continue;
        }
        if (kv_mem_cmp(d->key->data, d->key->len, k->data, k->len) > 0)
            continue;
        if (d->end->len == 0 || kv_mem_cmp(k->data, k->len, d->end->data, d->end->len) < 0)
            return true;
    }
    return false;
}

static bool puts_has(const ivset *s, const kv_bytes *k)
{
    for (size_t i = 0; i < s->np; i++)
        if (kv_mem_cmp(s->puts[i]->data, s->puts[i]->len, k->data, k->len) == 0)
            return true;
    return false;
}

static void ivset_free(ivset *s)
{
    free(s->dels);
    free(s->puts);
    memset(s, 0, sizeof *s);
}

static kv_err add_put(ivset *s, const kv_bytes *k)
{
    if (!grow((void **)&s->puts, &s->capp, s->np, sizeof *s->puts))
        return KV_ERR_NOMEM;
    s->puts[s->np++] = k;
    return KV_OK;
}

static kv_err add_del(ivset *s, ivl d)
{
    if (!grow((void **)&s->dels, &s->capd, s->nd, sizeof *s->dels))
        return KV_ERR_NOMEM;
    s->dels[s->nd++] = d;
    return KV_OK;
}

static kv_err check_intervals(const kv_op *ops, size_t n, ivset *out)
{
    kv_err e = KV_OK;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != KV_OP_DELETE)
            continue;
        const kv_delete_req *d = &ops[i].u.del;
        ivl iv = {&d->key, d->range_end.len ? &d->range_end : NULL};
        if ((e = add_del(out, iv)))
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != KV_OP_TXN || !ops[i].u.txn)
            continue;
        ivset th, el;
        const kv_txn_req *t = ops[i].u.txn;
        if ((e = check_intervals(t->success, t->n_success, &th)))
            goto fail;
        if ((e = check_intervals(t->failure, t->n_failure, &el))) {
            ivset_free(&th);
            goto fail;
        }
        for (size_t j = 0; !e && j < th.np; j++) {
            if (puts_has(out, th.puts[j]) || dels_hit(out, th.puts[j]))
                e = KV_ERR_DUPLICATE_KEY;
            else
                e = add_put(out, th.puts[j]);
        }
        for (size_t j = 0; !e && j < el.np; j++) {
            if (puts_has(out, el.puts[j]) && !puts_has(&th, el.puts[j]))
                e = KV_ERR_DUPLICATE_KEY;
            else if (dels_hit(out, el.puts[j]))
                e = KV_ERR_DUPLICATE_KEY;
            else
                e = add_put(out, el.puts[j]);
        }
        for (size_t j = 0; !e && j < th.nd; j++)
            e = add_del(out, th.dels[j]);
        for (size_t j = 0; !e && j < el.nd; j++)
            e = add_del(out, el.dels[j]);
        ivset_free(&th);
        ivset_free(&el);
        if (e)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != KV_OP_PUT)
            continue;
        const kv_bytes *k = &ops[i].u.put.key;
        if (puts_has(out, k) || dels_hit(out, k)) {
            e = KV_ERR_DUPLICATE_KEY;
            goto fail;
        }
        if ((e = add_put(out, k)))
            goto fail;
    }
    return KV_OK;
fail:
    ivset_free(out);
    return e;
}

static kv_err check_dups(const kv_op *ops, size_t n)
{
    ivset s;
    kv_err e = check_intervals(ops, n, &s);
    if (!e)
        ivset_free(&s);
    return e;
}

/* ---- compares (etcd applyCompare / compareKV) ---- */

static bool compare_kv(const kv_compare *c, const kv_keyvalue *kv)
{
    int r = 0;
    switch (c->target) {
    case KV_CMP_VALUE:
        r = kv_mem_cmp(kv->value.data, kv->value.len, c->value.data, c->value.len);
        break;
    case KV_CMP_CREATE: r = cmp_i64(kv->create_revision, c->number); break;
    case KV_CMP_MOD: r = cmp_i64(kv->mod_revision, c->number); break;
    case KV_CMP_VERSION: r = cmp_i64(kv->version, c->number); break;
    case KV_CMP_LEASE: r = cmp_i64(kv->lease, c->number); break;
    }
    switch (c->result) {
    case KV_CMP_EQUAL: return r == 0;
    case KV_CMP_NOT_EQUAL: return r != 0;
    case KV_CMP_GREATER: return r > 0;
    case KV_CMP_LESS: return r < 0;
    }
    return true;
}

typedef struct cmp_ctx {
    view *v;
    const kv_compare *c;
    bool any, ok;
} cmp_ctx;

static int cmp_cb(void *arg, const key_index_entry *e)
{
    cmp_ctx *cc = arg;
    kv_keyvalue kv;
    cc->any = true;
    kv_err err = entry_to_kv(cc->v, e, cc->c->target == KV_CMP_VALUE, &kv);
    if (err)
        return -(int)(err == KV_ERR_COMPACTED ? KV_ERR_IO : err);
    cc->ok = compare_kv(cc->c, &kv);
    kv_keyvalue_free(&kv);
    return cc->ok ? 0 : 1;
}

static kv_err eval_compare(wtxn *t, const kv_compare *c, bool *ok)
{
    cmp_ctx cc = {.v = &t->v, .c = c, .ok = true};
    backend_iter *it = backend_iter_new(t->c->s->be, t->c->wb, BE_CF_INDEX);
    if (!it)
        return KV_ERR_NOMEM;
    kv_err err = key_index_range(it, c->key.data, c->key.len, c->range_end.data,
                                 c->range_end.len, t->begin, cmp_cb, &cc);
    backend_iter_free(it);
    if (err)
        return err;
    if (!cc.any) {
        kv_keyvalue zero = {0};
        /* a missing key fails every value compare; else compares as 0 */
        *ok = c->target == KV_CMP_VALUE ? false : compare_kv(c, &zero);
    } else {
        *ok = cc.ok;
    }
    return KV_OK;
}

/* etcd compareToPath: every compare of the chosen branches is evaluated on
 * the state before the txn. */
static kv_err compute_path(wtxn *t, const kv_txn_req *tr)
{
    bool ok = true;
    for (size_t i = 0; ok && i < tr->n_compare; i++) {
        kv_err e = eval_compare(t, &tr->compare[i], &ok);
        if (e)
            return e;
    }
    if (!grow((void **)&t->path, &t->cappath, t->npath, sizeof *t->path))
        return KV_ERR_NOMEM;
    t->path[t->npath++] = ok;
    const kv_op *ops = ok ? tr->success : tr->failure;
    size_t n = ok ? tr->n_success : tr->n_failure;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == KV_OP_TXN && ops[i].u.txn) {
            kv_err e = compute_path(t, ops[i].u.txn);
            if (e)
                return e;
        }
    }
    return KV_OK;
}

/* etcd checkRequests with checkPut (which == 0) or checkRange (which == 1),
 * against the state before the txn. */
static kv_err check_requests(wtxn *t, const kv_txn_req *tr, size_t *pi, int which)
{
    bool ok = t->path[(*pi)++];
    const kv_op *ops = ok ? tr->success : tr->failure;
    size_t n = ok ? tr->n_success : tr->n_failure;
    for (size_t i = 0; i < n; i++) {
        const kv_op *op = &ops[i];
        kv_err e = KV_OK;
        if (op->type == KV_OP_TXN) {
            e = check_requests(t, op->u.txn, pi, which);
        } else if (which == 0 && op->type == KV_OP_PUT) {
            const kv_put_req *p = &op->u.put;
            if (p->ignore_value || p->ignore_lease) {
                latest l;
                e = lookup(&t->v, p->key.data, p->key.len, t->begin, &l);
                if (!e && (!l.found || wtxn_deleted_earlier(t, &p->key)))
                    e = KV_ERR_KEY_NOT_FOUND;
            }
            if (!e && p->lease && !lease_exists(&t->v, p->lease))
                e = KV_ERR_LEASE_NOT_FOUND;
        } else if (which == 0 && op->type == KV_OP_DELETE &&
                   is_fromkey_end(&op->u.del.range_end)) {
            e = wtxn_note_fromkey(t, &op->u.del.key);
        } else if (which == 1 && op->type == KV_OP_RANGE) {
            const kv_range_req *r = &op->u.range;
            if (r->revision != 0) {
                if (r->revision > t->begin)
                    e = KV_ERR_FUTURE_REV;
                else if (r->revision < t->c->compact_main)
                    e = KV_ERR_COMPACTED;
            }
        }
        if (e)
            return e;
    }
    return KV_OK;
}

static kv_err apply_txn(wtxn *t, const kv_txn_req *tr, size_t *pi, kv_txn_resp *resp)
{
    bool ok = t->path[(*pi)++];
    const kv_op *ops = ok ? tr->success : tr->failure;
    size_t n = ok ? tr->n_success : tr->n_failure;
    resp->succeeded = ok;
    resp->n_responses = 0;
    resp->responses = n ? calloc(n, sizeof *resp->responses) : NULL;
    if (n && !resp->responses)
        return KV_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const kv_op *op = &ops[i];
        kv_op_resp *r = &resp->responses[i];
        kv_err e = KV_OK;
        r->type = op->type;
        resp->n_responses = i + 1;
        switch (op->type) {
        case KV_OP_RANGE: {
            int64_t used;
            r->header_revision = wtxn_rev(t);
            e = view_range(&t->v, &op->u.range, wtxn_rev(t), t->c->compact_main, &r->u.range, &used);
            if (e == KV_ERR_COMPACTED)
                e = KV_ERR_IO; /* checked before: a missing record */
            break;
        }
        case KV_OP_PUT: e = apply_put(t, &op->u.put, &r->u.put, &r->header_revision); break;
        case KV_OP_DELETE: e = apply_delete(t, &op->u.del, &r->u.del, &r->header_revision); break;
        case KV_OP_TXN:
            r->header_revision = 0; /* etcd leaves nested txn headers empty */
            r->u.txn = calloc(1, sizeof *r->u.txn);
            if (!r->u.txn)
                e = KV_ERR_NOMEM;
            else
                e = apply_txn(t, op->u.txn, pi, r->u.txn);
            break;
        }
        if (e)
            return e;
    }
    return KV_OK;
}

/* ---- leases (etcd's LeaseGrant / LeaseRevoke applied) ---- */

static kv_err apply_lease_grant(committer *c, const kv_lease_req *lr, kv_response *resp)
{
    view v = {c->s, c->wb};
    int64_t id = lr->id, ttl = lr->ttl;
    if (ttl > KV_LEASE_MAX_TTL) {
        resp->err = KV_ERR_LEASE_TTL_TOO_LARGE;
        return KV_OK;
    }
    if (id == 0) {
        int tries = 0;
        do {
            if (++tries > 1000)
                return KV_ERR_IO; /* every probe failed: the reads do */
            id = lessor_next_id(c->s->lessor);
        } while (lease_exists(&v, id));
    } else if (lease_exists(&v, id)) {
        resp->err = KV_ERR_LEASE_EXISTS;
        return KV_OK;
    }
    if (ttl < c->s->opts.lease_min_ttl)
        ttl = c->s->opts.lease_min_ttl;
    uint8_t k[LEASE_REC_KEY_LEN], val[8], end[LEASE_ATTACH_PFX_LEN];
    lease_rec_key(k, id);
    be64_put(val, (uint64_t)ttl);
    backend_batch_put(c->wb, BE_CF_LEASE, k, sizeof k, val, sizeof val);
    lease_end_key(end, id);
    backend_batch_put(c->wb, BE_CF_LEASE, end, sizeof end, "", 0);
    kv_err e = lease_effect_push(c, true, id, ttl);
    if (e)
        return e;
    resp->lease.id = id;
    resp->lease.ttl = ttl;
    return KV_OK;
}

/* Deletes every key attached to the lease in one revision (none if it has
 * no keys), in key order, then the lease. */
static kv_err apply_lease_revoke(committer *c, const kv_lease_req *lr, kv_response *resp)
{
    wtxn t = {.c = c, .v = {c->s, c->wb}, .begin = c->rev};
    int64_t id = lr->id;
    bool stale = false;
    if (lr->expired) {
        /* revoked and granted again since it expired: not ours to revoke */
        for (size_t i = 0; i < c->nlfx; i++)
            if (c->lfx[i].grant && c->lfx[i].id == id)
                stale = true;
        if (!stale && !lessor_is_expiring(c->s->lessor, id))
            stale = true;
    }
    if (stale || !lease_exists(&t.v, id)) {
        resp->err = KV_ERR_LEASE_NOT_FOUND;
        return KV_OK;
    }
    kvvec keys = {0};
    uint8_t pfx[LEASE_ATTACH_PFX_LEN];
    kv_err err = KV_OK;
    lease_attach_key(pfx, id, NULL, 0);
    backend_iter *it = backend_iter_new(c->s->be, c->wb, BE_CF_LEASE);
    if (!it)
        return KV_ERR_NOMEM;
    for (backend_iter_seek(it, pfx, sizeof pfx); backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl;
        const uint8_t *k = backend_iter_key(it, &kl);
        if (kl < sizeof pfx || memcmp(k, pfx, sizeof pfx) != 0)
            break;
        kv_keyvalue *kv = kvvec_push(&keys);
        if (!kv || kv_bytes_set(&kv->key, k + sizeof pfx, kl - sizeof pfx) < 0) {
            err = KV_ERR_NOMEM;
            break;
        }
    }
    if (!err)
        err = backend_iter_status(it);
    backend_iter_free(it);
    for (size_t i = 0; !err && i < keys.n; i++) {
        const kv_bytes *key = &keys.a[i].key;
        latest l;
        err = lookup(&t.v, key->data, key->len, wtxn_rev(&t), &l);
        if (!err && l.found && l.v.lease == id) {
            kv_delete_req dr = {.key = *key};
            kv_delete_resp dresp;
            int64_t hdr;
            err = apply_delete(&t, &dr, &dresp, &hdr);
            kv_delete_resp_free(&dresp);
        }
        if (!err) /* apply_delete detached it; a stale entry goes too */
            err = lease_attach(c, id, key->data, key->len, false);
    }
    kvvec_free(&keys);
    if (err)
        return err;
    uint8_t k[LEASE_REC_KEY_LEN], end[LEASE_ATTACH_PFX_LEN];
    lease_rec_key(k, id);
    backend_batch_delete(c->wb, BE_CF_LEASE, k, sizeof k);
    lease_end_key(end, id);
    backend_batch_delete(c->wb, BE_CF_LEASE, end, sizeof end);
    if ((err = lease_effect_push(c, false, id, 0)))
        return err;
    c->rev = wtxn_rev(&t);
    resp->header_revision = c->rev;
    return KV_OK;
}

/* ---- one request ---- */

/* Returns a batch-fatal error (I/O, memory) or KV_OK; request-level errors
 * go to resp->err. */
static kv_err apply_request(committer *c, kvstore_pending *p)
{
    kv_request *req = p->req;
    kv_response *resp = p->resp;
    wtxn t = {.c = c, .v = {c->s, c->wb}, .begin = c->rev};
    kv_err e = KV_OK, fatal = KV_OK;

    resp->header_revision = c->rev;
    if (req->kind == KV_REQ_LEASE_GRANT)
        return apply_lease_grant(c, &req->lease, resp);
    if (req->kind == KV_REQ_LEASE_REVOKE)
        return apply_lease_revoke(c, &req->lease, resp);
    if (req->kind == KV_REQ_COMPACT) {
        int64_t rev = req->compact.revision;
        if (rev <= c->compact_main) {
            resp->err = KV_ERR_COMPACTED;
        } else if (rev > c->rev) {
            resp->err = KV_ERR_FUTURE_REV;
        } else {
            uint8_t v[8];
            be64_put(v, (uint64_t)rev);
            backend_batch_put(c->wb, BE_CF_META, META_COMPACT, strlen(META_COMPACT), v, 8);
            c->compact_main = rev;
            p->wait_physical = req->compact.physical;
        }
        return KV_OK;
    }
    const kv_op *op = &req->op;
    kv_op_resp *r = &resp->resp;
    r->type = op->type;
    switch (op->type) {
    case KV_OP_RANGE: {
        const kv_range_req *rr = &op->u.range;
        int64_t used = rr->revision > 0 ? rr->revision : c->rev;
        e = view_range(&t.v, rr, c->rev, c->compact_main, &r->u.range, &used);
        if (e == KV_ERR_COMPACTED && used >= c->compact_main) {
            e = KV_OK; /* not the check: a record the index names is missing */
            fatal = KV_ERR_IO;
        }
        r->header_revision = c->rev;
        break;
    }
    case KV_OP_PUT: {
        const kv_put_req *pr = &op->u.put;
        e = check_put_req(pr);
        if (!e && pr->lease && !lease_exists(&t.v, pr->lease))
            e = KV_ERR_LEASE_NOT_FOUND;
        if (!e && (pr->ignore_value || pr->ignore_lease)) {
            latest l;
            fatal = lookup(&t.v, pr->key.data, pr->key.len, t.begin, &l);
            if (!fatal && !l.found)
                e = KV_ERR_KEY_NOT_FOUND;
        }
        if (!e && !fatal)
            fatal = apply_put(&t, pr, &r->u.put, &r->header_revision);
        break;
    }
    case KV_OP_DELETE:
        if (op->u.del.key.len == 0)
            e = KV_ERR_EMPTY_KEY;
        else
            fatal = apply_delete(&t, &op->u.del, &r->u.del, &r->header_revision);
        break;
    case KV_OP_TXN: {
        const kv_txn_req *tr = op->u.txn;
        size_t pi = 0;
        if (!tr) {
            e = KV_ERR_KEY_NOT_FOUND;
            break;
        }
        e = check_txn_req(tr, (long)c->s->opts.max_txn_ops);
        if (!e)
            e = check_dups(tr->success, tr->n_success);
        if (!e)
            e = check_dups(tr->failure, tr->n_failure);
        if (e)
            break;
        if ((fatal = compute_path(&t, tr)))
            break;
        if ((e = check_requests(&t, tr, &pi, 0)))
            break;
        pi = 0;
        if ((e = check_requests(&t, tr, &pi, 1)))
            break;
        r->u.txn = calloc(1, sizeof *r->u.txn);
        if (!r->u.txn) {
            fatal = KV_ERR_NOMEM;
            break;
        }
        pi = 0;
        fatal = apply_txn(&t, tr, &pi, r->u.txn);
        r->header_revision = wtxn_rev(&t);
        break;
    }
    }
    free(t.path);
    free(t.fromkey);
    if (fatal == KV_ERR_KEY_NOT_FOUND || fatal == KV_ERR_COMPACTED)
        fatal = KV_ERR_IO; /* checked before; the data disagrees with the index */
    if (e || fatal) {
        kv_op_resp_free(r);
        memset(r, 0, sizeof *r);
        resp->err = e ? e : fatal;
        return fatal && !e ? fatal : KV_OK;
    }
    c->rev = wtxn_rev(&t);
    resp->header_revision = c->rev;
    return KV_OK;
}

static void fail_response(kv_response *resp, kv_err err, int64_t rev)
{
    kv_op_resp_free(&resp->resp);
    memset(&resp->resp, 0, sizeof resp->resp);
    resp->err = err;
    resp->header_revision = rev;
}

/* Calls the commit hook installed now (not when the batch was taken: a
 * swap that returned must not see the old hook called afterwards), marked
 * busy so kvstore_set_commit_hook can wait for the call to end. */
static void call_commit_hook(kvstore *s, int64_t rev, const kv_event *evs, size_t n)
{
    pthread_mutex_lock(&s->qmu);
    kvstore_commit_fn hook = s->hook;
    void *hook_arg = s->hook_arg;
    s->hook_busy = hook != NULL;
    pthread_mutex_unlock(&s->qmu);
    if (!hook)
        return;
    hook(hook_arg, rev, evs, n);
    pthread_mutex_lock(&s->qmu);
    s->hook_busy = false;
    pthread_cond_broadcast(&s->hook_cond);
    pthread_mutex_unlock(&s->qmu);
}

/* One batch's counters: a handful of relaxed atomic adds per group commit,
 * nothing per request. */
static void stats_batch(kvstore *s, uint64_t nreq, bool synced, bool failed)
{
    atomic_fetch_add_explicit(&s->st_commits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->st_requests, nreq, memory_order_relaxed);
    if (synced)
        atomic_fetch_add_explicit(&s->st_fsyncs, 1, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&s->st_commit_failures, 1, memory_order_relaxed);
    unsigned b = 0;
    while (b < KVSTORE_BATCH_BUCKETS - 1 && ((uint64_t)1 << b) < nreq)
        b++;
    atomic_fetch_add_explicit(&s->st_batch[b], 1, memory_order_relaxed);
}

void kvstore_get_stats(kvstore *s, kvstore_stats *out)
{
    memset(out, 0, sizeof *out);
    out->commits = atomic_load_explicit(&s->st_commits, memory_order_relaxed);
    out->fsyncs = atomic_load_explicit(&s->st_fsyncs, memory_order_relaxed);
    out->commit_failures = atomic_load_explicit(&s->st_commit_failures, memory_order_relaxed);
    out->requests = atomic_load_explicit(&s->st_requests, memory_order_relaxed);
    for (unsigned i = 0; i < KVSTORE_BATCH_BUCKETS; i++)
        out->batch_sizes[i] = atomic_load_explicit(&s->st_batch[i], memory_order_relaxed);
    out->compactions = atomic_load_explicit(&s->st_compactions, memory_order_relaxed);
    out->leases_expired = atomic_load_explicit(&s->st_leases_expired, memory_order_relaxed);
    out->leases = s->lessor ? lessor_count(s->lessor) : 0;
}

static void process_batch(committer *c, kvstore_pending *batch)
{
    kvstore *s = c->s;
    int64_t begin = c->rev, begin_compact = c->compact_main, begin_applied = c->applied;
    kv_err fatal = KV_OK;
    kvstore_pending *p;

    backend_batch_clear(c->wb);
    ev_clear(c);
    c->nlfx = 0;
    uint64_t nreq = 0;
    for (p = batch; p && !fatal; p = p->next) {
        fatal = apply_request(c, p);
        c->applied++;
        nreq++;
    }
    bool wrote = false;
    if (!fatal && backend_batch_count(c->wb) > 0) {
        wrote = true;
        uint8_t v[8];
        be64_put(v, (uint64_t)c->rev);
        backend_batch_put(c->wb, BE_CF_META, META_REV, strlen(META_REV), v, 8);
        be64_put(v, (uint64_t)c->applied);
        backend_batch_put(c->wb, BE_CF_META, META_APPLIED, strlen(META_APPLIED), v, 8);
        fatal = backend_batch_write(s->be, c->wb, s->opts.sync_writes);
    }
    backend_batch_clear(c->wb);
    stats_batch(s, nreq, wrote && !fatal && s->opts.sync_writes, fatal != KV_OK);
    if (fatal) {
        log_printf(LOG_ERROR, "store", "commit failed err=%s requests=%llu rev=%lld",
                   kv_err_name(fatal), (unsigned long long)nreq, (long long)begin);
        c->rev = begin;
        c->compact_main = begin_compact;
        c->applied = begin_applied;
        c->nlfx = 0;
        ev_clear(c);
        for (p = batch; p; p = p->next) {
            p->wait_physical = false;
            if (p->resp->err == KV_OK || p->resp->err == KV_ERR_IO || p->resp->err == KV_ERR_NOMEM)
                fail_response(p->resp, fatal, begin);
            else
                p->resp->header_revision = begin;
        }
    } else {
        /* leases first: a grant's client may renew it as soon as it hears */
        for (size_t i = 0; i < c->nlfx; i++) {
            if (c->lfx[i].grant)
                lessor_granted(s->lessor, c->lfx[i].id, c->lfx[i].ttl);
            else
                lessor_revoked(s->lessor, c->lfx[i].id);
        }
        c->nlfx = 0;
        astore(&s->applied, c->applied);
        astore(&s->rev, c->rev);
        if (c->compact_main != begin_compact) {
            astore(&s->compact_main, c->compact_main);
            compactor_schedule(s, c->compact_main);
        }
        if (c->ev.n)
            call_commit_hook(s, c->rev, c->ev.a, c->ev.n);
        ev_clear(c);
    }
    while (batch) {
        p = batch;
        batch = p->next;
        bool compact = p->req->kind == KV_REQ_COMPACT;
        kv_request_free(p->req);
        if (compact && p->resp->err == KV_OK)
            p->resp->header_revision = c->rev; /* etcd: s.kv.Rev() when answering */
        if (p->wait_physical)
            compactor_wait(s, c->compact_main, p->done, p->arg, p->resp);
        else
            p->done(p->arg, p->resp);
        free(p);
    }
}

static void *committer_main(void *arg)
{
    kvstore *s = arg;
    committer c = {.s = s, .rev = aload(&s->rev), .compact_main = aload(&s->compact_main),
                   .applied = aload(&s->applied)};
    c.wb = backend_batch_new(s->be, true);
    if (!c.wb) {
        fprintf(stderr, "kvstore: out of memory\n");
        abort();
    }
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !s->closing)
            pthread_cond_wait(&s->qcond, &s->qmu);
        kvstore_pending *batch = s->qhead;
        s->qhead = s->qtail = NULL;
        bool closing = s->closing;
        pthread_mutex_unlock(&s->qmu);
        if (!batch) {
            if (closing)
                break;
            continue;
        }
        process_batch(&c, batch);
    }
    backend_batch_free(c.wb);
    ev_clear(&c);
    free(c.ev.a);
    free(c.kbuf.p);
    free(c.vbuf.p);
    free(c.lfx);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* public write API */

void kvstore_submit(kvstore *s, kv_request *req, kvstore_done_fn done, void *arg)
{
    kvstore_pending *p = xmalloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->req = req;
    p->done = done;
    p->arg = arg;
    p->resp = xmalloc(sizeof *p->resp);
    memset(p->resp, 0, sizeof *p->resp);
    pthread_mutex_lock(&s->qmu);
    if (s->closing) {
        pthread_mutex_unlock(&s->qmu);
        p->resp->err = KV_ERR_CLOSED;
        p->resp->header_revision = aload(&s->rev);
        kv_request_free(req);
        done(arg, p->resp);
        free(p);
        return;
    }
    if (s->qtail)
        s->qtail->next = p;
    else
        s->qhead = p;
    s->qtail = p;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kv_response *resp;
    bool done;
} sync_wait;

static void sync_done(void *arg, kv_response *resp)
{
    sync_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->resp = resp;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

kv_response *kvstore_do(kvstore *s, kv_request *req)
{
    sync_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    kvstore_submit(s, req, sync_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return w.resp;
}

void kvstore_set_commit_hook(kvstore *s, kvstore_commit_fn fn, void *arg)
{
    /* from inside the hook (the committer thread) the running call is the
     * caller's own: waiting for it would never end */
    bool own = s->committer_started && pthread_equal(pthread_self(), s->committer);
    pthread_mutex_lock(&s->qmu);
    s->hook = fn;
    s->hook_arg = arg;
    while (s->hook_busy && !own)
        pthread_cond_wait(&s->hook_cond, &s->qmu);
    pthread_mutex_unlock(&s->qmu);
}

int64_t kvstore_rev(kvstore *s)
{
    return aload(&s->rev);
}

int64_t kvstore_compact_rev(kvstore *s)
{
    int64_t c = aload(&s->compact_main);
    return c < 0 ? 0 : c;
}

uint64_t kvstore_db_size(kvstore *s)
{
    return backend_size(s->be);
}

/* ------------------------------------------------------------------ */
/* open / close */

void kvstore_opts_default(kvstore_opts *o)
{
    o->max_txn_ops = 128;
    o->block_cache_bytes = 64u << 20;
    o->sync_writes = true;
    o->compaction_batch = 1000;
    o->lease_min_ttl = 2;
    o->in_memory = false;
}

static char *fmtmsg(const char *fmt, const char *dir, const char *extra)
{
    char *m = NULL;
    if (asprintf(&m, fmt, dir, extra ? extra : "") < 0)
        return NULL;
    return m;
}

static int mkdir_p(const char *dir)
{
    char *d = strdup(dir);
    if (!d)
        return -1;
    for (char *q = d + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        if (mkdir(d, 0700) < 0 && errno != EEXIST) {
            free(d);
            return -1;
        }
        *q = '/';
    }
    int r = mkdir(d, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(d);
    return r;
}

/* 1 empty, 0 not empty, -1 error */
static int dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* 1 if `dir` holds a RocksDB table file (*.sst, or *.ldb as older
 * versions named them), 0 if not, -1 on error.  A store whose creation was
 * interrupted before its format marker was written has none; a store that
 * opens empty although table files are there lost its MANIFEST. */
static int dir_has_table_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int has = 0;
    while (!has && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        has = n > 4 && (!strcmp(e->d_name + n - 4, ".sst") || !strcmp(e->d_name + n - 4, ".ldb"));
    }
    closedir(d);
    return has;
}

/* Reads an 8-byte meta value; *found false if absent. */
static kv_err meta_get_i64(backend *be, const char *key, int64_t *v, bool *found)
{
    char *val = NULL;
    size_t vl = 0;
    kv_err e = backend_get(be, NULL, BE_CF_META, key, strlen(key), &val, &vl, found);
    if (e || !*found)
        return e;
    if (vl != 8) {
        backend_free(val);
        return KV_ERR_IO;
    }
    *v = (int64_t)be64_get((const uint8_t *)val);
    backend_free(val);
    return KV_OK;
}

kvstore *kvstore_open(const char *dir, const kvstore_opts *opts, char **errmsg)
{
    kvstore *s = NULL;
    struct stat st;
    char *msg = NULL;
    *errmsg = NULL;
    kvstore_opts o;
    kvstore_opts_default(&o);
    if (opts) {
        o = *opts;
        kvstore_opts def;
        kvstore_opts_default(&def);
        if (!o.max_txn_ops)
            o.max_txn_ops = def.max_txn_ops;
        if (!o.block_cache_bytes)
            o.block_cache_bytes = def.block_cache_bytes;
        if (!o.compaction_batch)
            o.compaction_batch = def.compaction_batch;
        if (o.lease_min_ttl <= 0)
            o.lease_min_ttl = def.lease_min_ttl;
    }
    int empty = 1;
    bool had_tables = false;
    if (o.in_memory)
        goto dir_ok; /* nothing on disk: `dir` only names the DB */
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || mkdir_p(dir) < 0 || stat(dir, &st) < 0) {
            msg = fmtmsg("data dir %s cannot be created: %s", dir, strerror(errno));
            goto err;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        msg = fmtmsg("data dir %s is not a directory%s", dir, NULL);
        goto err;
    }
    if (access(dir, R_OK | W_OK | X_OK) < 0) {
        msg = fmtmsg("data dir %s is not usable: %s", dir, strerror(errno));
        goto err;
    }
    empty = dir_empty(dir);
    if (empty < 0) {
        msg = fmtmsg("data dir %s cannot be read: %s", dir, strerror(errno));
        goto err;
    }
    if (!empty) {
        char *cur = NULL;
        if (asprintf(&cur, "%s/CURRENT", dir) < 0)
            goto nomem;
        bool has = stat(cur, &st) == 0;
        free(cur);
        if (!has) {
            msg = fmtmsg("data dir %s is not empty and holds no kvgate store "
                         "(refusing to create one over it)%s", dir, NULL);
            goto err;
        }
        /* looked at before RocksDB opens it: it may delete table files */
        had_tables = dir_has_table_files(dir) != 0;
        if (had_tables && !backend_lists_meta(dir)) {
            msg = fmtmsg("data dir %s holds table files but its MANIFEST names none of the "
                         "store's column families (corrupt or truncated MANIFEST?)%s", dir, NULL);
            goto err;
        }
    }
dir_ok:
    s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->opts = o;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->hook_cond, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccond, NULL);
    backend_opts bo = {.block_cache_bytes = o.block_cache_bytes, .create = empty == 1,
                       .in_memory = o.in_memory};
    s->be = backend_open(dir, &bo, &msg);
    if (!s->be)
        goto err;

    char *fv = NULL;
    size_t fl = 0;
    bool found = false;
    if (backend_get(s->be, NULL, BE_CF_META, META_FORMAT, strlen(META_FORMAT), &fv, &fl,
                    &found)) {
        msg = fmtmsg("data dir %s: cannot read the store's meta data%s", dir, NULL);
        goto err;
    }
    if (!found) {
        if (!backend_is_empty(s->be)) {
            msg = fmtmsg("data dir %s holds a store without a format marker (corrupt?)%s", dir,
                         NULL);
            goto err;
        }
        if (had_tables) {
            /* e.g. a truncated MANIFEST: RocksDB opens an empty version
             * (and deletes the .sst files it no longer knows as obsolete).
             * Never start empty over a store that had data. */
            msg = fmtmsg("data dir %s holds table files but the store opened empty "
                         "(corrupt or truncated MANIFEST?)%s", dir, NULL);
            goto err;
        }
        /* fresh (or a creation interrupted before this point) */
        backend_batch *wb = backend_batch_new(s->be, false);
        uint8_t v[8];
        if (!wb)
            goto nomem;
        be64_put(v, 1);
        backend_batch_put(wb, BE_CF_META, META_REV, strlen(META_REV), v, 8);
        backend_batch_put(wb, BE_CF_META, META_FORMAT, strlen(META_FORMAT), META_FORMAT_VALUE,
                          strlen(META_FORMAT_VALUE));
        kv_err e = backend_batch_write(s->be, wb, true);
        backend_batch_free(wb);
        if (e) {
            msg = fmtmsg("data dir %s: cannot initialize the store: %s", dir, kv_err_name(e));
            goto err;
        }
    } else {
        bool ok = fl == strlen(META_FORMAT_VALUE) && memcmp(fv, META_FORMAT_VALUE, fl) == 0;
        backend_free(fv);
        if (!ok) {
            msg = fmtmsg("data dir %s holds a store of an unknown format%s", dir, NULL);
            goto err;
        }
    }
    int64_t rev = 0, cm = -1, cd = -1;
    bool f1, f2, f3;
    if (meta_get_i64(s->be, META_REV, &rev, &f1) || !f1 || rev < 1 ||
        meta_get_i64(s->be, META_COMPACT, &cm, &f2) ||
        meta_get_i64(s->be, META_COMPACT_DONE, &cd, &f3)) {
        msg = fmtmsg("data dir %s: the store's meta data is corrupt%s", dir, NULL);
        goto err;
    }
    s->rev = rev;
    s->compact_main = f2 ? cm : -1;
    s->c_target = s->compact_main;
    s->c_done = f3 ? cd : -1;
    int64_t applied = 0;
    bool f4;
    if (meta_get_i64(s->be, META_APPLIED, &applied, &f4)) {
        msg = fmtmsg("data dir %s: the store's meta data is corrupt%s", dir, NULL);
        goto err;
    }
    s->applied = f4 ? applied : 0;
    s->lessor = lessor_open(s->be, s, &msg);
    if (!s->lessor)
        goto err;
    if (compactor_start(s) < 0)
        goto nomem;
    s->compactor_started = true;
    if (pthread_create(&s->committer, NULL, committer_main, s) != 0)
        goto nomem;
    s->committer_started = true;
    if (lessor_start(s->lessor) < 0)
        goto nomem;
    return s;
nomem:
    if (!msg)
        msg = fmtmsg("data dir %s: out of memory or threads%s", dir, NULL);
err:
    *errmsg = msg ? msg : strdup("cannot open the store");
    kvstore_close(s);
    return NULL;
}

void kvstore_close(kvstore *s)
{
    if (!s)
        return;
    lessor_stop(s->lessor); /* no new expiry revokes */
    pthread_mutex_lock(&s->qmu);
    s->closing = true;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
    if (s->committer_started)
        pthread_join(s->committer, NULL);
    if (s->compactor_started)
        compactor_stop(s);
    lessor_free(s->lessor); /* after the committer: it reports revokes */
    backend_close(s->be);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->hook_cond);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->ccond);
    free(s);
}
