/*
 * lease_http.c — the Lease endpoints (see lease_http.h).  Grant and revoke
 * go through the committer (the connection sleeps until it answers);
 * keepalive, timetolive and leases read the lessor's memory on the MHD
 * thread (no RocksDB write, nothing that blocks; timetolive with keys reads
 * the lease's attachment prefix).
 */
#include "api_routes.h"
#include "lease_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static void put_i64_str(gwbuf *b, const char *name, int64_t v)
{
    buf_putc(b, ',');
    buf_putc(b, '"');
    buf_puts(b, name);
    buf_puts(b, "\":\"");
    buf_put_i64(b, v);
    buf_putc(b, '"');
}

/* Decodes the body's first object; on failure answers 400 code 3 (as the
 * gateway's unary handlers).  Returns 0 and leaves d to the caller. */
static int decode(gw_req *r, ej_decoder *d)
{
    size_t len;
    const char *body = gw_req_body(r, &len);
    if (ej_decoder_init(d, body, len) != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d->msg);
        ej_decoder_done(d);
        return -1;
    }
    return 0;
}

/* ---- grant / revoke: through the committer ---- */

static void free_response(void *p) { kv_response_free(p); }

static void lease_done(void *arg, kv_response *resp)
{
    gw_req *r = arg;
    gw_req_set_user(r, resp, free_response);
    gw_req_resume(r);
}

static void finish(gw_req *r, void *ctx)
{
    lease_http *lh = ctx;
    kv_response *resp = gw_req_user(r);
    gw_req_set_user(r, NULL, NULL);
    if (!resp) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    if (resp->err != KV_OK) {
        gw_reply_kv_error(r, resp->err);
    } else {
        gwbuf b = GWBUF_INIT;
        buf_putc(&b, '{');
        ej_put_header(&b, lh->header, resp->header_revision);
        if (resp->lease.id) { /* a grant (a revoke answers the header only) */
            put_i64_str(&b, "ID", resp->lease.id);
            put_i64_str(&b, "TTL", resp->lease.ttl);
        }
        buf_putc(&b, '}');
        gw_reply_json(r, 200, &b);
    }
    kv_response_free(resp);
}

static void submit_lease(gw_req *r, lease_http *lh, kv_req_kind kind)
{
    ej_decoder d;
    if (decode(r, &d) != 0)
        return;
    int64_t id = 0, ttl = 0;
    int rc = ej_get_int64(&d, "TTL", NULL, &ttl);
    if (rc == 0)
        rc = ej_get_int64(&d, "ID", NULL, &id);
    if (rc != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return;
    }
    ej_decoder_done(&d);
    if (gw_req_header(r, "Authorization")) {
        /* etcd without auth still checks a token sent with a raft request
         * (grant, revoke; not keepalive, timetolive, leases): 401 code 16,
         * before the TTL check */
        gw_reply_error(r, 401, GRPC_UNAUTHENTICATED, "etcdserver: invalid auth token");
        return;
    }
    if (kind == KV_REQ_LEASE_GRANT && ttl > KV_LEASE_MAX_TTL) {
        /* etcd checks this before its raft request */
        gw_reply_kv_error(r, KV_ERR_LEASE_TTL_TOO_LARGE);
        return;
    }
    kv_request *req = calloc(1, sizeof *req);
    if (!req) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    req->kind = kind;
    req->lease.id = id;
    req->lease.ttl = ttl;
    gw_req_suspend(r, finish);
    kvstore_submit(lh->store, req, lease_done, r);
}

static void h_grant(gw_req *r, void *ctx) { submit_lease(r, ctx, KV_REQ_LEASE_GRANT); }
static void h_revoke(gw_req *r, void *ctx) { submit_lease(r, ctx, KV_REQ_LEASE_REVOKE); }

/* ---- keepalive: a stream of results, computed at once ---- */

typedef struct ka_stream {
    char *p;
    size_t len, off;
} ka_stream;

static ssize_t ka_read(void *sctx, char *buf, size_t max)
{
    ka_stream *ks = sctx;
    size_t n = ks->len - ks->off;
    if (n == 0)
        return GW_STREAM_END;
    if (n > max)
        n = max;
    memcpy(buf, ks->p + ks->off, n);
    ks->off += n;
    return (ssize_t)n;
}

static void ka_close(void *sctx)
{
    ka_stream *ks = sctx;
    free(ks->p);
    free(ks);
}

static void h_keepalive(gw_req *r, void *ctx)
{
    lease_http *lh = ctx;
    size_t len, off = 0;
    const char *body = gw_req_body(r, &len);
    gwbuf b = GWBUF_INIT;
    for (int i = 0;; i++) {
        gojson_scan sc;
        if (off >= len || gojson_scan_value(body + off, len - off, &sc) == GOJSON_EMPTY)
            break;
        ej_decoder d;
        int64_t id = 0;
        int rc = ej_decoder_init(&d, body + off, len - off);
        if (rc == 0)
            rc = ej_get_int64(&d, "ID", NULL, &id);
        if (rc != 0) {
            if (i == 0) { /* the gateway's stream error before any result */
                gw_reply_error(r, 500, GRPC_UNKNOWN, d.msg);
                ej_decoder_done(&d);
                buf_free(&b);
                return;
            }
            ej_decoder_done(&d);
            break;
        }
        off += d.scan.end;
        ej_decoder_done(&d);
        int64_t ttl = 0;
        if (kvstore_lease_renew(lh->store, id, &ttl) != KV_OK)
            ttl = 0; /* etcd: not found is an answer without TTL */
        buf_puts(&b, "{\"result\":{");
        ej_put_header(&b, lh->header, kvstore_rev(lh->store));
        if (id)
            put_i64_str(&b, "ID", id);
        if (ttl)
            put_i64_str(&b, "TTL", ttl);
        buf_puts(&b, "}}\n");
    }
    if (b.failed) {
        buf_free(&b);
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    ka_stream *ks = calloc(1, sizeof *ks);
    if (!ks) {
        buf_free(&b);
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    ks->p = buf_steal(&b, &ks->len);
    gw_reply_stream(r, 200, "application/json", ka_read, ks, ka_close);
}

/* ---- timetolive / leases ---- */

static void h_timetolive(gw_req *r, void *ctx)
{
    lease_http *lh = ctx;
    ej_decoder d;
    if (decode(r, &d) != 0)
        return;
    int64_t id = 0;
    bool keys = false;
    if (ej_get_int64(&d, "ID", NULL, &id) != 0 || ej_get_bool(&d, "keys", NULL, &keys) != 0) {
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
        ej_decoder_done(&d);
        return;
    }
    ej_decoder_done(&d);
    int64_t rev = kvstore_rev(lh->store);
    kv_lease_info li;
    kv_err e = kvstore_lease_timetolive(lh->store, id, keys, &li);
    if (e != KV_OK && e != KV_ERR_LEASE_NOT_FOUND) {
        gw_reply_kv_error(r, e);
        return;
    }
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, lh->header, rev);
    if (id)
        put_i64_str(&b, "ID", id);
    if (e == KV_ERR_LEASE_NOT_FOUND) {
        put_i64_str(&b, "TTL", -1);
    } else {
        if (li.ttl)
            put_i64_str(&b, "TTL", li.ttl);
        if (li.granted_ttl)
            put_i64_str(&b, "grantedTTL", li.granted_ttl);
        if (li.n_keys) {
            buf_puts(&b, ",\"keys\":[");
            for (size_t i = 0; i < li.n_keys; i++) {
                if (i)
                    buf_putc(&b, ',');
                ej_put_bytes(&b, li.keys[i].data, li.keys[i].len);
            }
            buf_putc(&b, ']');
        }
        kv_lease_info_free(&li);
    }
    buf_putc(&b, '}');
    gw_reply_json(r, 200, &b);
}

static void h_leases(gw_req *r, void *ctx)
{
    lease_http *lh = ctx;
    ej_decoder d;
    if (decode(r, &d) != 0)
        return;
    ej_decoder_done(&d);
    int64_t rev = kvstore_rev(lh->store);
    int64_t *ids = NULL;
    size_t n = 0;
    kv_err e = kvstore_lease_list(lh->store, &ids, &n);
    if (e != KV_OK) {
        gw_reply_kv_error(r, e);
        return;
    }
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, lh->header, rev);
    if (n) {
        buf_puts(&b, ",\"leases\":[");
        for (size_t i = 0; i < n; i++) {
            buf_puts(&b, i ? ",{" : "{");
            if (ids[i]) {
                buf_puts(&b, "\"ID\":\"");
                buf_put_i64(&b, ids[i]);
                buf_putc(&b, '"');
            }
            buf_putc(&b, '}');
        }
        buf_putc(&b, ']');
    }
    buf_putc(&b, '}');
    free(ids);
    gw_reply_json(r, 200, &b);
}

int lease_http_register(gw_server *s, lease_http *lh)
{
    static const gw_api_route eps[] = {
        {"/lease/grant", h_grant},
        {"/lease/revoke", h_revoke},
        {"/kv/lease/revoke", h_revoke},
        {"/lease/keepalive", h_keepalive},
        {"/lease/timetolive", h_timetolive},
        {"/kv/lease/timetolive", h_timetolive},
        {"/lease/leases", h_leases},
        {"/kv/lease/leases", h_leases},
    };
    return gw_route_api(s, GW_API_ALL, eps, sizeof eps / sizeof *eps, lh);
}
