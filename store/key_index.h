/*
 * key_index.h — the on-disk key index (key_index.c): per user key, its
 * versions newest first, in the "index" column family.
 */
#ifndef KVGATE_KEY_INDEX_H
#define KVGATE_KEY_INDEX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "revision.h"

#define KEY_INDEX_VAL_LEN 25

/* Escaped length of a key (terminator included): at most 2*len + 2. */
static inline size_t key_index_esc_max(size_t len)
{
    return 2 * len + 2;
}
/* Writes the order-preserving escaped form of key (with terminator) to out
 * (key_index_esc_max(len) bytes); returns its length. */
size_t key_index_escape(uint8_t *out, const uint8_t *key, size_t len);
/* Inverse of key_index_escape: esc includes the terminator.  Writes at most
 * esc_len bytes to out; returns the key length, or -1 if malformed. */
long key_index_unescape(uint8_t *out, const uint8_t *esc, size_t esc_len);

/* The index value of one version. */
typedef struct key_index_val {
    bool tombstone;
    int64_t create_revision, version, lease;
} key_index_val;
void key_index_val_encode(uint8_t out[KEY_INDEX_VAL_LEN], const key_index_val *v);
int key_index_val_decode(const uint8_t *in, size_t len, key_index_val *v);

/* One version found in the index.  esc points into the iterator's key:
 * valid only during the callback / until the iterator moves. */
typedef struct key_index_entry {
    const uint8_t *esc; /* escaped user key incl. terminator */
    size_t esc_len;
    int64_t main_rev, sub_rev;
    key_index_val v;
} key_index_entry;

/* Called per live key; return 0 to go on, 1 to stop, or a kv_err (> 1 not
 * used: negative values) to abort with that error (-err). */
typedef int (*key_index_fn)(void *arg, const key_index_entry *e);

/* Visits, in key order, every key in [key, range_end) (etcd conventions:
 * empty range_end = the single key, "\0" = every key >= key) whose newest
 * version at or below `rev` is not a tombstone.  `it` is an iterator over
 * BE_CF_INDEX.  Returns KV_OK, the iterator's error, or the callback's. */
kv_err key_index_range(backend_iter *it, const uint8_t *key, size_t key_len,
                       const uint8_t *range_end, size_t end_len, int64_t rev,
                       key_index_fn fn, void *arg);

/* Test hook: how many next() calls before skipping a key's older versions
 * with a seek. */
extern int key_index_max_nexts;

#endif
