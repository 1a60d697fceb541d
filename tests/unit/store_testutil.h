/*
 * store_testutil.h — helpers shared by the store unit tests: temporary data
 * dirs, request builders, synchronous wrappers.  Header-only (static) so
 * each test binary links only the store layer.
 */
#ifndef KVGATE_STORE_TESTUTIL_H
#define KVGATE_STORE_TESTUTIL_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"

#define TU_UNUSED __attribute__((unused))

TU_UNUSED static int tu_rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb; (void)f; (void)ftw;
    return remove(p);
}

TU_UNUSED static void tu_rmrf(const char *dir)
{
    nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* New temp dir name (the directory itself exists, empty). */
TU_UNUSED static char *tu_tmpdir(void)
{
    char *d = strdup("/tmp/kvgate-store-test.XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(2);
    }
    return d;
}

TU_UNUSED static kvstore *tu_open(const char *dir, const kvstore_opts *o)
{
    char *err = NULL;
    kvstore *s = kvstore_open(dir, o, &err);
    if (!s) {
        fprintf(stderr, "kvstore_open(%s): %s\n", dir, err ? err : "?");
        free(err);
        exit(2);
    }
    return s;
}

TU_UNUSED static kv_bytes B(const char *s)
{
    kv_bytes b = {0};
    if (s)
        kv_bytes_set(&b, s, strlen(s));
    return b;
}

TU_UNUSED static kv_bytes BN(const void *p, size_t n)
{
    kv_bytes b = {0};
    kv_bytes_set(&b, p, n);
    return b;
}

TU_UNUSED static kv_request *tu_req_op(kv_op op)
{
    kv_request *r = calloc(1, sizeof *r);
    r->kind = KV_REQ_OP;
    r->op = op;
    return r;
}

TU_UNUSED static kv_op op_put(const char *k, const char *v)
{
    kv_op op = {.type = KV_OP_PUT};
    op.u.put.key = B(k);
    op.u.put.value = B(v);
    return op;
}

TU_UNUSED static kv_op op_del(const char *k, const char *end)
{
    kv_op op = {.type = KV_OP_DELETE};
    op.u.del.key = B(k);
    op.u.del.range_end = B(end);
    return op;
}

TU_UNUSED static kv_op op_range(const char *k, const char *end)
{
    kv_op op = {.type = KV_OP_RANGE};
    op.u.range.key = B(k);
    op.u.range.range_end = B(end);
    return op;
}

/* Runs a request; returns the response (caller frees). */
TU_UNUSED static kv_response *tu_do(kvstore *s, kv_op op)
{
    return kvstore_do(s, tu_req_op(op));
}

/* put; returns the header revision, or -err */
TU_UNUSED static int64_t tu_put(kvstore *s, const char *k, const char *v)
{
    kv_response *r = tu_do(s, op_put(k, v));
    int64_t rev = r->err ? -(int64_t)r->err : r->header_revision;
    kv_response_free(r);
    return rev;
}

TU_UNUSED static int64_t tu_del(kvstore *s, const char *k, const char *end, int64_t *deleted)
{
    kv_response *r = tu_do(s, op_del(k, end));
    int64_t rev = r->err ? -(int64_t)r->err : r->header_revision;
    if (deleted)
        *deleted = r->err ? -1 : r->resp.u.del.deleted;
    kv_response_free(r);
    return rev;
}

TU_UNUSED static int64_t tu_compact(kvstore *s, int64_t rev, bool physical)
{
    kv_request *q = calloc(1, sizeof *q);
    q->kind = KV_REQ_COMPACT;
    q->compact.revision = rev;
    q->compact.physical = physical;
    kv_response *r = kvstore_do(s, q);
    int64_t ret = r->err ? -(int64_t)r->err : r->header_revision;
    kv_response_free(r);
    return ret;
}

/* Range read (any thread path). */
TU_UNUSED static kv_err tu_range(kvstore *s, const char *k, const char *end, int64_t rev,
                       kv_range_resp *out)
{
    kv_range_req q = {0};
    int64_t h;
    q.key = B(k);
    q.range_end = B(end);
    q.revision = rev;
    kv_err e = kvstore_range(s, &q, out, &h);
    kv_range_req_free(&q);
    return e;
}

/* Value of k at rev as a static string ("" if absent, "<ERR>" on error). */
TU_UNUSED static const char *tu_get(kvstore *s, const char *k, int64_t rev)
{
    static char buf[4096];
    kv_range_resp r;
    if (tu_range(s, k, NULL, rev, &r) != KV_OK)
        return "<ERR>";
    if (r.n_kvs == 0)
        strcpy(buf, "<none>");
    else
        snprintf(buf, sizeof buf, "%.*s", (int)r.kvs[0].value.len, (const char *)r.kvs[0].value.data);
    kv_range_resp_free(&r);
    return buf;
}

TU_UNUSED static bool kv_is(const kv_keyvalue *kv, const char *k, const char *v, int64_t create,
                  int64_t mod, int64_t version)
{
    return kv->key.len == strlen(k) && memcmp(kv->key.data, k, kv->key.len) == 0 &&
           (!v || (kv->value.len == strlen(v) && (!kv->value.len || memcmp(kv->value.data, v, kv->value.len) == 0))) &&
           kv->create_revision == create && kv->mod_revision == mod && kv->version == version;
}

#endif
