/*
 * kv_record.h — the value stored in the "rev" column family (kv_record.c).
 */
#ifndef KVGATE_KV_RECORD_H
#define KVGATE_KV_RECORD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_RECORD_HDR 29

/* A decoded record: pointers borrow from the encoded buffer. */
typedef struct kv_record_view {
    bool tombstone;
    int64_t create_revision, version, lease;
    const uint8_t *key, *value;
    size_t key_len, value_len;
} kv_record_view;

static inline size_t kv_record_size(size_t key_len, size_t value_len)
{
    return KV_RECORD_HDR + key_len + value_len;
}

/* Writes kv_record_size(key_len, value_len) bytes to out. */
void kv_record_encode(uint8_t *out, bool tombstone, const uint8_t *key, size_t key_len,
                      const uint8_t *value, size_t value_len, int64_t create_revision,
                      int64_t version, int64_t lease);
/* 0, or -1 if `in` is not a valid record. */
int kv_record_decode(const uint8_t *in, size_t len, kv_record_view *out);

#endif
