/*
 * revision.h — the store's fixed-width number encodings (see revision.c).
 */
#ifndef KVGATE_REVISION_H
#define KVGATE_REVISION_H
#include <stdint.h>

#define REV_KEY_LEN 16 /* 8-byte BE main + 8-byte BE sub */

static inline void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Key of the "rev" column family: sorts by (main, sub) ascending. */
void revision_encode(uint8_t out[REV_KEY_LEN], int64_t main_rev, int64_t sub_rev);
void revision_decode(const uint8_t in[REV_KEY_LEN], int64_t *main_rev, int64_t *sub_rev);

/* Inverted form used in the "index" column family: sorts newest first. */
void revision_encode_inv(uint8_t out[REV_KEY_LEN], int64_t main_rev, int64_t sub_rev);
void revision_decode_inv(const uint8_t in[REV_KEY_LEN], int64_t *main_rev, int64_t *sub_rev);

#endif
