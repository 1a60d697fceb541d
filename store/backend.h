/*
 * backend.h — the store's thin wrapper over RocksDB (backend.c).  The only
 * way the store reaches RocksDB; errors come back as kv_err plus, where it
 * helps, a malloc'd message.
 *
 * Threads: backend_get / iterators on the DB may be used from any thread;
 * a backend_batch belongs to one thread at a time.
 */
#ifndef KVGATE_BACKEND_H
#define KVGATE_BACKEND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

enum { BE_CF_META = 0, BE_CF_REV, BE_CF_INDEX, BE_CF_LEASE, BE_CF_COUNT };

typedef struct backend backend;
typedef struct backend_batch backend_batch;
typedef struct backend_iter backend_iter;

typedef struct backend_opts {
    size_t block_cache_bytes;
    bool create; /* create the DB and its column families if missing */
    bool in_memory; /* RocksDB's in-memory env (dir is only a name) */
} backend_opts;

/* NULL on failure with *errmsg a new malloc'd message. */
backend *backend_open(const char *dir, const backend_opts *o, char **errmsg);
void backend_close(backend *b);
uint64_t backend_size(backend *b);
/* true when no column family holds any key (a freshly created DB). */
bool backend_is_empty(backend *b);
/* Before opening: 1 if the MANIFEST of the store in `dir` lists the
 * "meta" column family, 0 if it does not (or cannot be read: the open that
 * follows reports why).  Reads only; RocksDB's read-write open would
 * delete the table files a truncated MANIFEST no longer names. */
int backend_lists_meta(const char *dir);

/* Point read.  wb != NULL: read through the (indexed) batch first.
 * Returns KV_OK with *found and, if found, *val (free with backend_free). */
kv_err backend_get(backend *b, backend_batch *wb, int cf, const void *key, size_t klen,
                   char **val, size_t *vlen, bool *found);
void backend_free(void *p);

/* Iterators over one column family; wb != NULL merges the batch's writes.
 * Key/value pointers are valid until the iterator moves. */
backend_iter *backend_iter_new(backend *b, backend_batch *wb, int cf);
void backend_iter_seek(backend_iter *it, const void *key, size_t klen);
void backend_iter_seek_first(backend_iter *it);
void backend_iter_next(backend_iter *it);
bool backend_iter_valid(backend_iter *it);
const uint8_t *backend_iter_key(backend_iter *it, size_t *len);
const uint8_t *backend_iter_value(backend_iter *it, size_t *len);
kv_err backend_iter_status(backend_iter *it); /* after !valid: KV_OK or the error */
void backend_iter_free(backend_iter *it);

/* Batches.  indexed = true: a WriteBatchWithIndex readable through
 * backend_get / backend_iter_new; else a plain write batch. */
backend_batch *backend_batch_new(backend *b, bool indexed);
void backend_batch_free(backend_batch *wb);
void backend_batch_put(backend_batch *wb, int cf, const void *k, size_t kl, const void *v,
                       size_t vl);
void backend_batch_delete(backend_batch *wb, int cf, const void *k, size_t kl);
void backend_batch_clear(backend_batch *wb);
int backend_batch_count(backend_batch *wb);
/* Atomic write of the whole batch (all families); sync = fsync'd WAL.
 * KV_ERR_NOSPACE / KV_ERR_IO on failure, nothing applied. */
kv_err backend_batch_write(backend *b, backend_batch *wb, bool sync);

/* Live data estimate over all families (RocksDB's estimate-live-data-size). */
uint64_t backend_size_in_use(backend *b);
/* Manual compaction of the whole key range of every family. */
kv_err backend_compact_all(backend *b);

/* Test hook: when set, the next backend_batch_write calls fail with this
 * error (and decrement the counter), after backend_fail_after writes that
 * go through.  backend_open sets them from the environment variable
 * KVGATE_TEST_FAIL_WRITES="AFTER,COUNT[,nospace|io]" (tests/faults, for
 * machines where a small file system cannot be mounted). */
extern int backend_fail_writes;
extern int backend_fail_after;
extern kv_err backend_fail_err;

#endif
