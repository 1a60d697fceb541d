/*
 * kv_record.c — encoding of one version of a key (a put or a tombstone),
 * the value of the "rev" column family (key: revision.h).  It holds the whole
 * KeyValue so that the history (watch events, kvstore_read_events) is read
 * from this family alone, in revision order.
 *
 *   offset   size  field
 *   0        1     type: 0 = put, 1 = tombstone (delete)
 *   1        8     create_revision, big-endian (0 for a tombstone)
 *   9        8     version (0 for a tombstone)
 *   17       8     lease (0 for a tombstone)
 *   25       4     key length K, big-endian
 *   29       K     key
 *   29+K     rest  value (empty for a tombstone)
 *
 * The mod_revision is the record's own key in the "rev" family.
 */
#include <string.h>

#include "kv_record.h"
#include "revision.h"

void kv_record_encode(uint8_t *out, bool tombstone, const uint8_t *key, size_t key_len,
                      const uint8_t *value, size_t value_len, int64_t create_revision,
                      int64_t version, int64_t lease)
{
    out[0] = tombstone ? 1 : 0;
    be64_put(out + 1, (uint64_t)create_revision);
    be64_put(out + 9, (uint64_t)version);
    be64_put(out + 17, (uint64_t)lease);
    out[25] = (uint8_t)(key_len >> 24);
    out[26] = (uint8_t)(key_len >> 16);
    out[27] = (uint8_t)(key_len >> 8);
    out[28] = (uint8_t)key_len;
    if (key_len)
        memcpy(out + KV_RECORD_HDR, key, key_len);
    if (value_len)
        memcpy(out + KV_RECORD_HDR + key_len, value, value_len);
}

int kv_record_decode(const uint8_t *in, size_t len, kv_record_view *out)
{
    if (len < KV_RECORD_HDR || in[0] > 1)
        return -1;
    size_t klen = ((size_t)in[25] << 24) | ((size_t)in[26] << 16) | ((size_t)in[27] << 8) | in[28];
    if (klen > len - KV_RECORD_HDR)
        return -1;
    out->tombstone = in[0] == 1;
    out->create_revision = (int64_t)be64_get(in + 1);
    out->version = (int64_t)be64_get(in + 9);
    out->lease = (int64_t)be64_get(in + 17);
    out->key = in + KV_RECORD_HDR;
    out->key_len = klen;
    out->value = in + KV_RECORD_HDR + klen;
    out->value_len = len - KV_RECORD_HDR - klen;
    return 0;
}
