/*
 * revision.c — the byte encoding of revisions.
 *
 * A revision is (main, sub): main is the store revision of the write
 * transaction, sub the index of the change inside it.  Both are non-negative
 * int64 stored as unsigned big-endian so that memcmp order = numeric order
 * (RocksDB's default bytewise comparator):
 *
 *   offset  size  field
 *   0       8     main, big-endian
 *   8       8     sub,  big-endian
 *
 * The "index" column family stores the bitwise complement of both fields
 * (~main, ~sub) so that, for one user key, the newest revision sorts first
 * and "newest version <= R" is a single seek to (~R, ~INT64_MAX-ish 0).
 * Unlike etcd we need no '_' separator nor a 't' tombstone mark in the
 * key: the record itself says whether it is a tombstone (kv_record.h).
 */
#include "revision.h"

void revision_encode(uint8_t out[REV_KEY_LEN], int64_t main_rev, int64_t sub_rev)
{
    be64_put(out, (uint64_t)main_rev);
    be64_put(out + 8, (uint64_t)sub_rev);
}

void revision_decode(const uint8_t in[REV_KEY_LEN], int64_t *main_rev, int64_t *sub_rev)
{
    *main_rev = (int64_t)be64_get(in);
    *sub_rev = (int64_t)be64_get(in + 8);
}

void revision_encode_inv(uint8_t out[REV_KEY_LEN], int64_t main_rev, int64_t sub_rev)
{
    be64_put(out, ~(uint64_t)main_rev);
    be64_put(out + 8, ~(uint64_t)sub_rev);
}

void revision_decode_inv(const uint8_t in[REV_KEY_LEN], int64_t *main_rev, int64_t *sub_rev)
{
    *main_rev = (int64_t)~be64_get(in);
    *sub_rev = (int64_t)~be64_get(in + 8);
}
