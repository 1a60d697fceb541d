/*
 * main.c — bin/kvgate: flags, store and server start-up, signals, shutdown.
 *
 * Flags live in one table (name, argument, help, setter) so later issues add
 * a line each (--sse-heartbeat, --log-level, --ephemeral).  Errors are one
 * line on stderr and exit status 2 (usage) or 1 (start-up).  Once serving,
 * exactly one line goes to stdout: "kvgate listening on http://HOST:PORT".
 *
 * Shutdown (SIGINT/SIGTERM): the server stops accepting, requests in flight
 * finish (writes wait for their commit), then the store closes.  Signals
 * are blocked in every thread and taken synchronously by sigwait() in main,
 * so no handler runs in async-signal context.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "http.h"
#include "kv.h"
#include "kv_http.h"
#include "lease_http.h"
#include "lock_http.h"
#include "log.h"
#include "maintenance_http.h"
#include "metrics_http.h"
#include "static_http.h"
#include "status_http.h"
#include "watch.h"
#include "watch_http.h"

#define KVGATE_VERSION "0.1.0"

typedef struct options {
    const char *listen;
    const char *data_dir;
    const char *cors_origins;
    unsigned long long max_request_bytes;
    unsigned long long max_txn_ops;
    unsigned long long max_connections;
    unsigned long long conn_timeout_s;
    unsigned long long conn_memory;
    unsigned long long stream_timeout_s;
    unsigned long long shutdown_grace_ms;
    unsigned long long sse_heartbeat_s;
    unsigned long long max_streams;
    unsigned long long max_json_depth;         /* 0: Go's 10000 only */
    unsigned long long max_watches_per_stream; /* 0: no cap */
    unsigned long long max_key_bytes;          /* 0: only the request limit */
    unsigned long long max_value_bytes;        /* 0: only the request limit */
    const char *name;
    const char *advertise_client_urls;
    const char *advertise_peer_urls;
    const char *web_dir;  /* NULL: the embedded copy of web/ */
    bool ephemeral;       /* keep everything in memory, no data dir */
    log_level log_level;  /* --log-level: stderr lines below it are dropped */
} options;

typedef struct flag {
    const char *name;   /* without "--" */
    const char *arg;    /* placeholder, NULL for a switch */
    const char *help;
    int (*set)(options *o, const char *v, char *err, size_t errlen);
} flag;

static int parse_u64(const char *v, unsigned long long min, unsigned long long max,
                     unsigned long long *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    if (!*v || *v == '-') {
        snprintf(err, errlen, "invalid value \"%s\": want a non-negative integer", v);
        return -1;
    }
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < min || x > max) {
        snprintf(err, errlen, "invalid value \"%s\": want an integer in [%llu, %llu]", v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

static int set_listen(options *o, const char *v, char *e, size_t n)
{
    (void)e; (void)n;
    o->listen = v;
    return 0;
}
static int set_data_dir(options *o, const char *v, char *e, size_t n)
{
    if (!*v) {
        snprintf(e, n, "empty data dir");
        return -1;
    }
    o->data_dir = v;
    return 0;
}
static int set_cors(options *o, const char *v, char *e, size_t n)
{
    (void)e; (void)n;
    o->cors_origins = v;
    return 0;
}
static int set_max_req(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 1, (unsigned long long)1 << 31, &o->max_request_bytes, e, n);
}
static int set_max_txn(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 1, 1u << 20, &o->max_txn_ops, e, n);
}
static int set_max_conn(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 1, 1u << 20, &o->max_connections, e, n);
}
static int set_timeout(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, 86400, &o->conn_timeout_s, e, n);
}

static int set_stream_timeout(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, 86400, &o->stream_timeout_s, e, n);
}
static int set_conn_memory(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 4096, 1u << 24, &o->conn_memory, e, n);
}

static int set_sse_heartbeat(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, 3600, &o->sse_heartbeat_s, e, n);
}
static int set_max_streams(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 1, 1u << 20, &o->max_streams, e, n);
}

/* Bad-input limits (README "Limits"): each refusal is an etcd-style error
 * body.  Defaults keep every answer etcd gives (see main()). */
static int set_max_json_depth(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, 10000, &o->max_json_depth, e, n);
}
static int set_max_watches(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, 1u << 24, &o->max_watches_per_stream, e, n);
}
static int set_max_key(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, (unsigned long long)1 << 31, &o->max_key_bytes, e, n);
}
static int set_max_value(options *o, const char *v, char *e, size_t n)
{
    return parse_u64(v, 0, (unsigned long long)1 << 31, &o->max_value_bytes, e, n);
}

static int set_name(options *o, const char *v, char *e, size_t n)
{
    (void)e; (void)n;
    o->name = v;
    return 0;
}
static int set_adv_client(options *o, const char *v, char *e, size_t n)
{
    (void)e; (void)n;
    o->advertise_client_urls = v;
    return 0;
}
static int set_adv_peer(options *o, const char *v, char *e, size_t n)
{
    (void)e; (void)n;
    o->advertise_peer_urls = v;
    return 0;
}

static int set_web_dir(options *o, const char *v, char *e, size_t n)
{
    if (!*v) {
        snprintf(e, n, "empty web dir");
        return -1;
    }
    o->web_dir = v;
    return 0;
}

static int set_log_level(options *o, const char *v, char *e, size_t n)
{
    if (log_level_parse(v, &o->log_level) != 0) {
        snprintf(e, n, "invalid value \"%s\": want debug, info, warn or error", v);
        return -1;
    }
    return 0;
}

static const flag flags[] = {
    {"listen", "HOST:PORT", "address to serve on (port 0: any free port)", set_listen},
    {"data-dir", "DIR", "where the store keeps its data", set_data_dir},
    {"cors-origins", "LIST", "comma-separated origins allowed by CORS, or *", set_cors},
    {"max-request-bytes", "N", "largest write request accepted (decoded bytes)", set_max_req},
    {"max-txn-ops", "N", "most operations in one txn", set_max_txn},
    {"max-connections", "N", "most simultaneous client connections", set_max_conn},
    {"connection-timeout", "SECONDS", "idle timeout of a connection (0: none)", set_timeout},
    {"stream-stall-timeout", "SECONDS", "close a watch stream whose reader accepts nothing for this long (0: never)", set_stream_timeout},
    {"connection-memory", "BYTES", "per-connection buffer memory (request headers + send buffer)", set_conn_memory},
    {"sse-heartbeat", "SECONDS", "comment line on idle SSE watch streams (0: none)", set_sse_heartbeat},
    {"max-streams", "N", "most simultaneous watch streams (beyond: 429)", set_max_streams},
    {"max-watches-per-stream", "N", "most watch creates in one watch request body (beyond: 400; 0: no cap)", set_max_watches},
    {"max-json-depth", "N", "deepest JSON nesting in a request body (beyond: 400; 0: Go's 10000)", set_max_json_depth},
    {"max-key-bytes", "N", "largest key in a request (beyond: 400; 0: only --max-request-bytes)", set_max_key},
    {"max-value-bytes", "N", "largest value in a put (beyond: 400; 0: only --max-request-bytes)", set_max_value},
    {"name", "NAME", "member name in member list (etcd's --name)", set_name},
    {"advertise-client-urls", "URLS", "client URLs in member list (default: the listen URL)", set_adv_client},
    {"advertise-peer-urls", "URLS", "peer URLs in member list (kvgate has no peers)", set_adv_peer},
    {"ephemeral", NULL, "keep everything in memory (test servers; no data dir, gone at exit)", NULL},
    {"log-level", "LEVEL", "least severe log line written to stderr: debug, info, warn or error", set_log_level},
    {"web-dir", "DIR", "serve web files from DIR instead of the embedded copy (development)", set_web_dir},
    {"help", NULL, "show this help", NULL},
    {"version", NULL, "show the version", NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: kvgate [flags]\n\n"
               "kvgate serves etcd v3's HTTP/JSON KV API on a local revision store.\n\n");
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s%s%s", flags[i].name, flags[i].arg ? " " : "",
                 flags[i].arg ? flags[i].arg : "");
        fprintf(f, "  %-32s %s\n", left, flags[i].help);
    }
    fprintf(f, "\ndefaults: --listen 127.0.0.1:2379 --data-dir ./data --max-request-bytes 1572864\n"
               "          --max-txn-ops 128 --max-connections 10000 --connection-timeout 60\n"
               "          --sse-heartbeat 15 --max-streams 9000 --name default\n"
               "          --max-watches-per-stream 1000 --max-json-depth 2048\n"
               "          --max-key-bytes 0 --max-value-bytes 0\n"
               "          --advertise-peer-urls http://localhost:2380 --log-level info\n");
}

/* 0 to run, 1 to exit 0 (help/version), -1 to exit 2. */
static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 && !(a[0] == '-' && a[1] && a[1] != '-')) {
            fprintf(stderr, "kvgate: unexpected argument \"%s\" (see --help)\n", a);
            return -1;
        }
        a += a[1] == '-' ? 2 : 1; /* accept -flag like Go's flag package */
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof *flags; k++)
            if (strlen(flags[k].name) == nl && strncmp(flags[k].name, a, nl) == 0)
                f = &flags[k];
        if (!f) {
            fprintf(stderr, "kvgate: unknown flag --%.*s (see --help)\n", (int)nl, a);
            return -1;
        }
        if (!f->arg) {
            if (eq) {
                fprintf(stderr, "kvgate: flag --%s takes no value\n", f->name);
                return -1;
            }
            if (strcmp(f->name, "ephemeral") == 0) {
                o->ephemeral = true;
                continue;
            }
            if (strcmp(f->name, "help") == 0)
                usage(stdout);
            else
                printf("kvgate %s (etcd API 3.4)\n", KVGATE_VERSION);
            return 1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kvgate: flag --%s needs a value\n", f->name);
                return -1;
            }
            v = argv[++i];
        }
        char err[160];
        if (f->set(o, v, err, sizeof err) != 0) {
            fprintf(stderr, "kvgate: --%s: %s\n", f->name, err);
            return -1;
        }
    }
    return 0;
}

/* Room for every connection plus the store's files. */
static void raise_nofile(unsigned long long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t target = rl.rlim_max;
    if (target == RLIM_INFINITY || target > want)
        target = want > rl.rlim_cur ? want : rl.rlim_cur;
    if (target > rl.rlim_cur) {
        rl.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "kvgate: warning: cannot raise the open files limit to %llu\n",
                    (unsigned long long)target);
    }
}

/* Stable ids per data dir (FNV-1a of its absolute path): tests ignore them,
 * clients only compare them. */
static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int main(int argc, char **argv)
{
    options o = {
        .listen = "127.0.0.1:2379",
        .data_dir = "./data",
        .cors_origins = NULL,
        .max_request_bytes = 1572864,
        .max_txn_ops = 128,
        .max_connections = 10000,
        .conn_timeout_s = 60,
        .conn_memory = GW_DEFAULT_CONN_MEMORY,
        .stream_timeout_s = 600,
        .shutdown_grace_ms = 10000,
        .sse_heartbeat_s = 15,
        .max_streams = 9000,
        /* 2048 is the depth jansson parses at most anyway, so the check
         * changes no answer, only makes the refusal's text clear; etcd
         * (Go) accepts up to 10000, so a lower default would refuse bodies
         * etcd answers.  Keys and values: etcd has no limit but the
         * request size, so none by default either. */
        .max_json_depth = 2048,
        .max_watches_per_stream = 1000,
        .name = "default",
        .advertise_client_urls = NULL,
        .advertise_peer_urls = "http://localhost:2380",
        .log_level = LOG_INFO,
    };
    int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    log_set_level(o.log_level);

    /* Before any thread exists: signals go to sigwait() only; SIGPIPE off. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);
    raise_nofile(o.max_connections + 1024);

    /* The HTTP body cap: etcd's gRPC limit (max-request-bytes + 512 KiB) in
     * base64-inflated JSON, plus room for the JSON around it. */
    gw_config gc = {
        .listen = o.listen,
        .cors_origins = o.cors_origins,
        .max_body_bytes = (size_t)((o.max_request_bytes + 512 * 1024) * 4 / 3 + 64 * 1024),
        .max_connections = (unsigned)o.max_connections,
        .threads = 0,
        .conn_timeout_s = (unsigned)o.conn_timeout_s,
        .conn_memory = (size_t)o.conn_memory,
        .stream_timeout_s = (unsigned)o.stream_timeout_s,
        .max_json_depth = (unsigned)o.max_json_depth,
    };
    char *err = NULL;
    gw_server *srv = gw_server_new(&gc, &err);
    if (!srv) {
        fprintf(stderr, "kvgate: %s\n", err ? err : "cannot create the server");
        free(err);
        return 1;
    }

    kvstore_opts so;
    kvstore_opts_default(&so);
    so.max_txn_ops = (size_t)o.max_txn_ops;
    if (o.ephemeral) {
        /* RocksDB's in-memory environment: no files, nothing left at exit */
        so.in_memory = true;
        so.sync_writes = false;
        o.data_dir = "/kvgate-ephemeral";
    }
    kvstore *store = kvstore_open(o.data_dir, &so, &err);
    if (!store) {
        fprintf(stderr, "kvgate: %s\n", err ? err : "cannot open the data dir");
        free(err);
        gw_server_free(srv);
        return 1;
    }

    char abs[PATH_MAX];
    const char *idsrc = !o.ephemeral && realpath(o.data_dir, abs) ? abs : o.data_dir;
    kv_http kh = {
        .store = store,
        .header = {.cluster_id = fnv1a(idsrc, 14695981039346656037ULL),
                   .member_id = fnv1a("member", fnv1a(idsrc, 14695981039346656037ULL)),
                   .raft_term = 2},
        .max_request_bytes = (size_t)o.max_request_bytes,
        .max_txn_ops = (size_t)o.max_txn_ops,
        .max_key_bytes = (size_t)o.max_key_bytes,
        .max_value_bytes = (size_t)o.max_value_bytes,
    };
    /* Watches: the watchable layer over the store, the endpoints over it. */
    watchable_opts wo;
    watchable_opts_default(&wo);
    wo.cache_free = watch_http_cache_free; /* each event encoded once for all watchers */
    watchable *ws = watchable_new(store, &wo);
    watch_http_opts who;
    watch_http_opts_default(&who);
    who.event_cache = true;
    who.sse_heartbeat_ms = (unsigned)o.sse_heartbeat_s * 1000;
    who.max_streams = (unsigned)o.max_streams;
    who.max_watches_per_stream = (unsigned)o.max_watches_per_stream;
    who.max_request_bytes = (size_t)o.max_request_bytes;
    watch_http *wh = ws ? watch_http_new(store, ws, &kh.header, &who) : NULL;
    /* Leases, maintenance and cluster: over the store, sharing the header. */
    lease_http lh = {.store = store, .header = &kh.header};
    maint_http mh = {.store = store, .header = &kh.header, .name = o.name,
                     .peer_urls = o.advertise_peer_urls};
    bool mh_ok = maint_http_init(&mh) == 0;
    /* The member list must name the client URL from the first request
     * served: set it before the server starts whenever the port is known
     * (with port 0 it is known only once bound, and set again below). */
    if (mh_ok) {
        char early[300];
        snprintf(early, sizeof early, "http://%s", o.listen);
        maint_http_set_client_urls(&mh, o.advertise_client_urls ? o.advertise_client_urls : early);
    }
    metrics_http mth = {.srv = srv, .store = store, .ws = ws, .wh = wh};
    lock_http *lkh = ws ? lock_http_new(store, ws, &kh.header, kh.max_request_bytes) : NULL;
    static_http *sh = NULL;
    if (!wh || !mh_ok || metrics_http_register(srv, &mth) != 0 || kv_http_register(srv, &kh) != 0 || status_http_register(srv, store) != 0 ||
        !(sh = static_http_register(srv, o.web_dir, &err)) ||
        watch_http_register(srv, wh) != 0 || lease_http_register(srv, &lh) != 0 ||
        maint_http_register(srv, &mh) != 0 || !lkh || lock_http_register(srv, lkh) != 0 ||
        gw_server_start(srv, &err) != 0) {
        fprintf(stderr, "kvgate: %s\n", err ? err : "out of memory");
        free(err);
        gw_server_free(srv);
        static_http_free(sh);
        if (mh_ok)
            maint_http_done(&mh);
        watch_http_free(wh);
        lock_http_free(lkh);
        watchable_close(ws);
        kvstore_close(store);
        return 1;
    }

    /* Print the host as given (brackets kept for IPv6). */
    const char *colon = strrchr(o.listen, ':');
    char url[300];
    snprintf(url, sizeof url, "http://%.*s:%u", (int)(colon - o.listen), o.listen,
             (unsigned)gw_server_port(srv));
    maint_http_set_client_urls(&mh, o.advertise_client_urls ? o.advertise_client_urls : url);
    /* the log line first: whoever sees the readiness line on stdout finds
     * the start recorded on stderr already */
    log_printf(LOG_INFO, "kvgate", "listening url=%s data_dir=%s version=%s pid=%ld", url,
               o.ephemeral ? "(ephemeral)" : idsrc, KVGATE_VERSION, (long)getpid());
    printf("kvgate listening on http://%.*s:%u\n", (int)(colon - o.listen), o.listen,
           (unsigned)gw_server_port(srv));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_printf(LOG_INFO, "kvgate", "stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    gw_server_stop(srv, (unsigned)o.shutdown_grace_ms);
    maint_http_done(&mh);
    watch_http_free(wh);
    lock_http_free(lkh);
    watchable_close(ws);
    kvstore_close(store);
    gw_server_free(srv);
    static_http_free(sh);
    log_printf(LOG_INFO, "kvgate", "stopped");
    return 0;
}
