/*
 * store_revision.c — the pure encodings: revisions (plain and inverted),
 * the order-preserving key escaping of the index, index values, records.
 */
#include <stdlib.h>
#include <string.h>

#include "key_index.h"
#include "kv_record.h"
#include "revision.h"
#include "testhelp.h"

static int bcmp_(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

int main(void)
{
    TEST("revision round trip and order") {
        uint8_t a[16], b[16];
        int64_t m, s;
        revision_encode(a, 5, 3);
        revision_decode(a, &m, &s);
        CHECK_EQ_INT(m, 5);
        CHECK_EQ_INT(s, 3);
        CHECK(a[7] == 5 && a[15] == 3 && a[0] == 0);
        revision_encode(b, 256, 0);
        CHECK(memcmp(a, b, 16) < 0);
        revision_encode(b, 5, 4);
        CHECK(memcmp(a, b, 16) < 0);
        revision_encode(a, INT64_MAX, INT64_MAX);
        revision_decode(a, &m, &s);
        CHECK(m == INT64_MAX && s == INT64_MAX);
    }
    TEST("inverted revision sorts newest first") {
        uint8_t a[16], b[16], c[16];
        int64_t m, s;
        revision_encode_inv(a, 10, 0);
        revision_encode_inv(b, 9, 5);
        revision_encode_inv(c, 10, 1);
        CHECK(memcmp(a, b, 16) < 0);
        CHECK(memcmp(c, a, 16) < 0);
        revision_decode_inv(c, &m, &s);
        CHECK(m == 10 && s == 1);
        /* seek target (R, -1) is <= every entry with main <= R */
        uint8_t t[16];
        revision_encode_inv(t, 10, -1);
        CHECK(memcmp(t, c, 16) <= 0 && memcmp(t, a, 16) <= 0);
        revision_encode_inv(b, 11, 0);
        CHECK(memcmp(b, t, 16) < 0);
    }
    TEST("escape round trip") {
        const char *keys[] = {"a", "abc", "", "\x00", "a\x00" "b", "\x00\x00", "\xff", "\x00\xff"};
        size_t lens[] = {1, 3, 0, 1, 3, 2, 1, 2};
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
            uint8_t e[64], u[64];
            size_t el = key_index_escape(e, (const uint8_t *)keys[i], lens[i]);
            CHECK(el <= key_index_esc_max(lens[i]));
            CHECK(e[el - 2] == 0 && e[el - 1] == 1);
            long ul = key_index_unescape(u, e, el);
            CHECK_EQ_INT(ul, (long)lens[i]);
            CHECK(ul < 0 || memcmp(u, keys[i], (size_t)ul) == 0);
        }
        uint8_t bad[] = {'a', 0, 2};
        uint8_t u[8];
        CHECK(key_index_unescape(u, bad, 3) < 0);
        uint8_t noterm[] = {'a', 'b'};
        CHECK(key_index_unescape(u, noterm, 2) < 0);
    }
    TEST("escape preserves order, entries of a key stay contiguous") {
        srand(7);
        int bad = 0;
        for (int n = 0; n < 20000; n++) {
            uint8_t a[6], b[6];
            size_t al = (size_t)(rand() % 6), bl = (size_t)(rand() % 6);
            for (size_t i = 0; i < al; i++)
                a[i] = (uint8_t)(rand() % 3 == 0 ? 0 : rand() % 256);
            for (size_t i = 0; i < bl; i++)
                b[i] = (uint8_t)(rand() % 3 == 0 ? 0 : (rand() % 2 ? 0xFF : 1));
            uint8_t ea[32], eb[32];
            size_t eal = key_index_escape(ea, a, al);
            size_t ebl = key_index_escape(eb, b, bl);
            int c1 = bcmp_(a, al, b, bl);
            /* compare full entries with extreme revision suffixes */
            memset(ea + eal, 0xFF, 16);
            memset(eb + ebl, 0x00, 16);
            int c2 = bcmp_(ea, eal + 16, eb, ebl + 16);
            memset(ea + eal, 0x00, 16);
            memset(eb + ebl, 0xFF, 16);
            int c3 = bcmp_(ea, eal + 16, eb, ebl + 16);
            if (c1 != 0 && (c1 != c2 || c1 != c3))
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
    }
    TEST("index value codec") {
        uint8_t buf[KEY_INDEX_VAL_LEN];
        key_index_val v = {false, 7, 3, 99}, w;
        key_index_val_encode(buf, &v);
        CHECK(key_index_val_decode(buf, sizeof buf, &w) == 0);
        CHECK(!w.tombstone && w.create_revision == 7 && w.version == 3 && w.lease == 99);
        v.tombstone = true;
        key_index_val_encode(buf, &v);
        CHECK(key_index_val_decode(buf, sizeof buf, &w) == 0 && w.tombstone);
        CHECK(key_index_val_decode(buf, sizeof buf - 1, &w) < 0);
        buf[0] = 9;
        CHECK(key_index_val_decode(buf, sizeof buf, &w) < 0);
    }
    TEST("record codec") {
        uint8_t buf[128];
        kv_record_view r;
        kv_record_encode(buf, false, (const uint8_t *)"key", 3, (const uint8_t *)"value", 5, 4, 2, 77);
        CHECK(kv_record_decode(buf, kv_record_size(3, 5), &r) == 0);
        CHECK(!r.tombstone && r.create_revision == 4 && r.version == 2 && r.lease == 77);
        CHECK(r.key_len == 3 && memcmp(r.key, "key", 3) == 0);
        CHECK(r.value_len == 5 && memcmp(r.value, "value", 5) == 0);
        kv_record_encode(buf, true, (const uint8_t *)"k", 1, NULL, 0, 0, 0, 0);
        CHECK(kv_record_decode(buf, kv_record_size(1, 0), &r) == 0);
        CHECK(r.tombstone && r.key_len == 1 && r.value_len == 0);
        CHECK(kv_record_decode(buf, 10, &r) < 0);
        buf[28] = 200; /* key longer than the record */
        CHECK(kv_record_decode(buf, kv_record_size(1, 0), &r) < 0);
    }
    return TEST_REPORT();
}
