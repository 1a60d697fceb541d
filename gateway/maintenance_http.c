/*
 * maintenance_http.c — status, member list, hash, defragment, alarm (see
 * maintenance_http.h).  Hash and defragment scan or rewrite the whole
 * store, so each runs on its own short-lived thread while the connection
 * sleeps; maint_http_done waits for them before the store may close.
 */
#include "api_routes.h"
#include "maintenance_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define ETCD_VERSION "3.4.23"

/* Hash and defragment jobs running at once; beyond: 429 (each is a full
 * scan or compaction of the store, a thread each). */
unsigned maint_max_jobs = 4;

int maint_http_init(maint_http *mh)
{
    mh->client_urls = NULL;
    mh->jobs = 0;
    if (pthread_mutex_init(&mh->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&mh->cv, NULL) != 0) {
        pthread_mutex_destroy(&mh->mu);
        return -1;
    }
    return 0;
}

void maint_http_set_client_urls(maint_http *mh, const char *urls)
{
    char *c = strdup(urls);
    pthread_mutex_lock(&mh->mu);
    free(mh->client_urls);
    mh->client_urls = c;
    pthread_mutex_unlock(&mh->mu);
}

void maint_http_done(maint_http *mh)
{
    pthread_mutex_lock(&mh->mu);
    while (mh->jobs)
        pthread_cond_wait(&mh->cv, &mh->mu);
    pthread_mutex_unlock(&mh->mu);
    free(mh->client_urls);
    mh->client_urls = NULL;
    pthread_mutex_destroy(&mh->mu);
    pthread_cond_destroy(&mh->cv);
}

/* Every request message here is empty or ignored: only the syntax is
 * checked, as the gateway does. */
static int check_body(gw_req *r)
{
    size_t len;
    const char *body = gw_req_body(r, &len);
    ej_decoder d;
    int rc = ej_decoder_init(&d, body, len);
    if (rc != 0)
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
    ej_decoder_done(&d);
    return rc;
}

/* etcd without auth still checks a token sent to the admin calls (hash,
 * defragment, alarm; not status or member list): 500 code 2. */
static int check_admin_auth(gw_req *r)
{
    if (!gw_req_header(r, "Authorization"))
        return 0;
    gw_reply_error(r, 500, GRPC_UNKNOWN, "auth: invalid auth token");
    return -1;
}

static void put_str_field(gwbuf *b, const char *name, const char *v)
{
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":");
    buf_put_json_str(b, v, strlen(v));
}

/* proto3 JSON: a zero is omitted. */
static void put_u64_str(gwbuf *b, const char *name, uint64_t v)
{
    if (!v)
        return;
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":\"");
    buf_put_u64(b, v);
    buf_putc(b, '"');
}

/* A comma-separated list as a JSON array of strings. */
static void put_url_list(gwbuf *b, const char *name, const char *list)
{
    if (!list || !*list)
        return;
    buf_puts(b, ",\"");
    buf_puts(b, name);
    buf_puts(b, "\":[");
    const char *p = list;
    bool first = true;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            if (!first)
                buf_putc(b, ',');
            buf_put_json_str(b, p, n);
            first = false;
        }
        p += n + (e ? 1 : 0);
    }
    buf_putc(b, ']');
}

static void h_status(gw_req *r, void *ctx)
{
    maint_http *mh = ctx;
    if (check_body(r) != 0)
        return;
    /* + 1: etcd's log is never empty (its first entries start the member) */
    int64_t applied = kvstore_applied_index(mh->store) + 1;
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, mh->header, kvstore_rev(mh->store));
    put_str_field(&b, "version", ETCD_VERSION);
    put_u64_str(&b, "dbSize", kvstore_db_size(mh->store));
    put_u64_str(&b, "leader", mh->header->member_id);
    put_u64_str(&b, "raftIndex", (uint64_t)applied);
    put_u64_str(&b, "raftTerm", mh->header->raft_term);
    put_u64_str(&b, "raftAppliedIndex", (uint64_t)applied);
    put_u64_str(&b, "dbSizeInUse", kvstore_db_size_in_use(mh->store));
    buf_putc(&b, '}');
    gw_reply_json(r, 200, &b);
}

static void h_member_list(gw_req *r, void *ctx)
{
    maint_http *mh = ctx;
    if (check_body(r) != 0)
        return;
    gwbuf b = GWBUF_INIT;
    buf_putc(&b, '{');
    ej_put_header(&b, mh->header, 0);
    buf_puts(&b, ",\"members\":[{\"ID\":\"");
    buf_put_u64(&b, mh->header->member_id);
    buf_putc(&b, '"');
    if (mh->name && *mh->name)
        put_str_field(&b, "name", mh->name);
    put_url_list(&b, "peerURLs", mh->peer_urls);
    pthread_mutex_lock(&mh->mu);
    put_url_list(&b, "clientURLs", mh->client_urls);
    pthread_mutex_unlock(&mh->mu);
    buf_puts(&b, "}]}");
    gw_reply_json(r, 200, &b);
}

/* AlarmRequest's fields are checked as etcd decodes them (kvgate keeps no
 * alarms, so their values change nothing).  memberID is a uint64: a
 * negative one is refused; one beyond int64 is accepted. */
static int check_alarm_body(gw_req *r)
{
    static const char *const actions[] = {"GET", "ACTIVATE", "DEACTIVATE"};
    static const char *const types[] = {"NONE", "NOSPACE", "CORRUPT"};
    size_t len;
    const char *body = gw_req_body(r, &len);
    ej_decoder d;
    int action = 0, type = 0;
    uint64_t member = 0;
    int rc = ej_decoder_init(&d, body, len);
    if (rc == 0)
        rc = ej_get_enum(&d, "action", NULL, "etcdserverpb.AlarmRequest_AlarmAction", actions, 3,
                         &action);
    if (rc == 0)
        rc = ej_get_uint64(&d, "memberID", NULL, &member);
    if (rc == 0)
        rc = ej_get_enum(&d, "alarm", NULL, "etcdserverpb.AlarmType", types, 3, &type);
    if (rc != 0)
        gw_reply_error(r, 400, GRPC_INVALID_ARGUMENT, d.msg);
    ej_decoder_done(&d);
    return rc;
}

static void h_alarm(gw_req *r, void *ctx)
{
    (void)ctx;
    if (check_alarm_body(r) != 0 || check_admin_auth(r) != 0)
        return;
    char *p = strdup("{}");
    gw_reply(r, 200, "application/json", p, p ? 2 : 0);
}

/* ---- background jobs ---- */

typedef struct job {
    maint_http *mh;
    gw_req *r;
    bool hash;
    kv_err err;
    uint32_t crc;
    int64_t rev;
} job;

static void job_free(void *p) { free(p); }

static void job_finish(gw_req *r, void *ctx)
{
    maint_http *mh = ctx;
    job *j = gw_req_user(r);
    gw_req_set_user(r, NULL, NULL);
    if (!j) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    if (j->err != KV_OK) {
        gw_reply_kv_error(r, j->err);
    } else if (j->hash) {
        gwbuf b = GWBUF_INIT;
        buf_putc(&b, '{');
        ej_put_header(&b, mh->header, j->rev);
        buf_puts(&b, ",\"hash\":");
        buf_put_u64(&b, j->crc);
        buf_putc(&b, '}');
        gw_reply_json(r, 200, &b);
    } else {
        char *p = strdup("{}");
        gw_reply(r, 200, "application/json", p, p ? 2 : 0);
    }
    free(j);
}

static void *job_main(void *arg)
{
    job *j = arg;
    maint_http *mh = j->mh;
    gw_req *r = j->r;
    if (j->hash)
        j->err = kvstore_hash(mh->store, &j->crc, &j->rev);
    else
        j->err = kvstore_defragment(mh->store);
    gw_req_set_user(r, j, job_free);
    gw_req_resume(r);
    pthread_mutex_lock(&mh->mu);
    if (--mh->jobs == 0)
        pthread_cond_broadcast(&mh->cv);
    pthread_mutex_unlock(&mh->mu);
    return NULL;
}

static void start_job(gw_req *r, maint_http *mh, bool hash)
{
    if (check_body(r) != 0 || check_admin_auth(r) != 0)
        return;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        gw_reply_kv_error(r, KV_ERR_NOMEM);
        return;
    }
    j->mh = mh;
    j->r = r;
    j->hash = hash;
    pthread_mutex_lock(&mh->mu);
    bool busy = mh->jobs >= maint_max_jobs;
    if (!busy)
        mh->jobs++;
    pthread_mutex_unlock(&mh->mu);
    if (busy) {
        free(j);
        gw_reply_error(r, 429, GRPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests");
        return;
    }
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    gw_req_suspend(r, job_finish);
    pthread_t t;
    if (pthread_create(&t, &at, job_main, j) != 0) {
        pthread_mutex_lock(&mh->mu);
        mh->jobs--;
        pthread_mutex_unlock(&mh->mu);
        j->err = KV_ERR_NOMEM;
        gw_req_set_user(r, j, job_free);
        gw_req_resume(r);
    }
    pthread_attr_destroy(&at);
}

static void h_hash(gw_req *r, void *ctx) { start_job(r, ctx, true); }
static void h_defragment(gw_req *r, void *ctx) { start_job(r, ctx, false); }

int maint_http_register(gw_server *s, maint_http *mh)
{
    static const gw_api_route eps[] = {
        {"/maintenance/status", h_status},
        {"/maintenance/hash", h_hash},
        {"/maintenance/defragment", h_defragment},
        {"/maintenance/alarm", h_alarm},
        {"/cluster/member/list", h_member_list},
    };
    return gw_route_api(s, GW_API_ALL, eps, sizeof eps / sizeof *eps, mh);
}
