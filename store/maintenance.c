/*
 * maintenance.c — the store side of etcd's Maintenance service for one
 * member: the applied-request count (status' raftIndex), size in use, a
 * content hash (Hash) and a manual compaction (Defragment).
 *
 * Hash: etcd 3.4 hashes its whole bolt file (bucket names, keys, values)
 * with CRC-32C.  kvgate hashes what defines the store's contents: every
 * history record of the "rev" family up to the current revision and every
 * entry of the "lease" family, keys then values, in key order, with the
 * family's name first.  The index and meta families are derived or
 * bookkeeping and left out, so two stores that went through the same
 * writes hash equal (as long as the same compactions finished).
 */
#include <string.h>

#include "backend.h"
#include "kvstore_int.h"
#include "revision.h"

static uint32_t crc32c_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

/* Running CRC-32C: start with crc = 0, as Go's crc32.Update. */
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

int64_t kvstore_applied_index(kvstore *s)
{
    return __atomic_load_n(&s->applied, __ATOMIC_SEQ_CST);
}

uint64_t kvstore_db_size_in_use(kvstore *s)
{
    return backend_size_in_use(s->be);
}

static kv_err hash_family(kvstore *s, int cf, const char *name, int64_t max_rev, uint32_t *crc)
{
    *crc = crc32c_update(*crc, (const uint8_t *)name, strlen(name));
    backend_iter *it = backend_iter_new(s->be, NULL, cf);
    if (!it)
        return KV_ERR_NOMEM;
    for (backend_iter_seek_first(it); backend_iter_valid(it); backend_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = backend_iter_key(it, &kl);
        const uint8_t *v = backend_iter_value(it, &vl);
        if (max_rev >= 0 && kl == REV_KEY_LEN && (int64_t)be64_get(k) > max_rev)
            break; /* committed after the revision we report */
        *crc = crc32c_update(*crc, k, kl);
        *crc = crc32c_update(*crc, v, vl);
    }
    kv_err err = backend_iter_status(it);
    backend_iter_free(it);
    return err;
}

kv_err kvstore_hash(kvstore *s, uint32_t *hash, int64_t *rev)
{
    pthread_once(&crc_once, crc_init);
    uint32_t crc = 0;
    *rev = kvstore_rev(s);
    kv_err err = hash_family(s, BE_CF_REV, "rev", *rev, &crc);
    if (!err)
        err = hash_family(s, BE_CF_LEASE, "lease", -1, &crc);
    *hash = crc;
    return err;
}

kv_err kvstore_defragment(kvstore *s)
{
    return backend_compact_all(s->be);
}
