/*
 * watch_json.c — WatchRequest decoding and WatchResponse encoding, as etcd
 * 3.4's gateway does them (the observed facts are listed in watch_json.h).
 *
 * Decoding reuses the core's pieces: gojson (via ej_decoder_init) decides
 * syntax with Go's messages and hands us a jansson tree for one value;
 * ej_parse_int64_text and b64_decode give Go's texts for int64 and bytes.
 * The small field helpers below mirror etcd_json.c's (which are static
 * there); they read fields in proto order so that the first bad field in
 * proto order is the one reported, as etcd does.
 *
 * Encoding writes straight into a gwbuf, reusing ej_put_header/ej_put_kv
 * for the base64 form so both framings and the KV API agree byte for byte.
 */
#include "watch_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

static const char wj_filter_type[] = "etcdserverpb.WatchCreateRequest_FilterType";

/* ------------------------------------------------------------------ */
/* decoding: etcd_json.c's field readers (ej_obj_*), so numbers, strings
 * and their messages are read as for the unary calls                    */

/* repeated FilterType: names NOPUT / NODELETE or any int32. */
static int wj_filters(ej_decoder *d, json_t *o, wj_request *r)
{
    static const char *const names[] = {"NOPUT", "NODELETE"};
    json_t *v = json_object_get(o, "filters");
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        /* jsonpb looks a string up as an enum name first: an unknown one
         * is refused as such, a known one because the field is a slice */
        int x;
        if (ej_enum_value(d, v, wj_filter_type, names, 2, &x) != 0)
            return -1;
        return ej_errf(d, "invalid target \"slice\" for enum %s", wj_filter_type);
    }
    if (!json_is_array(v))
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type []json.RawMessage",
                       ej_go_kind(v));
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        int x = -1;
        if (json_is_null(e))
            continue;
        if (ej_enum_value(d, e, wj_filter_type, names, 2, &x) != 0)
            return -1;
        if (x == 0)
            r->filter_noput = true;
        else if (x == 1)
            r->filter_nodelete = true;
        /* other numbers: accepted, filter nothing (as etcd) */
    }
    return 0;
}

static int wj_dec_create(ej_decoder *d, json_t *o, wj_request *r)
{
    r->kind = WJ_CREATE;
    if (!o)
        return 0;
    if (ej_obj_bytes(d, o, "key", NULL, &r->key) ||
        ej_obj_bytes(d, o, "range_end", "rangeEnd", &r->range_end) ||
        ej_obj_int64(d, o, "start_revision", "startRevision", &r->start_revision) ||
        ej_obj_bool(d, o, "progress_notify", "progressNotify", &r->progress_notify) ||
        wj_filters(d, o, r) ||
        ej_obj_bool(d, o, "prev_kv", "prevKv", &r->prev_kv) ||
        ej_obj_int64(d, o, "watch_id", "watchId", &r->watch_id) ||
        ej_obj_bool(d, o, "fragment", NULL, &r->fragment))
        return -1;
    return 0;
}

/* One WatchRequest value: the oneof member first in document order. */
static int wj_dec_request(ej_decoder *d, wj_request *r)
{
    static const struct {
        const char *orig, *camel;
        wj_kind kind;
    } members[] = {
        {"create_request", "createRequest", WJ_CREATE},
        {"cancel_request", "cancelRequest", WJ_CANCEL},
        {"progress_request", "progressRequest", WJ_PROGRESS},
    };
    json_t *root = d->root, *v, *o;
    const char *k;
    memset(r, 0, sizeof *r);
    if (!root)
        return 0;
    json_object_foreach(root, k, v) {
        if (json_is_null(v))
            continue;
        for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
            if (strcmp(k, members[i].orig) != 0 && strcmp(k, members[i].camel) != 0)
                continue;
            if (ej_obj_message(d, root, members[i].orig, members[i].camel, &o) < 0)
                return -1;
            switch (members[i].kind) {
            case WJ_CREATE:
                return wj_dec_create(d, o, r);
            case WJ_CANCEL:
                r->kind = WJ_CANCEL;
                return o ? ej_obj_int64(d, o, "watch_id", "watchId", &r->cancel_id) : 0;
            case WJ_PROGRESS:
                r->kind = WJ_PROGRESS;
                return 0;
            default:
                return 0;
            }
        }
    }
    return 0;
}

static void wj_request_free(wj_request *r)
{
    kv_bytes_free(&r->key);
    kv_bytes_free(&r->range_end);
}

void wj_requests_free(wj_request *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wj_request_free(&reqs[i]);
    free(reqs);
}

int wj_decode_all(const char *body, size_t len, wj_request **out, size_t *n, char **msg)
{
    wj_request *reqs = NULL;
    size_t cnt = 0, cap = 0, off = 0;
    *out = NULL;
    *n = 0;
    *msg = NULL;
    for (;;) {
        ej_decoder d;
        gojson_scan sc;
        if (off >= len)
            break;
        int rc = gojson_scan_value(body + off, len - off, &sc);
        if (rc == GOJSON_EMPTY)
            break;
        /* on a syntax error ej_decoder_init rescans and reports it */
        size_t vlen = rc == GOJSON_OK ? sc.end : len - off;
        bool ok = ej_decoder_init(&d, body + off, vlen) == 0;
        if (ok && cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            wj_request *p = realloc(reqs, ncap * sizeof *p);
            if (!p) {
                ej_decoder_done(&d);
                wj_requests_free(reqs, cnt);
                return -1;
            }
            reqs = p;
            cap = ncap;
        }
        if (ok && wj_dec_request(&d, &reqs[cnt]) < 0) {
            wj_request_free(&reqs[cnt]);
            ok = false;
        }
        if (!ok) {
            /* a bad first value fails the stream; a later one ends the list */
            if (cnt == 0) {
                *msg = strdup(d.msg); /* NULL: out of memory */
                ej_decoder_done(&d);
                free(reqs);
                return -1;
            }
            ej_decoder_done(&d);
            break;
        }
        ej_decoder_done(&d);
        cnt++;
        off += vlen;
    }
    *out = reqs;
    *n = cnt;
    return 0;
}

int wj_decode_requests(const char *body, size_t len, wj_request **out, size_t *n,
                       char *msg, size_t msglen)
{
    char *m = NULL;
    int rc = wj_decode_all(body, len, out, n, &m);
    if (rc != 0 && msglen)
        snprintf(msg, msglen, "%s", m ? m : "etcdserver: out of memory");
    free(m);
    return rc;
}

void wj_to_create(const wj_request *req, watch_create_req *out)
{
    memset(out, 0, sizeof *out);
    out->key = req->key.data;
    out->key_len = req->key.len;
    out->range_end = req->range_end.data;
    out->range_end_len = req->range_end.len;
    out->start_revision = req->start_revision;
    out->watch_id = req->watch_id;
    out->filter_noput = req->filter_noput;
    out->filter_nodelete = req->filter_nodelete;
    out->prev_kv = req->prev_kv;
    out->progress_notify = req->progress_notify;
}

/* ------------------------------------------------------------------ */
/* encoding                                                            */

bool wj_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* A bytes field in text form: "name":"text", or "name_base64":"..." when
 * the bytes are not UTF-8.  Empty: omitted, as every default. */
static void wj_put_text_field(gwbuf *b, bool *first, const char *name, const kv_bytes *v)
{
    if (!v->len)
        return;
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_putc(b, '"');
    buf_puts(b, name);
    if (wj_utf8_valid(v->data, v->len)) {
        buf_puts(b, "\":");
        buf_put_json_str(b, (const char *)v->data, v->len);
    } else {
        buf_puts(b, "_base64\":");
        ej_put_bytes(b, v->data, v->len);
    }
}

void wj_put_kv(gwbuf *b, const kv_keyvalue *kv, bool text)
{
    if (!text) {
        ej_put_kv(b, kv);
        return;
    }
    bool first = true;
    buf_putc(b, '{');
    wj_put_text_field(b, &first, "key", &kv->key);
    ej_put_i64_field(b, &first, "create_revision", kv->create_revision);
    ej_put_i64_field(b, &first, "mod_revision", kv->mod_revision);
    ej_put_i64_field(b, &first, "version", kv->version);
    wj_put_text_field(b, &first, "value", &kv->value);
    ej_put_i64_field(b, &first, "lease", kv->lease);
    buf_putc(b, '}');
}

static void wj_put_kv_event(gwbuf *b, const kv_event *ev, const kv_keyvalue *prev, bool text)
{
    buf_putc(b, '{');
    if (ev->type == KV_EVENT_DELETE)
        buf_puts(b, "\"type\":\"DELETE\",");
    buf_puts(b, "\"kv\":");
    wj_put_kv(b, &ev->kv, text);
    if (prev) {
        buf_puts(b, ",\"prev_kv\":");
        wj_put_kv(b, prev, text);
    }
    buf_putc(b, '}');
}

static void wj_put_head(gwbuf *b, const ej_header *h, int64_t rev, int64_t watch_id)
{
    buf_putc(b, '{');
    ej_put_header(b, h, rev);
    if (watch_id) {
        buf_puts(b, ",\"watch_id\":\"");
        buf_put_i64(b, watch_id);
        buf_putc(b, '"');
    }
}

void wj_put_event(gwbuf *b, const watch_event *e, bool text)
{
    wj_put_kv_event(b, e->ev, e->prev_kv, text);
}

static void wj_default_writer(gwbuf *b, const watch_event *e, bool text, void *ctx)
{
    (void)ctx;
    wj_put_event(b, e, text);
}

void wj_put_response(gwbuf *b, const ej_header *h, const watch_response *r, bool text)
{
    wj_put_response_with(b, h, r, text, wj_default_writer, NULL);
}

void wj_put_response_with(gwbuf *b, const ej_header *h, const watch_response *r, bool text,
                          wj_event_writer put_ev, void *ctx)
{
    wj_put_response_part(b, h, r, text, put_ev, ctx, 0, r->n_events, false);
}

void wj_put_response_part(gwbuf *b, const ej_header *h, const watch_response *r, bool text,
                          wj_event_writer put_ev, void *ctx, size_t from, size_t to,
                          bool fragment)
{
    if (!put_ev)
        put_ev = wj_default_writer;
    wj_put_head(b, h, r->header_rev, r->watch_id);
    if (r->created)
        buf_puts(b, ",\"created\":true");
    if (r->canceled)
        buf_puts(b, ",\"canceled\":true");
    if (r->compact_rev) {
        buf_puts(b, ",\"compact_revision\":\"");
        buf_put_i64(b, r->compact_rev);
        buf_putc(b, '"');
    }
    if (r->cancel_reason && *r->cancel_reason) {
        buf_puts(b, ",\"cancel_reason\":");
        buf_put_json_str(b, r->cancel_reason, strlen(r->cancel_reason));
    }
    if (fragment)
        buf_puts(b, ",\"fragment\":true");
    if (to > r->n_events)
        to = r->n_events;
    if (from < to) {
        buf_puts(b, ",\"events\":[");
        for (size_t i = from; i < to; i++) {
            if (i > from)
                buf_putc(b, ',');
            put_ev(b, &r->events[i], text, ctx);
        }
        buf_putc(b, ']');
    }
    buf_putc(b, '}');
}

/* ------------------------------------------------------------------ */
/* protobuf sizes (gogoproto's Size(): fields 1..15 have one-byte tags)  */

static size_t pb_sov(uint64_t x)
{
    size_t n = 1;
    while (x >= 0x80) {
        x >>= 7;
        n++;
    }
    return n;
}

static size_t pb_int(uint64_t v) /* a varint field, omitted when 0 */
{
    return v ? 1 + pb_sov(v) : 0;
}

static size_t pb_bytes(size_t len) /* a bytes/string field, omitted when empty */
{
    return len ? 1 + pb_sov(len) + len : 0;
}

static size_t pb_msg(size_t len) /* an embedded message that is set */
{
    return 1 + pb_sov(len) + len;
}

static size_t pb_kv_size(const kv_keyvalue *kv)
{
    return pb_bytes(kv->key.len) + pb_int((uint64_t)kv->create_revision) +
           pb_int((uint64_t)kv->mod_revision) + pb_int((uint64_t)kv->version) +
           pb_bytes(kv->value.len) + pb_int((uint64_t)kv->lease);
}

size_t wj_pb_event_size(const watch_event *e)
{
    size_t n = (e->ev->type == KV_EVENT_DELETE ? 2 : 0) + pb_msg(pb_kv_size(&e->ev->kv));
    if (e->prev_kv)
        n += pb_msg(pb_kv_size(e->prev_kv));
    return pb_msg(n);
}

size_t wj_pb_response_base(const ej_header *h, const watch_response *r, bool fragment)
{
    size_t hs = pb_int(h->cluster_id) + pb_int(h->member_id) +
                pb_int((uint64_t)r->header_rev) + pb_int(h->raft_term);
    size_t n = pb_msg(hs) + pb_int((uint64_t)r->watch_id);
    if (r->created)
        n += 2;
    if (r->canceled)
        n += 2;
    n += pb_int((uint64_t)r->compact_rev);
    if (r->cancel_reason)
        n += pb_bytes(strlen(r->cancel_reason));
    if (fragment)
        n += 2;
    return n;
}

bool wj_fragment_needed(const ej_header *h, const watch_response *r, size_t limit)
{
    if (r->n_events < 2)
        return false;
    size_t n = wj_pb_response_base(h, r, false);
    for (size_t i = 0; i < r->n_events && n < limit; i++)
        n += wj_pb_event_size(&r->events[i]);
    return n >= limit;
}

size_t wj_fragment_end(const ej_header *h, const watch_response *r, size_t limit, size_t from)
{
    size_t n = wj_pb_response_base(h, r, true), i = from;
    for (; i < r->n_events; i++) {
        n += wj_pb_event_size(&r->events[i]);
        if (i > from && n >= limit)
            break;
    }
    return i;
}

void wj_put_snapshot(gwbuf *b, const ej_header *h, int64_t rev, int64_t watch_id,
                     const kv_keyvalue *kvs, size_t n, bool text)
{
    wj_put_head(b, h, rev, watch_id);
    if (n) {
        buf_puts(b, ",\"events\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                buf_putc(b, ',');
            buf_puts(b, "{\"kv\":");
            wj_put_kv(b, &kvs[i], text);
            buf_putc(b, '}');
        }
        buf_putc(b, ']');
    }
    buf_putc(b, '}');
}
