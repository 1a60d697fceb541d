/*
 * etcd_json.c — decode etcd JSON requests into kv.h structs and encode
 * kv.h responses as etcd's gateway does.  The rules and the verified etcd
 * texts are listed in etcd_json.h.
 *
 * Decoding runs in two passes: gojson decides syntax (Go's messages), then
 * jansson builds the object that the field decoders walk in proto field
 * order, so that with several bad fields the one etcd reports (the first in
 * proto order) is the one reported here.
 * Encoding writes straight into a gwbuf: no intermediate JSON tree.
 */
#include "etcd_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

/* ------------------------------------------------------------------ */
/* decoding helpers                                                    */

static const char oom_msg[] = "etcdserver: out of memory";

static void msg_free(ej_decoder *d)
{
    if (d->msg_owned)
        free((char *)d->msg);
    d->msg = "";
    d->msg_owned = false;
}

int ej_errf(ej_decoder *d, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p) {
        if ((size_t)n < sizeof small) {
            memcpy(p, small, (size_t)n + 1);
        } else {
            va_start(ap, fmt);
            vsnprintf(p, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    msg_free(d); /* after formatting: an argument may be the old message */
    if (p) {
        d->msg = p;
        d->msg_owned = true;
    } else {
        d->msg = oom_msg;
    }
    return -1;
}

/* Go's name for a JSON value's kind in UnmarshalTypeError. */
const char *ej_go_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    default: return "null";
    }
}

static void sentinel_text(size_t k, char *out, size_t n) { snprintf(out, n, "%zu.5e-300", k); }

/* The body span of a sentinel real (a number literal that is not an
 * int64, or "-0"), or NULL. */
static const ej_span *sentinel_span(const ej_decoder *d, const json_t *v)
{
    if (!json_is_real(v))
        return NULL;
    /* sentinel k is about (k + 0.5) * 1e-300: check its neighbours exactly */
    double x = json_real_value(v), g = x / 1e-300;
    if (!(g >= 0 && g < (double)d->n_nums + 2))
        return NULL;
    size_t k0 = (size_t)g;
    for (size_t k = k0 ? k0 - 1 : 0; k <= k0 + 1 && k < d->n_nums; k++) {
        char st[40];
        sentinel_text(k, st, sizeof st);
        if (strtod(st, NULL) == x)
            return &d->nums[k];
    }
    return NULL;
}

static bool is_minus_zero(const ej_decoder *d, const ej_span *sp)
{
    return sp && sp->len == 2 && memcmp(d->body + sp->off, "-0", 2) == 0;
}

/* The literal text of a number value, for Go's messages: an int64 as
 * itself, a sentinel as the body's literal (whole, however long). */
static int number_errf(ej_decoder *d, const json_t *v, const char *go_type)
{
    if (json_is_integer(v))
        return ej_errf(d, "json: cannot unmarshal number %lld into Go value of type %s",
                       (long long)json_integer_value(v), go_type);
    const ej_span *sp = sentinel_span(d, v);
    if (sp)
        return ej_errf(d, "json: cannot unmarshal number %.*s into Go value of type %s", (int)sp->len,
                       d->body + sp->off, go_type);
    /* not reached: every other literal is a sentinel */
    return ej_errf(d, "json: cannot unmarshal number %.17g into Go value of type %s",
                   json_real_value(v), go_type);
}

/* A string value's text (unescaped) and its raw text on the wire (between
 * the quotes, escapes kept: what jsonpb gives int64 and enum fields). */
static void str_text(const ej_decoder *d, const json_t *v, const char **p, size_t *n)
{
    const char *s = json_string_value(v);
    size_t l = json_string_length(v);
    if (d->marked) {
        const char *c = memchr(s, ':', l);
        if (c) {
            l -= (size_t)(c + 1 - s);
            s = c + 1;
        }
    }
    *p = s;
    *n = l;
}

static void str_raw(const ej_decoder *d, const json_t *v, const char **p, size_t *n)
{
    if (d->marked) {
        const char *s = json_string_value(v);
        size_t k = strtoul(s, NULL, 10);
        if (k < d->n_strs) {
            *p = d->body + d->strs[k].off;
            *n = d->strs[k].len;
            return;
        }
    }
    /* not marked: no escape, valid UTF-8, so the text is the raw text */
    str_text(d, v, p, n);
}

/* Field lookup as jsonpb: camelCase name wins over the proto name. */
static json_t *field(json_t *obj, const char *orig, const char *camel)
{
    json_t *v = NULL;
    if (camel)
        v = json_object_get(obj, camel);
    if (!v)
        v = json_object_get(obj, orig);
    if (v && json_is_null(v))
        return NULL;
    return v;
}

/* Go's json.Unmarshal of `s` (the raw text of a string) into an int64 or
 * a uint64 (go_type "int64" / "uint64"). */
static int unmarshal_int(ej_decoder *d, const char *s, size_t n, bool is_unsigned, uint64_t *out)
{
    const char *go_type = is_unsigned ? "uint64" : "int64";
    gojson_scan sc;
    int rc = gojson_scan_value(s, n, &sc);
    if (rc == GOJSON_EMPTY)
        return ej_errf(d, "unexpected end of JSON input");
    if (rc == GOJSON_ERR) {
        if (strcmp(sc.msg, "unexpected EOF") == 0) {
            /* Unmarshal feeds the scanner a space at the end of the input:
             * a number or literal cut short fails on that space. */
            char *t = malloc(n + 2);
            if (!t)
                return ej_errf(d, "%s", oom_msg);
            memcpy(t, s, n);
            t[n] = ' ';
            if (gojson_scan_value(t, n + 1, &sc) == GOJSON_ERR && strcmp(sc.msg, "unexpected EOF") != 0)
                ej_errf(d, "%s", sc.msg);
            else
                ej_errf(d, "unexpected end of JSON input");
            free(t);
            return -1;
        }
        return ej_errf(d, "%s", sc.msg);
    }
    for (size_t i = sc.end; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            char q[16];
            return ej_errf(d, "invalid character %s after top-level value", gojson_quote_char(c, q));
        }
    }
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    char c = s[i];
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t l = sc.end - i;
        char tmp[32];
        bool ok = l < sizeof tmp && !memchr(s + i, '.', l) && !memchr(s + i, 'e', l) &&
                  !memchr(s + i, 'E', l);
        if (ok) {
            memcpy(tmp, s + i, l);
            tmp[l] = 0;
            errno = 0;
            if (is_unsigned) {
                ok = c != '-';
                *out = strtoull(tmp, NULL, 10);
            } else {
                *out = (uint64_t)strtoll(tmp, NULL, 10);
            }
            ok = ok && errno == 0;
        }
        if (!ok)
            return ej_errf(d, "json: cannot unmarshal number %.*s into Go value of type %s", (int)l,
                           s + i, go_type);
        return 0;
    }
    if (c == 'n') { /* null leaves the field unset */
        *out = 0;
        return 0;
    }
    return ej_errf(d, "json: cannot unmarshal %s into Go value of type %s",
                   c == '"' ? "string" : c == '{' ? "object" : c == '[' ? "array" : "bool", go_type);
}

int ej_parse_int64(ej_decoder *d, const char *s, size_t n, int64_t *out)
{
    uint64_t u = 0;
    if (d->msg == NULL)
        d->msg = "";
    if (unmarshal_int(d, s, n, false, &u) != 0)
        return -1;
    *out = (int64_t)u;
    return 0;
}

int ej_parse_int64_text(const char *s, size_t n, int64_t *out, char *msg, size_t msglen)
{
    ej_decoder d;
    memset(&d, 0, sizeof d);
    int rc = ej_parse_int64(&d, s, n, out);
    if (rc != 0 && msglen)
        snprintf(msg, msglen, "%s", d.msg);
    ej_decoder_done(&d);
    return rc;
}

/* An integer field of Go type int64 or uint64. */
static int get_int(ej_decoder *d, json_t *obj, const char *orig, const char *camel, bool is_unsigned,
                   uint64_t *out)
{
    const char *go_type = is_unsigned ? "uint64" : "int64";
    json_t *v = field(obj, orig, camel);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        if (is_unsigned && json_integer_value(v) < 0)
            return number_errf(d, v, go_type);
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) { /* a sentinel: Go parses the literal */
        const ej_span *sp = sentinel_span(d, v);
        if (sp)
            return unmarshal_int(d, d->body + sp->off, sp->len, is_unsigned, out);
        return number_errf(d, v, go_type);
    }
    if (json_is_string(v)) {
        const char *s;
        size_t n;
        str_raw(d, v, &s, &n);
        return unmarshal_int(d, s, n, is_unsigned, out);
    }
    return ej_errf(d, "json: cannot unmarshal %s into Go value of type %s", ej_go_kind(v), go_type);
}

static int get_int64(ej_decoder *d, json_t *obj, const char *orig, const char *camel, int64_t *out)
{
    uint64_t u = (uint64_t)*out;
    int rc = get_int(d, obj, orig, camel, false, &u);
    *out = (int64_t)u;
    return rc;
}

static int get_bool(ej_decoder *d, json_t *obj, const char *orig, const char *camel, bool *out)
{
    json_t *v = field(obj, orig, camel);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    return ej_errf(d, "json: cannot unmarshal %s into Go value of type bool", ej_go_kind(v));
}

/* Go also decodes a []byte from an array of numbers 0..255 (null: 0):
 * etcd accepts {"key":[89]}. */
static int get_byte_array(ej_decoder *d, json_t *arr, kv_bytes *out)
{
    size_t n = json_array_size(arr);
    kv_bytes_free(out);
    if (!n)
        return 0;
    uint8_t *p = malloc(n);
    if (!p)
        return ej_errf(d, "%s", oom_msg);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        if (json_is_null(e)) {
            p[i] = 0;
        } else if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) <= 255) {
            p[i] = (uint8_t)json_integer_value(e);
        } else {
            free(p);
            if (json_is_number(e))
                return number_errf(d, e, "uint8");
            return ej_errf(d, "json: cannot unmarshal %s into Go value of type uint8", ej_go_kind(e));
        }
    }
    out->data = p;
    out->len = n;
    return 0;
}

static int get_bytes(ej_decoder *d, json_t *obj, const char *orig, const char *camel, kv_bytes *out)
{
    json_t *v = field(obj, orig, camel);
    if (!v)
        return 0;
    if (json_is_array(v))
        return get_byte_array(d, v, out);
    if (!json_is_string(v))
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type []uint8", ej_go_kind(v));
    const char *s;
    size_t n, len = 0, bad = 0;
    str_text(d, v, &s, &n);
    kv_bytes_free(out);
    if (n == 0)
        return 0;
    uint8_t *p = malloc(b64_decoded_max(n));
    if (!p)
        return ej_errf(d, "%s", oom_msg);
    if (b64_decode(s, n, p, &len, &bad) != 0) {
        free(p);
        return ej_errf(d, "illegal base64 data at input byte %zu", bad);
    }
    if (len == 0) {
        free(p);
        p = NULL;
    }
    out->data = p;
    out->len = len;
    return 0;
}

typedef struct enum_def {
    const char *go_type;
    const char *const *names;
    int n;
} enum_def;

static const char *const sort_order_names[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_target_names[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_result_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
static const char *const cmp_target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const enum_def sort_order_def = {"etcdserverpb.RangeRequest_SortOrder", sort_order_names, 3};
static const enum_def sort_target_def = {"etcdserverpb.RangeRequest_SortTarget", sort_target_names, 5};
static const enum_def cmp_result_def = {"etcdserverpb.Compare_CompareResult", cmp_result_names, 4};
static const enum_def cmp_target_def = {"etcdserverpb.Compare_CompareTarget", cmp_target_names, 5};

/* jsonpb: a string is looked up by its raw bytes (escapes kept, so
 * "\u0041SCEND" is no name) and refused with Go's %q of them. */
static int enum_value(ej_decoder *d, json_t *v, const enum_def *def, int *out)
{
    if (json_is_string(v)) {
        const char *s;
        size_t n;
        str_raw(d, v, &s, &n);
        for (int i = 0; i < def->n; i++) {
            if (strlen(def->names[i]) == n && memcmp(s, def->names[i], n) == 0) {
                *out = i;
                return 0;
            }
        }
        char *q = malloc(4 * n + 3);
        if (!q)
            return ej_errf(d, "%s", oom_msg);
        gojson_quote(s, n, q);
        ej_errf(d, "unknown value %s for enum %s", q, def->go_type);
        free(q);
        return -1;
    }
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x >= INT32_MIN && x <= INT32_MAX) {
            *out = (int)x;
            return 0;
        }
    }
    if (is_minus_zero(d, sentinel_span(d, v))) { /* an int32 for Go */
        *out = 0;
        return 0;
    }
    if (json_is_number(v))
        return number_errf(d, v, def->go_type);
    return ej_errf(d, "json: cannot unmarshal %s into Go value of type %s", ej_go_kind(v), def->go_type);
}

static int get_enum(ej_decoder *d, json_t *obj, const char *orig, const char *camel,
                    const enum_def *def, int *out)
{
    json_t *v = field(obj, orig, camel);
    return v ? enum_value(d, v, def, out) : 0;
}

/* A nested message: NULL (absent/null) or an object; else Go's error. */
static int get_message(ej_decoder *d, json_t *obj, const char *orig, const char *camel, json_t **out)
{
    json_t *v = field(obj, orig, camel);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type map[string]json.RawMessage",
                       ej_go_kind(v));
    *out = v;
    return 0;
}

static int get_array(ej_decoder *d, json_t *obj, const char *orig, const char *camel, json_t **out)
{
    json_t *v = field(obj, orig, camel);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type []json.RawMessage",
                       ej_go_kind(v));
    *out = v;
    return 0;
}

/* An array element that must be a message (null = empty message). */
static int elem_message(ej_decoder *d, json_t *v, json_t **out)
{
    *out = NULL;
    if (json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type map[string]json.RawMessage",
                       ej_go_kind(v));
    *out = v;
    return 0;
}
/* ------------------------------------------------------------------ */
/* decoders per message; obj NULL = empty message                       */

static int dec_range(ej_decoder *d, json_t *o, kv_range_req *r)
{
    if (!o)
        return 0;
    if (get_bytes(d, o, "key", NULL, &r->key) ||
        get_bytes(d, o, "range_end", "rangeEnd", &r->range_end) ||
        get_int64(d, o, "limit", NULL, &r->limit) ||
        get_int64(d, o, "revision", NULL, &r->revision) ||
        get_enum(d, o, "sort_order", "sortOrder", &sort_order_def, &r->sort_order) ||
        get_enum(d, o, "sort_target", "sortTarget", &sort_target_def, &r->sort_target) ||
        get_bool(d, o, "serializable", NULL, &r->serializable) ||
        get_bool(d, o, "keys_only", "keysOnly", &r->keys_only) ||
        get_bool(d, o, "count_only", "countOnly", &r->count_only) ||
        get_int64(d, o, "min_mod_revision", "minModRevision", &r->min_mod_revision) ||
        get_int64(d, o, "max_mod_revision", "maxModRevision", &r->max_mod_revision) ||
        get_int64(d, o, "min_create_revision", "minCreateRevision", &r->min_create_revision) ||
        get_int64(d, o, "max_create_revision", "maxCreateRevision", &r->max_create_revision))
        return -1;
    return 0;
}

static int dec_put(ej_decoder *d, json_t *o, kv_put_req *r)
{
    if (!o)
        return 0;
    if (get_bytes(d, o, "key", NULL, &r->key) ||
        get_bytes(d, o, "value", NULL, &r->value) ||
        get_int64(d, o, "lease", NULL, &r->lease) ||
        get_bool(d, o, "prev_kv", "prevKv", &r->prev_kv) ||
        get_bool(d, o, "ignore_value", "ignoreValue", &r->ignore_value) ||
        get_bool(d, o, "ignore_lease", "ignoreLease", &r->ignore_lease))
        return -1;
    return 0;
}

static int dec_delete(ej_decoder *d, json_t *o, kv_delete_req *r)
{
    if (!o)
        return 0;
    if (get_bytes(d, o, "key", NULL, &r->key) ||
        get_bytes(d, o, "range_end", "rangeEnd", &r->range_end) ||
        get_bool(d, o, "prev_kv", "prevKv", &r->prev_kv))
        return -1;
    return 0;
}

static int dec_compare(ej_decoder *d, json_t *o, kv_compare *c)
{
    if (!o)
        return 0;
    if (get_enum(d, o, "result", NULL, &cmp_result_def, &c->result) ||
        get_enum(d, o, "target", NULL, &cmp_target_def, &c->target) ||
        get_bytes(d, o, "key", NULL, &c->key) ||
        get_bytes(d, o, "range_end", "rangeEnd", &c->range_end))
        return -1;
    /* The target_union oneof: version, create_revision, mod_revision,
     * value, lease.  etcd's compareKV reads the operand only from the
     * member that matches the target (a MOD compare given create_revision
     * compares against 0), so only that member reaches the store. */
    int64_t ver = 0, cre = 0, mod = 0, lease = 0;
    kv_bytes val = {NULL, 0};
    if (get_int64(d, o, "version", NULL, &ver) ||
        get_int64(d, o, "create_revision", "createRevision", &cre) ||
        get_int64(d, o, "mod_revision", "modRevision", &mod) ||
        get_bytes(d, o, "value", NULL, &val) ||
        get_int64(d, o, "lease", NULL, &lease)) {
        kv_bytes_free(&val);
        return -1;
    }
    switch (c->target) {
    case KV_CMP_VERSION: c->number = ver; break;
    case KV_CMP_CREATE: c->number = cre; break;
    case KV_CMP_MOD: c->number = mod; break;
    case KV_CMP_LEASE: c->number = lease; break;
    case KV_CMP_VALUE:
        c->value = val;
        val.data = NULL;
        val.len = 0;
        break;
    default: break;
    }
    kv_bytes_free(&val);
    return 0;
}

static int dec_txn(ej_decoder *d, json_t *o, kv_txn_req *t);

/* A RequestOp: the request oneof.  An empty op (etcd 3.4 crashes on a
 * null one) becomes an empty range, which the store rejects as an empty
 * key.  If several are given, the last in proto order wins. */
static int dec_op(ej_decoder *d, json_t *o, kv_op *op)
{
    json_t *rr = NULL, *rp = NULL, *rd = NULL, *rt = NULL;
    op->type = KV_OP_RANGE;
    if (!o || (!field(o, "request_range", "requestRange") && !field(o, "request_put", "requestPut") &&
               !field(o, "request_delete_range", "requestDeleteRange") &&
               !field(o, "request_txn", "requestTxn"))) {
        const kv_op **e = realloc(d->empty_ops, (d->n_empty_ops + 1) * sizeof *e);
        if (!e)
            return ej_errf(d, "%s", oom_msg);
        d->empty_ops = e;
        e[d->n_empty_ops++] = op;
        return 0;
    }
    if (get_message(d, o, "request_range", "requestRange", &rr) ||
        get_message(d, o, "request_put", "requestPut", &rp) ||
        get_message(d, o, "request_delete_range", "requestDeleteRange", &rd) ||
        get_message(d, o, "request_txn", "requestTxn", &rt))
        return -1;
    if (rt) {
        op->type = KV_OP_TXN;
        op->u.txn = calloc(1, sizeof *op->u.txn);
        if (!op->u.txn)
            return ej_errf(d, "%s", oom_msg);
        return dec_txn(d, rt, op->u.txn);
    }
    if (rd) {
        op->type = KV_OP_DELETE;
        return dec_delete(d, rd, &op->u.del);
    }
    if (rp) {
        op->type = KV_OP_PUT;
        return dec_put(d, rp, &op->u.put);
    }
    op->type = KV_OP_RANGE;
    return dec_range(d, rr, &op->u.range);
}

static int dec_ops(ej_decoder *d, json_t *arr, kv_op **ops, size_t *n)
{
    size_t cnt = arr ? json_array_size(arr) : 0;
    if (cnt == 0)
        return 0;
    *ops = calloc(cnt, sizeof **ops);
    if (!*ops)
        return ej_errf(d, "%s", oom_msg);
    for (size_t i = 0; i < cnt; i++) {
        json_t *e;
        *n = i + 1; /* so the caller frees what was built */
        if (elem_message(d, json_array_get(arr, i), &e) || dec_op(d, e, &(*ops)[i]))
            return -1;
    }
    return 0;
}

static int dec_txn(ej_decoder *d, json_t *o, kv_txn_req *t)
{
    json_t *cmp = NULL, *succ = NULL, *fail = NULL;
    if (!o)
        return 0;
    if (get_array(d, o, "compare", NULL, &cmp) ||
        get_array(d, o, "success", NULL, &succ) ||
        get_array(d, o, "failure", NULL, &fail))
        return -1;
    size_t nc = cmp ? json_array_size(cmp) : 0;
    if (nc) {
        t->compare = calloc(nc, sizeof *t->compare);
        if (!t->compare)
            return ej_errf(d, "%s", oom_msg);
        for (size_t i = 0; i < nc; i++) {
            json_t *e;
            t->n_compare = i + 1;
            if (elem_message(d, json_array_get(cmp, i), &e) || dec_compare(d, e, &t->compare[i]))
                return -1;
        }
    }
    if (dec_ops(d, succ, &t->success, &t->n_success) ||
        dec_ops(d, fail, &t->failure, &t->n_failure))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* decoder entry points                                                */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* Appends a span to *a (n used, *cap allocated).  false on ENOMEM. */
static bool span_push(ej_span **a, size_t *n, size_t *cap, size_t off, size_t len)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        ej_span *p = realloc(*a, nc * sizeof *p);
        if (!p)
            return false;
        *a = p;
        *cap = nc;
    }
    (*a)[*n].off = off;
    (*a)[*n].len = len;
    (*n)++;
    return true;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The text of a string literal (between its quotes) made acceptable to
 * jansson with Go's meaning: invalid UTF-8 bytes and lone surrogate
 * escapes become U+FFFD. */
static void sanitize_string(gwbuf *o, const char *b, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)b[i];
        if (c == '\\' && i + 1 < n && b[i + 1] == 'u' && i + 6 <= n) {
            unsigned u = hex4(b + i + 2);
            if (u >= 0xd800 && u <= 0xdbff && i + 12 <= n && b[i + 6] == '\\' && b[i + 7] == 'u' &&
                hex4(b + i + 8) >= 0xdc00 && hex4(b + i + 8) <= 0xdfff) {
                buf_put(o, b + i, 12); /* a valid pair */
                i += 12;
            } else if (u >= 0xd800 && u <= 0xdfff) {
                buf_puts(o, "\\ufffd");
                i += 6;
            } else {
                buf_put(o, b + i, 6);
                i += 6;
            }
        } else if (c == '\\' && i + 1 < n) {
            buf_put(o, b + i, 2);
            i += 2;
        } else {
            unsigned long rune;
            size_t l = gojson_decode_rune((const unsigned char *)b + i, n - i, &rune);
            if (l) {
                buf_put(o, b + i, l);
                i += l;
            } else {
                buf_puts(o, "\xef\xbf\xbd");
                i++;
            }
        }
    }
}

/* A copy of a syntactically valid body (gojson said so) that jansson
 * accepts with Go's meaning, "marked" (see ej_decoder): every number
 * literal that is not an int64 becomes a sentinel, every string value gets
 * its "k:" prefix, text is made valid UTF-8.  NULL on allocation failure. */
static char *go_sanitize(ej_decoder *d, const char *b, size_t n, size_t *out_len)
{
    gwbuf o = GWBUF_INIT;
    size_t base = (size_t)(b - d->body), cap_nums = 0, cap_strs = 0;
    bool fail = false;
    d->marked = true;
    for (size_t i = 0; i < n && !fail;) {
        unsigned char c = (unsigned char)b[i];
        if (c == '-' || (c >= '0' && c <= '9')) { /* outside strings: a number */
            size_t l = 0;
            while (i + l < n && b[i + l] && strchr("0123456789+-.eE", b[i + l]))
                l++;
            bool odd = true; /* "-0" too: a uint64 or uint8 refuses it */
            if (l < 32 && !(l == 2 && b[i] == '-' && b[i + 1] == '0') && !memchr(b + i, '.', l) && !memchr(b + i, 'e', l) && !memchr(b + i, 'E', l)) {
                char tmp[32];
                memcpy(tmp, b + i, l);
                tmp[l] = 0;
                errno = 0;
                (void)strtoll(tmp, NULL, 10);
                odd = errno != 0;
            }
            if (!odd) {
                buf_put(&o, b + i, l);
            } else if (span_push(&d->nums, &d->n_nums, &cap_nums, base + i, l)) {
                char st[40];
                sentinel_text(d->n_nums - 1, st, sizeof st);
                buf_puts(&o, st);
            } else {
                fail = true;
            }
            i += l;
            continue;
        }
        if (c != '"') {
            buf_putc(&o, (char)c);
            i++;
            continue;
        }
        size_t e = i + 1;
        while (e < n && b[e] != '"')
            e += b[e] == '\\' ? 2 : 1;
        if (e > n)
            e = n;
        size_t j = e + 1;
        while (j < n && is_ws(b[j]))
            j++;
        buf_putc(&o, '"');
        if (j >= n || b[j] != ':') { /* a value, not an object key */
            if (span_push(&d->strs, &d->n_strs, &cap_strs, base + i + 1, e - i - 1)) {
                char pre[32];
                snprintf(pre, sizeof pre, "%zu:", d->n_strs - 1);
                buf_puts(&o, pre);
            } else {
                fail = true;
            }
        }
        sanitize_string(&o, b + i + 1, e - i - 1);
        buf_putc(&o, '"');
        i = e + 1;
    }
    if (o.failed || fail) {
        buf_free(&o);
        return NULL;
    }
    return buf_steal(&o, out_len);
}

int ej_decoder_init(ej_decoder *d, const char *body, size_t len)
{
    memset(d, 0, sizeof *d);
    d->body = body;
    d->body_len = len;
    d->msg = "";
    int rc = gojson_scan_value(body, len, &d->scan);
    if (rc == GOJSON_EMPTY)
        return 0;
    if (rc == GOJSON_ERR)
        return ej_errf(d, "%s", d->scan.msg);
    size_t i = 0;
    while (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')
        i++;
    switch (body[i]) {
    case '{':
        break;
    case 'n':
        return 0; /* null: an empty request */
    default: {
        const char *kind = body[i] == '[' ? "array" : body[i] == '"' ? "string"
                         : (body[i] == 't' || body[i] == 'f') ? "bool" : "number";
        return ej_errf(d, "json: cannot unmarshal %s into Go value of type map[string]json.RawMessage",
                       kind);
    }
    }
    json_error_t err;
    json_t *root = NULL;
    size_t vlen = d->scan.end - i;
    err.text[0] = 0;
    /* Numbers that are not int64 (and -0), escapes (int64 and enum fields
     * read the raw text) need the marked copy; so do the bodies jansson refuses
     * while Go accepts them (invalid UTF-8, lone surrogates). */
    if (d->scan.n_odd == 0 && !memchr(body + i, '\\', vlen) && !memmem(body + i, vlen, "-0", 2))
        root = json_loadb(body + i, vlen, JSON_ALLOW_NUL, &err);
    if (!root) {
        size_t sl = 0;
        char *san = go_sanitize(d, body + i, vlen, &sl);
        if (!san)
            return ej_errf(d, "%s", oom_msg);
        root = json_loadb(san, sl, JSON_ALLOW_NUL, &err);
        free(san);
    }
    if (!root)
        return ej_errf(d, "json: %s", err.text);
    d->root = root;
    return 0;
}

void ej_decoder_done(ej_decoder *d)
{
    free(d->empty_ops);
    d->empty_ops = NULL;
    d->n_empty_ops = 0;
    if (d->root)
        json_decref((json_t *)d->root);
    d->root = NULL;
    free(d->nums);
    free(d->strs);
    d->nums = d->strs = NULL;
    d->n_nums = d->n_strs = 0;
    d->marked = false;
    msg_free(d);
}

int ej_decode_range(ej_decoder *d, kv_range_req *out) { return dec_range(d, d->root, out); }
int ej_decode_put(ej_decoder *d, kv_put_req *out) { return dec_put(d, d->root, out); }
int ej_decode_delete(ej_decoder *d, kv_delete_req *out) { return dec_delete(d, d->root, out); }
int ej_decode_txn(ej_decoder *d, kv_txn_req *out) { return dec_txn(d, d->root, out); }

int ej_decode_compact(ej_decoder *d, kv_compact_req *out)
{
    json_t *o = d->root;
    if (!o)
        return 0;
    if (get_int64(d, o, "revision", NULL, &out->revision) ||
        get_bool(d, o, "physical", NULL, &out->physical))
        return -1;
    return 0;
}

static bool is_empty_op(const ej_decoder *d, const kv_op *op)
{
    for (size_t i = 0; i < d->n_empty_ops; i++)
        if (d->empty_ops[i] == op)
            return true;
    return false;
}

static kv_err check_txn(const ej_decoder *d, const kv_txn_req *t, size_t max_ops);

/* etcd's checkRequestOp. */
static kv_err check_op(const ej_decoder *d, const kv_op *op, size_t max_ops)
{
    if (is_empty_op(d, op))
        return KV_ERR_KEY_NOT_FOUND;
    switch (op->type) {
    case KV_OP_RANGE:
        return op->u.range.key.len ? KV_OK : KV_ERR_EMPTY_KEY;
    case KV_OP_PUT:
        if (!op->u.put.key.len)
            return KV_ERR_EMPTY_KEY;
        if (op->u.put.ignore_value && op->u.put.value.len)
            return KV_ERR_VALUE_PROVIDED;
        if (op->u.put.ignore_lease && op->u.put.lease)
            return KV_ERR_LEASE_PROVIDED;
        return KV_OK;
    case KV_OP_DELETE:
        return op->u.del.key.len ? KV_OK : KV_ERR_EMPTY_KEY;
    case KV_OP_TXN:
        return check_txn(d, op->u.txn, max_ops);
    }
    return KV_OK;
}

/* etcd's checkTxnRequest (v3rpc/key.go). */
static kv_err check_txn(const ej_decoder *d, const kv_txn_req *t, size_t max_ops)
{
    size_t opc = t->n_compare;
    if (opc < t->n_success)
        opc = t->n_success;
    if (opc < t->n_failure)
        opc = t->n_failure;
    if (opc > max_ops)
        return KV_ERR_TOO_MANY_OPS;
    for (size_t i = 0; i < t->n_compare; i++)
        if (!t->compare[i].key.len)
            return KV_ERR_EMPTY_KEY;
    for (size_t i = 0; i < t->n_success; i++) {
        kv_err e = check_op(d, &t->success[i], max_ops - opc);
        if (e != KV_OK)
            return e;
    }
    for (size_t i = 0; i < t->n_failure; i++) {
        kv_err e = check_op(d, &t->failure[i], max_ops - opc);
        if (e != KV_OK)
            return e;
    }
    return KV_OK;
}

kv_err ej_check_txn(const ej_decoder *d, const kv_txn_req *t, size_t max_txn_ops)
{
    if (!d->n_empty_ops)
        return KV_OK;
    return check_txn(d, t, max_txn_ops);
}

/* ---- etcd's checkIntervals (v3rpc/key.go): no key written twice in one
 * branch, nor put where the same branch deletes.  Quadratic lists: this
 * runs only when the gateway must answer before the store would (an
 * Authorization header), on small txns. */

typedef struct ivl {
    const kv_bytes *b, *e; /* e NULL: the point b */
} ivl;

typedef struct ivset {
    ivl *a;
    size_t n, cap;
    bool oom;
} ivset;

typedef struct keyset {
    const kv_bytes **a;
    size_t n, cap;
    bool oom;
} keyset;

static int bcmp_bytes(const kv_bytes *x, const kv_bytes *y)
{
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool bytes_eq(const kv_bytes *x, const kv_bytes *y) { return bcmp_bytes(x, y) == 0; }

static void iv_add(ivset *s, const kv_bytes *b, const kv_bytes *e)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        ivl *a = realloc(s->a, cap * sizeof *a);
        if (!a) {
            s->oom = true;
            return;
        }
        s->a = a;
        s->cap = cap;
    }
    s->a[s->n].b = b;
    s->a[s->n].e = e;
    s->n++;
}

/* etcd's adt: a point [b] holds only b; an interval [b, e) holds
 * b <= k < e in byte order (so [k, "\0") holds nothing, as in etcd). */
static bool iv_hits(const ivset *s, const kv_bytes *k)
{
    for (size_t i = 0; i < s->n; i++) {
        const ivl *v = &s->a[i];
        if (!v->e ? bytes_eq(v->b, k) : bcmp_bytes(v->b, k) <= 0 && bcmp_bytes(k, v->e) < 0)
            return true;
    }
    return false;
}

static bool ks_has(const keyset *s, const kv_bytes *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (bytes_eq(s->a[i], k))
            return true;
    return false;
}

static void ks_add(keyset *s, const kv_bytes *k)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const kv_bytes **a = realloc(s->a, cap * sizeof *a);
        if (!a) {
            s->oom = true;
            return;
        }
        s->a = a;
        s->cap = cap;
    }
    s->a[s->n++] = k;
}

static kv_err intervals(const kv_op *ops, size_t n, keyset *puts, ivset *dels)
{
    kv_err err = KV_OK;
    for (size_t i = 0; i < n; i++) {
        const kv_op *op = &ops[i];
        if (op->type == KV_OP_DELETE)
            iv_add(dels, &op->u.del.key, op->u.del.range_end.len ? &op->u.del.range_end : NULL);
    }
    for (size_t i = 0; i < n && err == KV_OK; i++) {
        const kv_op *op = &ops[i];
        if (op->type != KV_OP_TXN || !op->u.txn)
            continue;
        keyset pt = {0}, pe = {0};
        ivset dt = {0}, de = {0};
        err = intervals(op->u.txn->success, op->u.txn->n_success, &pt, &dt);
        if (err == KV_OK)
            err = intervals(op->u.txn->failure, op->u.txn->n_failure, &pe, &de);
        for (size_t k = 0; err == KV_OK && k < pt.n; k++) {
            if (ks_has(puts, pt.a[k]) || iv_hits(dels, pt.a[k]))
                err = KV_ERR_DUPLICATE_KEY;
            else
                ks_add(puts, pt.a[k]);
        }
        for (size_t k = 0; err == KV_OK && k < pe.n; k++) {
            /* then/else are exclusive: a key put by both is fine */
            if ((ks_has(puts, pe.a[k]) && !ks_has(&pt, pe.a[k])) || iv_hits(dels, pe.a[k]))
                err = KV_ERR_DUPLICATE_KEY;
            else
                ks_add(puts, pe.a[k]);
        }
        for (size_t k = 0; k < dt.n; k++)
            iv_add(dels, dt.a[k].b, dt.a[k].e);
        for (size_t k = 0; k < de.n; k++)
            iv_add(dels, de.a[k].b, de.a[k].e);
        if (pt.oom || pe.oom || dt.oom || de.oom)
            err = KV_ERR_NOMEM;
        free(pt.a);
        free(pe.a);
        free(dt.a);
        free(de.a);
    }
    for (size_t i = 0; i < n && err == KV_OK; i++) {
        const kv_op *op = &ops[i];
        if (op->type != KV_OP_PUT)
            continue;
        if (ks_has(puts, &op->u.put.key) || iv_hits(dels, &op->u.put.key))
            err = KV_ERR_DUPLICATE_KEY;
        else
            ks_add(puts, &op->u.put.key);
    }
    if (err == KV_OK && (puts->oom || dels->oom))
        err = KV_ERR_NOMEM;
    return err;
}

kv_err ej_validate(const ej_decoder *d, const kv_request *req, size_t max_txn_ops)
{
    if (req->kind == KV_REQ_COMPACT)
        return KV_OK;
    const kv_op *op = &req->op;
    switch (op->type) {
    case KV_OP_RANGE:
    case KV_OP_PUT:
    case KV_OP_DELETE:
        return check_op(d, op, max_txn_ops);
    case KV_OP_TXN: {
        if (!op->u.txn)
            return KV_OK;
        kv_err e = check_txn(d, op->u.txn, max_txn_ops);
        for (int branch = 0; e == KV_OK && branch < 2; branch++) {
            keyset puts = {0};
            ivset dels = {0};
            e = branch ? intervals(op->u.txn->failure, op->u.txn->n_failure, &puts, &dels)
                       : intervals(op->u.txn->success, op->u.txn->n_success, &puts, &dels);
            free(puts.a);
            free(dels.a);
        }
        return e;
    }
    }
    return KV_OK;
}

/* ---- protobuf sizes, for etcd's request size limit ---- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t pb_bytes(size_t tag_len, size_t len) { return len ? tag_len + varint_len(len) + len : 0; }
static size_t pb_int(int64_t v) { return v ? 1 + varint_len((uint64_t)v) : 0; }
static size_t pb_bool(bool v) { return v ? 2 : 0; }
static size_t pb_msg(size_t len) { return 1 + varint_len(len) + len; }

static size_t range_size(const kv_range_req *r)
{
    return pb_bytes(1, r->key.len) + pb_bytes(1, r->range_end.len) + pb_int(r->limit) +
           pb_int(r->revision) + pb_int(r->sort_order) + pb_int(r->sort_target) +
           pb_bool(r->serializable) + pb_bool(r->keys_only) + pb_bool(r->count_only) +
           pb_int(r->min_mod_revision) + pb_int(r->max_mod_revision) +
           pb_int(r->min_create_revision) + pb_int(r->max_create_revision);
}

static size_t put_size(const kv_put_req *p)
{
    return pb_bytes(1, p->key.len) + pb_bytes(1, p->value.len) + pb_int(p->lease) +
           pb_bool(p->prev_kv) + pb_bool(p->ignore_value) + pb_bool(p->ignore_lease);
}

static size_t delete_size(const kv_delete_req *d)
{
    return pb_bytes(1, d->key.len) + pb_bytes(1, d->range_end.len) + pb_bool(d->prev_kv);
}

static size_t txn_size(const kv_txn_req *t);

static size_t op_size(const kv_op *op)
{
    switch (op->type) {
    case KV_OP_RANGE: return pb_msg(range_size(&op->u.range));
    case KV_OP_PUT: return pb_msg(put_size(&op->u.put));
    case KV_OP_DELETE: return pb_msg(delete_size(&op->u.del));
    case KV_OP_TXN: return pb_msg(op->u.txn ? txn_size(op->u.txn) : 0);
    }
    return 0;
}

static size_t txn_size(const kv_txn_req *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_compare; i++) {
        const kv_compare *c = &t->compare[i];
        /* the target_union member is sent even when zero */
        size_t cs = pb_int(c->result) + pb_int(c->target) + pb_bytes(1, c->key.len) +
                    pb_bytes(2, c->range_end.len) +
                    (c->target == KV_CMP_VALUE ? 1 + varint_len(c->value.len) + c->value.len
                                               : 1 + varint_len((uint64_t)c->number));
        n += pb_msg(cs);
    }
    for (size_t i = 0; i < t->n_success; i++)
        n += pb_msg(op_size(&t->success[i]));
    for (size_t i = 0; i < t->n_failure; i++)
        n += pb_msg(op_size(&t->failure[i]));
    return n;
}

size_t ej_raft_request_size(const kv_request *req)
{
    const size_t header = 13; /* field 100 {ID: a 9-byte varint} */
    size_t body;
    if (req->kind == KV_REQ_COMPACT)
        body = pb_int(req->compact.revision) + pb_bool(req->compact.physical);
    else if (req->op.type == KV_OP_PUT)
        body = put_size(&req->op.u.put);
    else if (req->op.type == KV_OP_DELETE)
        body = delete_size(&req->op.u.del);
    else if (req->op.type == KV_OP_TXN)
        body = req->op.u.txn ? txn_size(req->op.u.txn) : 0;
    else
        body = range_size(&req->op.u.range);
    return header + pb_msg(body);
}

/* ------------------------------------------------------------------ */
/* encoding                                                            */

void ej_put_bytes(gwbuf *b, const uint8_t *p, size_t n)
{
    size_t el = b64_encoded_len(n);
    if (!buf_grow(b, el + 2))
        return;
    b->p[b->len++] = '"';
    b64_encode(p, n, b->p + b->len);
    b->len += el;
    b->p[b->len++] = '"';
}

/* ,"name":"123" when v != 0; `first` tracks whether a comma is needed. */
void ej_put_i64_field(gwbuf *b, bool *first, const char *name, int64_t v)
{
    if (!v)
        return;
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_putc(b, '"');
    buf_puts(b, name);
    buf_puts(b, "\":\"");
    buf_put_i64(b, v);
    buf_putc(b, '"');
}

static void put_u64_field(gwbuf *b, bool *first, const char *name, uint64_t v)
{
    if (!v)
        return;
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_putc(b, '"');
    buf_puts(b, name);
    buf_puts(b, "\":\"");
    buf_put_u64(b, v);
    buf_putc(b, '"');
}

static void put_bytes_field(gwbuf *b, bool *first, const char *name, const kv_bytes *v)
{
    if (!v->len)
        return;
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_putc(b, '"');
    buf_puts(b, name);
    buf_puts(b, "\":");
    ej_put_bytes(b, v->data, v->len);
}

static void put_true_field(gwbuf *b, bool *first, const char *name, bool v)
{
    if (!v)
        return;
    if (!*first)
        buf_putc(b, ',');
    *first = false;
    buf_putc(b, '"');
    buf_puts(b, name);
    buf_puts(b, "\":true");
}

void ej_put_header(gwbuf *b, const ej_header *h, int64_t revision)
{
    bool first = true;
    buf_puts(b, "\"header\":{");
    if (h) {
        put_u64_field(b, &first, "cluster_id", h->cluster_id);
        put_u64_field(b, &first, "member_id", h->member_id);
    }
    ej_put_i64_field(b, &first, "revision", revision);
    if (h)
        put_u64_field(b, &first, "raft_term", h->raft_term);
    buf_putc(b, '}');
}

void ej_put_kv(gwbuf *b, const kv_keyvalue *kv)
{
    bool first = true;
    buf_putc(b, '{');
    put_bytes_field(b, &first, "key", &kv->key);
    ej_put_i64_field(b, &first, "create_revision", kv->create_revision);
    ej_put_i64_field(b, &first, "mod_revision", kv->mod_revision);
    ej_put_i64_field(b, &first, "version", kv->version);
    put_bytes_field(b, &first, "value", &kv->value);
    ej_put_i64_field(b, &first, "lease", kv->lease);
    buf_putc(b, '}');
}

static void put_kvs(gwbuf *b, const char *name, const kv_keyvalue *kvs, size_t n)
{
    if (!n)
        return;
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        ej_put_kv(b, &kvs[i]);
    }
    buf_putc(b, ']');
}

/* The fields of each response after the header (a header always precedes
 * them, so each starts with a comma). */
static void range_fields(gwbuf *b, const kv_range_resp *r)
{
    bool first = false;
    put_kvs(b, "kvs", r->kvs, r->n_kvs);
    put_true_field(b, &first, "more", r->more);
    ej_put_i64_field(b, &first, "count", r->count);
}

static void put_fields(gwbuf *b, const kv_put_resp *r)
{
    if (r->prev_kv) {
        buf_puts(b, ",\"prev_kv\":");
        ej_put_kv(b, r->prev_kv);
    }
}

static void delete_fields(gwbuf *b, const kv_delete_resp *r)
{
    bool first = false;
    ej_put_i64_field(b, &first, "deleted", r->deleted);
    put_kvs(b, "prev_kvs", r->prev_kvs, r->n_prev_kvs);
}

static void op_fields(gwbuf *b, const kv_op_resp *r);

static void txn_fields(gwbuf *b, const kv_txn_resp *t)
{
    bool first = false;
    if (!t)
        return;
    put_true_field(b, &first, "succeeded", t->succeeded);
    if (!t->n_responses)
        return;
    buf_puts(b, ",\"responses\":[");
    for (size_t i = 0; i < t->n_responses; i++) {
        const kv_op_resp *o = &t->responses[i];
        const char *name = o->type == KV_OP_RANGE ? "response_range"
                         : o->type == KV_OP_PUT ? "response_put"
                         : o->type == KV_OP_DELETE ? "response_delete_range" : "response_txn";
        if (i)
            buf_putc(b, ',');
        buf_puts(b, "{\"");
        buf_puts(b, name);
        buf_puts(b, "\":{");
        ej_put_header(b, NULL, o->header_revision);
        op_fields(b, o);
        buf_puts(b, "}}");
    }
    buf_putc(b, ']');
}

static void op_fields(gwbuf *b, const kv_op_resp *r)
{
    switch (r->type) {
    case KV_OP_RANGE: range_fields(b, &r->u.range); break;
    case KV_OP_PUT: put_fields(b, &r->u.put); break;
    case KV_OP_DELETE: delete_fields(b, &r->u.del); break;
    case KV_OP_TXN: txn_fields(b, r->u.txn); break;
    }
}

void ej_encode_range_resp(gwbuf *b, const ej_header *h, int64_t rev, const kv_range_resp *r)
{
    buf_putc(b, '{');
    ej_put_header(b, h, rev);
    range_fields(b, r);
    buf_putc(b, '}');
}

void ej_encode_op_resp(gwbuf *b, const ej_header *h, int64_t rev, const kv_op_resp *r)
{
    buf_putc(b, '{');
    ej_put_header(b, h, rev);
    op_fields(b, r);
    buf_putc(b, '}');
}

void ej_encode_compact_resp(gwbuf *b, const ej_header *h, int64_t rev)
{
    buf_putc(b, '{');
    ej_put_header(b, h, rev);
    buf_putc(b, '}');
}

int ej_get_int64(ej_decoder *d, const char *orig, const char *camel, int64_t *out)
{
    return d->root ? get_int64(d, d->root, orig, camel, out) : 0;
}

int ej_get_uint64(ej_decoder *d, const char *orig, const char *camel, uint64_t *out)
{
    return d->root ? get_int(d, d->root, orig, camel, true, out) : 0;
}

int ej_get_bool(ej_decoder *d, const char *orig, const char *camel, bool *out)
{
    return d->root ? get_bool(d, d->root, orig, camel, out) : 0;
}

int ej_get_enum(ej_decoder *d, const char *orig, const char *camel, const char *go_type,
                const char *const *names, int n, int *out)
{
    enum_def def = {go_type, names, n};
    return d->root ? get_enum(d, d->root, orig, camel, &def, out) : 0;
}

int ej_obj_int64(ej_decoder *d, json_t *obj, const char *orig, const char *camel, int64_t *out)
{
    return get_int64(d, obj, orig, camel, out);
}

int ej_obj_bool(ej_decoder *d, json_t *obj, const char *orig, const char *camel, bool *out)
{
    return get_bool(d, obj, orig, camel, out);
}

int ej_obj_bytes(ej_decoder *d, json_t *obj, const char *orig, const char *camel, kv_bytes *out)
{
    return get_bytes(d, obj, orig, camel, out);
}

int ej_obj_message(ej_decoder *d, json_t *obj, const char *orig, const char *camel, json_t **out)
{
    return get_message(d, obj, orig, camel, out);
}

int ej_enum_value(ej_decoder *d, json_t *v, const char *go_type, const char *const *names, int n,
                  int *out)
{
    enum_def def = {go_type, names, n};
    return enum_value(d, v, &def, out);
}
