/*
 * watch_params.c — SSE watch query parameters -> one watch-create request.
 *
 * Why strict: a browser reconnects with exactly the URL it was given, so a
 * silently misread parameter (a typo'd filter, "prefix=yes" read as false)
 * would be repeated forever; we answer 400 once instead.  Unknown names are
 * still ignored so that cache-busting parameters (`_=12345`) work.
 *
 * Values arrive percent-decoded with their byte lengths; keys are raw bytes
 * (they may contain NUL), numbers and names must not contain NUL.
 */
#include "watch_params.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    WP_KEY = 1u << 0,
    WP_RANGE_END = 1u << 1,
    WP_PREFIX = 1u << 2,
    WP_FROM_KEY = 1u << 3,
    WP_START_REV = 1u << 4,
    WP_PREV_KV = 1u << 5,
    WP_PROGRESS = 1u << 6,
    WP_WATCH_ID = 1u << 7,
    WP_INITIAL = 1u << 8,
    WP_ENCODING = 1u << 9,
    WP_LAST_ID = 1u << 10,
};

void watch_params_init(watch_params *p)
{
    memset(p, 0, sizeof *p);
    p->last_event_id = -1;
}

void watch_params_free(watch_params *p)
{
    kv_bytes_free(&p->key);
    kv_bytes_free(&p->range_end);
    watch_params_init(p);
}

/* value without NUL bytes, so C string functions see all of it */
static bool wp_is_text(const char *v, size_t len)
{
    return v == NULL || memchr(v, '\0', len) == NULL;
}

static bool wp_eq(const char *v, size_t len, const char *lit)
{
    return v && len == strlen(lit) && strncasecmp(v, lit, len) == 0;
}

static int wp_bool(const char *v, size_t len, bool *out, const char **err, const char *msg)
{
    if (v == NULL || len == 0 || wp_eq(v, len, "true") || wp_eq(v, len, "1")) {
        *out = true;
        return 0;
    }
    if (wp_eq(v, len, "false") || wp_eq(v, len, "0")) {
        *out = false;
        return 0;
    }
    *err = msg;
    return -1;
}

/* A decimal int64, optionally negative when allow_neg; nothing else. */
static int wp_int(const char *v, size_t len, bool allow_neg, int64_t *out)
{
    if (!v || len == 0)
        return -1;
    size_t i = 0;
    bool neg = false;
    if (v[0] == '-') {
        if (!allow_neg)
            return -1;
        neg = true;
        i = 1;
    }
    if (i == len)
        return -1;
    uint64_t acc = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (acc > (lim - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

/* filters=noput,nodelete (comma separated, case-insensitive; empty items
 * ignored).  Also etcd's enum names NOPUT / NODELETE, which the case rule
 * already covers. */
static int wp_filters(watch_params *p, const char *v, size_t len, const char **err)
{
    size_t i = 0;
    while (v && i <= len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t n = j - i;
        while (n && (v[i] == ' ')) {
            i++;
            n--;
        }
        while (n && v[i + n - 1] == ' ')
            n--;
        if (n == 0) {
            /* empty item */
        } else if (wp_eq(v + i, n, "noput")) {
            p->filter_noput = true;
        } else if (wp_eq(v + i, n, "nodelete")) {
            p->filter_nodelete = true;
        } else {
            *err = "invalid filters: want noput and/or nodelete";
            return -1;
        }
        i = j + 1;
    }
    return 0;
}

int watch_params_add(watch_params *p, const char *name, const char *value,
                     size_t value_len, const char **err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"key", WP_KEY},           {"range_end", WP_RANGE_END},
        {"prefix", WP_PREFIX},     {"from_key", WP_FROM_KEY},
        {"start_revision", WP_START_REV}, {"prev_kv", WP_PREV_KV},
        {"progress_notify", WP_PROGRESS}, {"watch_id", WP_WATCH_ID},
        {"initial", WP_INITIAL},   {"encoding", WP_ENCODING},
        {"last_event_id", WP_LAST_ID},
    };
    if (!value)
        value_len = 0;
    if (strcmp(name, "filters") == 0) {
        if (!wp_is_text(value, value_len)) {
            *err = "invalid filters: want noput and/or nodelete";
            return -1;
        }
        return wp_filters(p, value, value_len, err);
    }
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            bit = names[i].bit;
    if (bit == 0)
        return 0; /* unknown: ignored */
    if (p->seen & bit) {
        *err = "a watch parameter is given twice";
        return -1;
    }
    p->seen |= bit;

    if (bit == WP_KEY || bit == WP_RANGE_END) {
        kv_bytes *dst = bit == WP_KEY ? &p->key : &p->range_end;
        if (kv_bytes_set(dst, value, value_len) < 0) {
            *err = "out of memory";
            return -1;
        }
        if (bit == WP_KEY)
            p->has_key = true;
        else
            p->has_range_end = true;
        return 0;
    }
    if (!wp_is_text(value, value_len)) {
        *err = "invalid watch parameter: NUL byte in a value";
        return -1;
    }
    switch (bit) {
    case WP_PREFIX:
        return wp_bool(value, value_len, &p->prefix, err, "invalid prefix: want true or false");
    case WP_FROM_KEY:
        return wp_bool(value, value_len, &p->from_key, err, "invalid from_key: want true or false");
    case WP_PREV_KV:
        return wp_bool(value, value_len, &p->prev_kv, err, "invalid prev_kv: want true or false");
    case WP_PROGRESS:
        return wp_bool(value, value_len, &p->progress_notify, err,
                       "invalid progress_notify: want true or false");
    case WP_INITIAL:
        return wp_bool(value, value_len, &p->initial, err, "invalid initial: want true or false");
    case WP_START_REV:
        if (wp_int(value, value_len, false, &p->start_revision) < 0) {
            *err = "invalid start_revision: want a revision >= 0";
            return -1;
        }
        return 0;
    case WP_WATCH_ID:
        if (wp_int(value, value_len, true, &p->watch_id) < 0) {
            *err = "invalid watch_id: want an integer";
            return -1;
        }
        p->has_watch_id = true;
        return 0;
    case WP_LAST_ID: {
        int64_t v;
        if (sse_parse_last_event_id(value, value_len, &v) != SSE_LEID_OK) {
            *err = "invalid last_event_id: want a revision >= 0";
            return -1;
        }
        p->last_event_id = v;
        return 0;
    }
    case WP_ENCODING:
        if (wp_eq(value, value_len, "text"))
            p->text = true;
        else if (wp_eq(value, value_len, "base64"))
            p->text = false;
        else {
            *err = "invalid encoding: want text or base64";
            return -1;
        }
        return 0;
    }
    return 0;
}

int watch_prefix_range_end(const uint8_t *key, size_t len, kv_bytes *out)
{
    for (size_t i = len; i-- > 0;) {
        if (key[i] < 0xff) {
            if (kv_bytes_set(out, key, i + 1) < 0)
                return -1;
            out->data[i]++;
            return 0;
        }
    }
    static const uint8_t zero = 0;
    return kv_bytes_set(out, &zero, 1);
}

/* a < b as byte strings (memcmp order, shorter first on a tie) */
static int wp_cmp(const kv_bytes *a, const kv_bytes *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

int watch_params_finish(watch_params *p, const char **err)
{
    static const uint8_t zero = 0;
    int ranges = (p->prefix ? 1 : 0) + (p->from_key ? 1 : 0) + (p->has_range_end ? 1 : 0);
    if (ranges > 1) {
        *err = "prefix, from_key and range_end are exclusive";
        return -1;
    }
    if (p->initial && p->start_revision > 0) {
        *err = "initial and start_revision are exclusive";
        return -1;
    }
    if (p->last_event_id >= 0 && p->start_revision > 0) {
        *err = "last_event_id and start_revision are exclusive";
        return -1;
    }
    if (p->key.len == 0) {
        if (!p->prefix && !p->from_key) {
            *err = "key is not provided";
            return -1;
        }
        /* clientv3 WithPrefix / WithFromKey on an empty key: all keys */
        kv_bytes_free(&p->key);
        kv_bytes_free(&p->range_end);
        if (kv_bytes_set(&p->key, &zero, 1) < 0 || kv_bytes_set(&p->range_end, &zero, 1) < 0)
            goto nomem;
        return 0;
    }
    if (p->prefix) {
        kv_bytes_free(&p->range_end);
        if (watch_prefix_range_end(p->key.data, p->key.len, &p->range_end) < 0)
            goto nomem;
    } else if (p->from_key) {
        kv_bytes_free(&p->range_end);
        if (kv_bytes_set(&p->range_end, &zero, 1) < 0)
            goto nomem;
    } else if (p->range_end.len > 0 &&
               !(p->range_end.len == 1 && p->range_end.data[0] == 0) &&
               wp_cmp(&p->range_end, &p->key) <= 0) {
        *err = "mvcc: watcher range is empty";
        return -1;
    }
    return 0;
nomem:
    *err = "out of memory";
    return -1;
}

int watch_params_start(const watch_params *p, const char *hdr, size_t hdr_len,
                       int64_t *start, bool *resumed, const char **err)
{
    int64_t id;
    *resumed = false;
    switch (sse_parse_last_event_id(hdr, hdr_len, &id)) {
    case SSE_LEID_OK:
        *start = sse_resume_start(id);
        if (*start < 0)
            goto bad;
        *resumed = true;
        return 0;
    case SSE_LEID_INVALID:
        goto bad;
    case SSE_LEID_NONE:
        break;
    }
    if (p->last_event_id >= 0) {
        *start = sse_resume_start(p->last_event_id);
        if (*start < 0)
            goto bad;
        *resumed = true;
        return 0;
    }
    *start = p->start_revision;
    return 0;
bad:
    *err = "invalid Last-Event-ID: want a revision";
    return -1;
}
