/*
 * key_index.c — etcd keeps key -> generations of revisions in an in-memory
 * B-tree rebuilt at start-up by scanning the whole history.  kvgate keeps the
 * same information on disk, in the "index" column family, so start-up reads
 * only the meta family.
 *
 * Entry key (sorted bytewise by RocksDB):
 *
 *   escaped user key | 0x00 0x01 | ~main (8, BE) | ~sub (8, BE)
 *
 *   escaping: byte 0x00 -> 0x00 0xFF, any other byte as is; the terminator
 *   0x00 0x01 sorts below both 0x00 0xFF and any non-zero byte, so
 *   a < b (bytewise) <=> esc(a) < esc(b), and a key's entries are contiguous
 *   (no other key's entries fall between them).  The inverted revision makes
 *   a key's newest version come first.
 *
 * Entry value (KEY_INDEX_VAL_LEN bytes):
 *
 *   offset  size  field
 *   0       1     flags: bit 0 = tombstone (the version is a delete)
 *   1       8     create_revision, BE (0 for a tombstone)
 *   9       8     version (0 for a tombstone)
 *   17      8     lease
 *
 * A key's generations are implicit: versions since the newest tombstone are
 * the current generation.  Example (etcd's key_index.go walkthrough): put foo
 * at 1.0, 2.0, 3.0 (version 1..3, create 1), delete at 4.0 (tombstone), put
 * at 5.0, 6.0 (version 1..2, create 5).  Entries, newest first:
 *   (6.0 put v2 c5) (5.0 put v1 c5) (4.0 tomb) (3.0 put v3 c1) (2.0) (1.0)
 * "foo at revision R" = the first entry with main <= R: a single seek to
 * (esc(foo), ~R, ~MAX); R = 4 finds the tombstone -> absent; R = 3 finds 3.0.
 * Compaction at C (compactor.c) keeps, per key, that first entry <= C unless
 * it is a tombstone, and every entry above C.
 *
 * Readers need no lock: entries are only added above the published revision
 * (invisible to readers at R <= published) or removed by compaction below the
 * compaction revision (kvstore.c re-checks it after a read).
 */
#include <stdlib.h>
#include <string.h>

#include "key_index.h"

int key_index_max_nexts = 3;

size_t key_index_escape(uint8_t *out, const uint8_t *key, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] == 0) {
            out[o++] = 0x00;
            out[o++] = 0xFF;
        } else {
            out[o++] = key[i];
        }
    }
    out[o++] = 0x00;
    out[o++] = 0x01;
    return o;
}

long key_index_unescape(uint8_t *out, const uint8_t *esc, size_t esc_len)
{
    size_t o = 0, i = 0;
    while (i < esc_len) {
        if (esc[i] != 0) {
            out[o++] = esc[i++];
            continue;
        }
        if (i + 1 >= esc_len)
            return -1;
        if (esc[i + 1] == 0xFF) {
            out[o++] = 0;
            i += 2;
        } else if (esc[i + 1] == 0x01 && i + 2 == esc_len) {
            return (long)o;
        } else {
            return -1;
        }
    }
    return -1;
}

void key_index_val_encode(uint8_t out[KEY_INDEX_VAL_LEN], const key_index_val *v)
{
    out[0] = v->tombstone ? 1 : 0;
    be64_put(out + 1, (uint64_t)v->create_revision);
    be64_put(out + 9, (uint64_t)v->version);
    be64_put(out + 17, (uint64_t)v->lease);
}

int key_index_val_decode(const uint8_t *in, size_t len, key_index_val *v)
{
    if (len != KEY_INDEX_VAL_LEN || in[0] > 1)
        return -1;
    v->tombstone = in[0] & 1;
    v->create_revision = (int64_t)be64_get(in + 1);
    v->version = (int64_t)be64_get(in + 9);
    v->lease = (int64_t)be64_get(in + 17);
    return 0;
}

/* A growable scratch buffer; small keys stay on the stack. */
typedef struct sbuf {
    uint8_t *p;
    size_t cap;
    uint8_t local[512];
} sbuf;

static uint8_t *sbuf_get(sbuf *b, size_t n)
{
    if (n <= sizeof b->local)
        return b->local;
    if (n > b->cap) {
        uint8_t *np = realloc(b->p, n);
        if (!np)
            return NULL;
        b->p = np;
        b->cap = n;
    }
    return b->p;
}

static bool same_prefix(const uint8_t *k, size_t kl, const uint8_t *pre, size_t pl)
{
    return kl == pl + REV_KEY_LEN && memcmp(k, pre, pl) == 0;
}

/* Checks the entry under the iterator belongs to prefix and decodes it. */
static int decode_entry(backend_iter *it, key_index_entry *e)
{
    size_t kl, vl;
    const uint8_t *k = backend_iter_key(it, &kl);
    const uint8_t *v = backend_iter_value(it, &vl);
    if (kl < REV_KEY_LEN + 2)
        return -1;
    e->esc = k;
    e->esc_len = kl - REV_KEY_LEN;
    revision_decode_inv(k + e->esc_len, &e->main_rev, &e->sub_rev);
    return key_index_val_decode(v, vl, &e->v);
}

kv_err key_index_range(backend_iter *it, const uint8_t *key, size_t key_len,
                       const uint8_t *range_end, size_t end_len, int64_t rev,
                       key_index_fn fn, void *arg)
{
    sbuf start = {0}, upper = {0}, seekb = {0};
    kv_err ret = KV_OK;
    bool single = end_len == 0;
    bool unbounded = end_len == 1 && range_end[0] == 0;
    size_t ul = 0;
    uint8_t *s = sbuf_get(&start, key_index_esc_max(key_len) + REV_KEY_LEN);
    uint8_t *u = NULL;
    if (!s)
        return KV_ERR_NOMEM;
    size_t sl = key_index_escape(s, key, key_len);
    if (!single && !unbounded) {
        if (kv_mem_cmp(range_end, end_len, key, key_len) <= 0)
            goto out; /* empty interval */
        u = sbuf_get(&upper, key_index_esc_max(end_len));
        if (!u) {
            ret = KV_ERR_NOMEM;
            goto out;
        }
        ul = key_index_escape(u, range_end, end_len);
    }
    if (single) {
        key_index_entry e;
        revision_encode_inv(s + sl, rev, -1);
        backend_iter_seek(it, s, sl + REV_KEY_LEN);
        if (!backend_iter_valid(it)) {
            ret = backend_iter_status(it);
            goto out;
        }
        size_t kl;
        const uint8_t *k = backend_iter_key(it, &kl);
        if (!same_prefix(k, kl, s, sl))
            goto out;
        if (decode_entry(it, &e) < 0) {
            ret = KV_ERR_IO;
            goto out;
        }
        if (!e.v.tombstone) {
            int r = fn(arg, &e);
            if (r < 0)
                ret = (kv_err)-r;
        }
        goto out;
    }
    backend_iter_seek(it, s, sl);
    while (backend_iter_valid(it)) {
        key_index_entry e;
        if (decode_entry(it, &e) < 0) {
            ret = KV_ERR_IO;
            goto out;
        }
        if (u && kv_mem_cmp(e.esc, e.esc_len + REV_KEY_LEN, u, ul) >= 0)
            break;
        /* remember this key's prefix: the iterator is about to move */
        size_t pl = e.esc_len;
        uint8_t *pre = sbuf_get(&seekb, pl + REV_KEY_LEN);
        if (!pre) {
            ret = KV_ERR_NOMEM;
            goto out;
        }
        memcpy(pre, e.esc, pl);
        if (e.main_rev > rev) {
            revision_encode_inv(pre + pl, rev, -1);
            backend_iter_seek(it, pre, pl + REV_KEY_LEN);
            if (!backend_iter_valid(it))
                break;
            size_t kl;
            const uint8_t *k = backend_iter_key(it, &kl);
            if (!same_prefix(k, kl, pre, pl))
                continue; /* no version <= rev: already on the next key */
            if (decode_entry(it, &e) < 0) {
                ret = KV_ERR_IO;
                goto out;
            }
        }
        if (!e.v.tombstone) {
            int r = fn(arg, &e);
            if (r < 0) {
                ret = (kv_err)-r;
                goto out;
            }
            if (r > 0)
                goto out;
        }
        /* skip the key's older versions: a few next(), then one seek */
        int n = 0;
        for (;;) {
            backend_iter_next(it);
            if (!backend_iter_valid(it))
                break;
            size_t kl;
            const uint8_t *k = backend_iter_key(it, &kl);
            if (!same_prefix(k, kl, pre, pl))
                break;
            if (++n >= key_index_max_nexts) {
                memset(pre + pl, 0xFF, REV_KEY_LEN);
                backend_iter_seek(it, pre, pl + REV_KEY_LEN);
                break;
            }
        }
    }
    ret = backend_iter_status(it);
out:
    free(start.p);
    free(upper.p);
    free(seekb.p);
    return ret;
}
