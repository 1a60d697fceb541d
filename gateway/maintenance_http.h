/*
 * maintenance_http.h — etcd's Maintenance and Cluster endpoints that make
 * sense for one member, shaped as etcd 3.4.23's gateway answers them
 * (under /v3, /v3beta and /v3alpha, as the KV endpoints):
 *
 *   POST .../maintenance/status   {"header","version":"3.4.23","dbSize",
 *        "leader","raftIndex","raftTerm","raftAppliedIndex","dbSizeInUse"}
 *        leader = this member's id; raftIndex = raftAppliedIndex = 1 +
 *        requests applied by the store's committer (kvgate has no raft log;
 *        etcd's is never empty).  Zero values omitted, as etcd's JSON.
 *   POST .../cluster/member/list  {"header" (no revision),"members":[{"ID",
 *        "name","peerURLs","clientURLs"}]}
 *   POST .../maintenance/hash     {"header","hash":<uint32 number>}: CRC-32C
 *        of the store's contents (kvstore_hash), computed off the MHD threads.
 *   POST .../maintenance/defragment  {} (etcd answers no header either):
 *        RocksDB manual compaction of every column family.
 *        More than maint_max_jobs hashes/defragments at once: 429.
 *   POST .../maintenance/alarm    {}: kvgate raises no alarms (a full disk is
 *        an error on the write itself), so the list is always empty; the
 *        request is still decoded as etcd does (400 for unknown enum names,
 *        a negative memberID).
 */
#ifndef KVGATE_MAINTENANCE_HTTP_H
#define KVGATE_MAINTENANCE_HTTP_H

#include <pthread.h>

#include "etcd_json.h"
#include "http.h"
#include "kv.h"

typedef struct maint_http {
    kvstore *store;          /* borrowed */
    const ej_header *header; /* borrowed */
    const char *name;        /* member name (--name); borrowed */
    const char *peer_urls;   /* comma-separated; borrowed */
    /* private */
    char *client_urls;       /* set by maint_http_set_client_urls */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned jobs;           /* hash/defragment threads running */
} maint_http;

extern unsigned maint_max_jobs; /* default 4 */

/* Fills the private part; 0 or -1. */
int maint_http_init(maint_http *mh);
/* The advertised client URLs (comma-separated; copied), once the port is
 * known.  Any time. */
void maint_http_set_client_urls(maint_http *mh, const char *urls);
/* Registers the routes; `mh` must outlive the server.  0 or -1. */
int maint_http_register(gw_server *s, maint_http *mh);
/* Waits for background jobs, frees the private part.  After the server
 * stopped, before the store closes. */
void maint_http_done(maint_http *mh);

#endif
