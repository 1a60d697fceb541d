/*
 * backend.c — RocksDB behind a small interface: open/close with the store's
 * column families, point reads, iterators (optionally merged with a
 * WriteBatchWithIndex so the committer reads its own uncommitted writes),
 * atomic batch writes, size.  The only file that includes rocksdb/c.h; every
 * RocksDB error string is converted to a kv_err and freed here.
 *
 * Column families (layouts in revision.c, kv_record.c, key_index.c,
 * kvstore.c):
 *   "default"  unused (RocksDB requires it)
 *   "meta"     store revision, compaction revisions, format version
 *   "rev"      (main, sub) -> kv_record: the history, in revision order
 *   "index"    escaped key + (~main, ~sub) -> small index value
 *   "lease"    the lease table and key -> lease attachments (lease.h)
 *
 * Tuning: one LRU block cache shared by all families, a bloom filter
 * (10 bits/key) for point lookups in "rev" and "meta", level compaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "backend.h"
#include "log.h"

int backend_fail_writes;
int backend_fail_after;
kv_err backend_fail_err = KV_ERR_IO;

/* KVGATE_TEST_FAIL_WRITES="AFTER,COUNT[,nospace|io]": see backend.h. */
static void fail_hook_from_env(void)
{
    const char *v = getenv("KVGATE_TEST_FAIL_WRITES");
    int after = 0, count = 0, n = 0;
    char kind[16] = "";
    if (!v || sscanf(v, "%d,%d%n,%15s", &after, &count, &n, kind) < 2 || after < 0 || count < 0)
        return;
    __atomic_store_n(&backend_fail_after, after, __ATOMIC_SEQ_CST);
    backend_fail_err = strcmp(kind, "io") == 0 ? KV_ERR_IO : KV_ERR_NOSPACE;
    __atomic_store_n(&backend_fail_writes, count, __ATOMIC_SEQ_CST);
}

/* ---- tuning and policy constants (one place; why each value) ---------- */

/* RocksDB's InfoLogLevel: DEBUG 0, INFO 1, WARN 2, ERROR 3, FATAL 4. */
#define BACKEND_LOG_LEVEL_FATAL 4
/* RocksDB's WALRecoveryMode: kTolerateCorruptedTailRecords 0,
 * kAbsoluteConsistency 1, kPointInTimeRecovery 2 (RocksDB's default),
 * kSkipAnyCorruptedRecords 3.  kvgate uses 0, as etcd treats its own WAL:
 * an incomplete record at the very end of the log (a write that was in
 * flight when the process or the machine died, hence never acknowledged:
 * a write is answered only after its fsync) is dropped; a record that is
 * there but fails its checksum (damage in the middle of the log, zeroed
 * blocks) makes the open fail.  Point-in-time recovery (the default) would
 * silently stop at the damage and drop every later acknowledged write;
 * absolute consistency would refuse to start after an ordinary crash in the
 * middle of a write.  See README "Durability and recovery". */
#define BACKEND_WAL_RECOVERY_TOLERATE_TAIL 0
/* Bloom filter bits per key for point lookups: RocksDB's recommended 10
 * (about 1% false positives). */
#define BACKEND_BLOOM_BITS_PER_KEY 10
/* Old info LOG files kept (LOG.old.*): LOG only holds fatal lines. */
#define BACKEND_KEEP_LOG_FILES 4
/* Background flush/compaction threads: one per CPU, at least 2, at most 8
 * (more does not help a single-writer store and costs memory). */
#define BACKEND_MIN_BG_JOBS 2
#define BACKEND_MAX_BG_JOBS 8
/* Initial size of an indexed batch's buffer (RocksDB grows it): a typical
 * commit batch fits without a reallocation. */
#define BACKEND_WBWI_RESERVED_BYTES (1 << 16)

/* The durability watermark (see "Watermark" below): a small text file in
 * the data dir, one fixed-size line rewritten in place. */
#define BACKEND_WATERMARK_FILE "KVGATE-DURABLE-SEQ"
#define BACKEND_WATERMARK_FMT "kvgate durable sequence %020" PRIu64 "\n"
#define BACKEND_WATERMARK_LEN 45 /* strlen of one formatted line */

static const char *cf_names[BE_CF_COUNT + 1] = {"meta", "rev", "index", "lease", "default"};

struct backend {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_env_t *mem_env; /* in_memory only */
    rocksdb_options_t *cf_opts[BE_CF_COUNT + 1];
    rocksdb_column_family_handle_t *cf[BE_CF_COUNT + 1];
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo_sync, *wo_nosync;
    int wm_fd;               /* the watermark file, -1 if none (in memory) */
    _Atomic uint64_t wm_seq; /* highest sequence written to it */
};

struct backend_batch {
    backend *b; /* for the column family handles */
    bool indexed;
    rocksdb_writebatch_wi_t *wi;
    rocksdb_writebatch_t *wb;
};

struct backend_iter {
    rocksdb_iterator_t *it;
};

static kv_err conv_err(char *err)
{
    kv_err e = KV_ERR_IO;
    if (err && (strstr(err, "No space") || strstr(err, "no space") || strstr(err, "NoSpace")))
        e = KV_ERR_NOSPACE;
    rocksdb_free(err);
    return e;
}

static char *dupmsg(const char *fmt, const char *a, const char *b)
{
    char *m = NULL;
    if (asprintf(&m, fmt, a, b ? b : "") < 0)
        m = NULL;
    return m;
}


/* ---- Watermark ----------------------------------------------------------
 * RocksDB cannot tell a write-ahead log that lost its end (truncated at a
 * record boundary, emptied, zeroed from a block boundary on, deleted) from
 * one whose last write simply never happened: it starts with what is left,
 * and acknowledged writes are gone without a word.  So after every synced
 * batch kvgate records, in BACKEND_WATERMARK_FILE, a lower bound of the
 * RocksDB sequence number that is now durable (the latest sequence before
 * the write plus the batch's entries).  One pwrite of 45 bytes in place, no
 * fsync: it is written after the WAL's fsync, so whatever value it holds
 * was durable when written, and after a power loss it can only be older
 * (lower), never ahead.  At open, a store that recovers to a lower
 * sequence than the file says lost acknowledged writes: refused.
 * A missing or empty file (a store made before the file existed, or a
 * crash while creating it) means "nothing known"; a garbled one is damage
 * like any other and is refused. */

static char *wm_path(const char *dir)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, BACKEND_WATERMARK_FILE) < 0)
        p = NULL;
    return p;
}

/* 0: *seq read (0 if no file or an empty one); -1: unreadable or garbled
 * (*why says which). */
static int wm_read(const char *dir, uint64_t *seq, const char **why)
{
    *seq = 0;
    char *p = wm_path(dir);
    if (!p) {
        *why = "out of memory";
        return -1;
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        *why = strerror(errno);
        return -1;
    }
    char buf[BACKEND_WATERMARK_LEN + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n == 0)
        return 0;
    uint64_t v = 0;
    int used = 0;
    buf[n < 0 ? 0 : n] = 0;
    if (n != BACKEND_WATERMARK_LEN ||
        sscanf(buf, "kvgate durable sequence %20" SCNu64 "\n%n", &v, &used) != 1 ||
        used != BACKEND_WATERMARK_LEN) {
        *why = "garbled";
        return -1;
    }
    *seq = v;
    return 0;
}

static void wm_write(backend *b, uint64_t seq)
{
    uint64_t cur = atomic_load_explicit(&b->wm_seq, memory_order_relaxed);
    do {
        if (seq <= cur)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&b->wm_seq, &cur, seq, memory_order_relaxed,
                                                    memory_order_relaxed));
    char line[BACKEND_WATERMARK_LEN + 1];
    snprintf(line, sizeof line, BACKEND_WATERMARK_FMT, seq);
    /* Two writers may race and leave the lower value: still a lower bound.
     * A failure leaves an older (lower) value: the check stays sound. */
    ssize_t w = pwrite(b->wm_fd, line, BACKEND_WATERMARK_LEN, 0);
    (void)w;
}

/* Opens (creating) the watermark file and records the current sequence.
 * NULL or a message. */
static char *wm_open(backend *b, const char *dir)
{
    char *p = wm_path(dir);
    if (!p)
        return dupmsg("out of memory opening %s%s", dir, NULL);
    b->wm_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(p);
    if (b->wm_fd < 0)
        return dupmsg("data dir %s: cannot open " BACKEND_WATERMARK_FILE ": %s", dir,
                      strerror(errno));
    uint64_t seq = rocksdb_get_latest_sequence_number(b->db);
    char line[BACKEND_WATERMARK_LEN + 1];
    snprintf(line, sizeof line, BACKEND_WATERMARK_FMT, seq);
    if (pwrite(b->wm_fd, line, BACKEND_WATERMARK_LEN, 0) != BACKEND_WATERMARK_LEN ||
        ftruncate(b->wm_fd, BACKEND_WATERMARK_LEN) < 0 || fsync(b->wm_fd) < 0)
        return dupmsg("data dir %s: cannot write " BACKEND_WATERMARK_FILE ": %s", dir,
                      strerror(errno));
    atomic_store_explicit(&b->wm_seq, seq, memory_order_relaxed);
    return NULL;
}

/* Before opening an existing store: its MANIFEST must name kvgate's column
 * families and no other.  A RocksDB database of another program is never
 * opened read-write (RocksDB would add kvgate's families to it).  Only
 * "default" (a creation interrupted before the families were added, or an
 * empty database of anyone) is fine when that family holds nothing.
 * NULL (go on: an unreadable MANIFEST is reported by the open) or a
 * message. */
static char *check_families(const char *dir, const rocksdb_options_t *opts)
{
    char *err = NULL, *msg = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(opts, dir, &n, &err);
    if (!names) {
        rocksdb_free(err);
        return NULL;
    }
    bool meta = false, other = false;
    const char *foreign = NULL;
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (int j = 0; j <= BE_CF_COUNT; j++)
            known |= strcmp(names[i], cf_names[j]) == 0;
        if (!known && !foreign)
            foreign = names[i];
        meta |= strcmp(names[i], cf_names[BE_CF_META]) == 0;
        other |= strcmp(names[i], "default") != 0;
    }
    if (foreign)
        msg = dupmsg("data dir %s holds a RocksDB database of another program "
                     "(column family \"%s\"); refusing to open it", dir, foreign);
    else if (!meta && other)
        msg = dupmsg("data dir %s holds a RocksDB database without kvgate's \"meta\" "
                     "column family (another program's, or a damaged MANIFEST)%s", dir, NULL);
    else if (!meta) {
        /* only "default": must be empty (read-only look, WAL included) */
        const char *dn[1] = {"default"};
        const rocksdb_options_t *dopts[1] = {opts};
        rocksdb_column_family_handle_t *h[1] = {NULL};
        rocksdb_t *db = rocksdb_open_for_read_only_column_families(opts, dir, 1, dn, dopts, h, 0,
                                                                  &err);
        if (db) {
            rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
            rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, h[0]);
            rocksdb_iter_seek_to_first(it);
            if (rocksdb_iter_valid(it))
                msg = dupmsg("data dir %s holds a RocksDB database of another program "
                             "(data in its default column family); refusing to open it%s",
                             dir, NULL);
            rocksdb_iter_destroy(it);
            rocksdb_readoptions_destroy(ro);
            rocksdb_column_family_handle_destroy(h[0]);
            rocksdb_close(db);
        }
        rocksdb_free(err);
    }
    rocksdb_list_column_families_destroy(names, n);
    return msg;
}

backend *backend_open(const char *dir, const backend_opts *o, char **errmsg)
{
    char *err = NULL;
    backend *b = calloc(1, sizeof *b);
    if (!b)
        goto err;
    b->wm_fd = -1;
    b->cache = rocksdb_cache_create_lru(o->block_cache_bytes);
    b->bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(b->bbto, b->cache);
    rocksdb_block_based_options_set_filter_policy(b->bbto, rocksdb_filterpolicy_create_bloom_full(BACKEND_BLOOM_BITS_PER_KEY));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(b->bbto, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(b->bbto, 1);

    b->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(b->opts, o->create);
    /* a family added by a later version (e.g. a lease table) is created on
     * an existing store; the DB itself only when the caller says so */
    rocksdb_options_set_create_missing_column_families(b->opts, 1);
    rocksdb_options_set_error_if_exists(b->opts, 0);
    rocksdb_options_set_paranoid_checks(b->opts, 1);
    rocksdb_options_set_wal_recovery_mode(b->opts, BACKEND_WAL_RECOVERY_TOLERATE_TAIL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < BACKEND_MIN_BG_JOBS)
        cpus = BACKEND_MIN_BG_JOBS;
    rocksdb_options_increase_parallelism(b->opts, (int)cpus);
    rocksdb_options_set_max_background_jobs(b->opts,
                                            (int)(cpus < BACKEND_MAX_BG_JOBS ? cpus : BACKEND_MAX_BG_JOBS));
    rocksdb_options_set_keep_log_file_num(b->opts, BACKEND_KEEP_LOG_FILES);
    /* The info LOG lives on the data dir's file system.  Once one of its
     * appends fails (disk full), RocksDB 7.8 (built with assertions, as
     * Debian's is) aborts the process on the next log line — which its
     * own error handler writes when it reports or recovers from the full
     * disk.  So only fatal lines are logged (LOG stays empty otherwise;
     * kvgate reports errors itself); a full disk must give 507s, never a
     * crash. */
    rocksdb_options_set_info_log_level(b->opts, BACKEND_LOG_LEVEL_FATAL);
    if (o->in_memory) {
        b->mem_env = rocksdb_create_mem_env();
        if (!b->mem_env)
            goto err;
        rocksdb_options_set_env(b->opts, b->mem_env);
        rocksdb_options_set_create_if_missing(b->opts, 1);
    }
    for (int i = 0; i <= BE_CF_COUNT; i++) {
        b->cf_opts[i] = rocksdb_options_create_copy(b->opts);
        rocksdb_options_set_block_based_table_factory(b->cf_opts[i], b->bbto);
        rocksdb_options_set_level_compaction_dynamic_level_bytes(b->cf_opts[i], 1);
    }
    rocksdb_options_set_block_based_table_factory(b->opts, b->bbto);

    uint64_t wm = 0;
    if (!o->in_memory && !o->create) {
        const char *why = NULL;
        if ((*errmsg = check_families(dir, b->opts)))
            goto err_set;
        if (wm_read(dir, &wm, &why) < 0) {
            *errmsg = dupmsg("data dir %s: " BACKEND_WATERMARK_FILE " is unreadable (%s); "
                             "it records how far acknowledged writes go, so kvgate will not "
                             "start without it (remove it to start with whatever RocksDB recovers)",
                             dir, why);
            goto err_set;
        }
    }
    b->db = rocksdb_open_column_families(b->opts, dir, BE_CF_COUNT + 1, cf_names,
                                         (const rocksdb_options_t *const *)b->cf_opts, b->cf,
                                         &err);
    if (!b->db) {
        if (err && (strstr(err, "lock") || strstr(err, "LOCK") || strstr(err, "Resource temporarily")))
            *errmsg = dupmsg("data dir %s is in use by another kvgate (%s)", dir, err);
        else
            *errmsg = dupmsg("cannot open the store in data dir %s (corrupt or unreadable): %s", dir, err);
        rocksdb_free(err);
        err = NULL;
        goto err_set;
    }
    if (!o->in_memory) {
        uint64_t got = rocksdb_get_latest_sequence_number(b->db);
        if (got < wm) {
            char *m = NULL;
            if (asprintf(&m, "data dir %s lost acknowledged writes: its store recovered up to "
                             "RocksDB sequence %" PRIu64 " but writes up to %" PRIu64 " were "
                             "acknowledged (write-ahead log *.log truncated, emptied or removed?); "
                             "refusing to start without them (restore the data dir from a backup, "
                             "or remove " BACKEND_WATERMARK_FILE " to start with what is left)",
                         dir, got, wm) < 0)
                m = NULL;
            *errmsg = m;
            goto err_set;
        }
        if ((*errmsg = wm_open(b, dir)))
            goto err_set;
    }
    fail_hook_from_env();
    b->ro = rocksdb_readoptions_create();
    b->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(b->wo_sync, 1);
    b->wo_nosync = rocksdb_writeoptions_create();
    return b;
err:
    *errmsg = dupmsg("out of memory opening %s%s", dir, NULL);
err_set:
    backend_close(b);
    return NULL;
}

void backend_close(backend *b)
{
    if (!b)
        return;
    if (b->db) {
        for (int i = 0; i <= BE_CF_COUNT; i++)
            if (b->cf[i])
                rocksdb_column_family_handle_destroy(b->cf[i]);
        rocksdb_close(b->db);
    }
    for (int i = 0; i <= BE_CF_COUNT; i++)
        if (b->cf_opts[i])
            rocksdb_options_destroy(b->cf_opts[i]);
    if (b->opts)
        rocksdb_options_destroy(b->opts);
    if (b->bbto)
        rocksdb_block_based_options_destroy(b->bbto);
    if (b->cache)
        rocksdb_cache_destroy(b->cache);
    if (b->ro)
        rocksdb_readoptions_destroy(b->ro);
    if (b->wo_sync)
        rocksdb_writeoptions_destroy(b->wo_sync);
    if (b->wo_nosync)
        rocksdb_writeoptions_destroy(b->wo_nosync);
    if (b->mem_env)
        rocksdb_env_destroy(b->mem_env); /* after the DB and its options */
    if (b->wm_fd >= 0)
        close(b->wm_fd);
    free(b);
}

uint64_t backend_size(backend *b)
{
    uint64_t total = 0, v;
    for (int i = 0; i <= BE_CF_COUNT; i++) {
        if (rocksdb_property_int_cf(b->db, b->cf[i], "rocksdb.total-sst-files-size", &v) == 0)
            total += v;
        if (rocksdb_property_int_cf(b->db, b->cf[i], "rocksdb.cur-size-all-mem-tables", &v) == 0)
            total += v;
    }
    return total;
}

uint64_t backend_size_in_use(backend *b)
{
    uint64_t total = 0, v;
    for (int i = 0; i <= BE_CF_COUNT; i++) {
        if (rocksdb_property_int_cf(b->db, b->cf[i], "rocksdb.estimate-live-data-size", &v) == 0)
            total += v;
        if (rocksdb_property_int_cf(b->db, b->cf[i], "rocksdb.cur-size-all-mem-tables", &v) == 0)
            total += v;
    }
    uint64_t all = backend_size(b);
    return total < all ? total : all;
}

kv_err backend_compact_all(backend *b)
{
    for (int i = 0; i <= BE_CF_COUNT; i++)
        rocksdb_compact_range_cf(b->db, b->cf[i], NULL, 0, NULL, 0);
    return KV_OK;
}

bool backend_is_empty(backend *b)
{
    for (int i = 0; i < BE_CF_COUNT; i++) {
        backend_iter *it = backend_iter_new(b, NULL, i);
        if (!it)
            return false;
        backend_iter_seek_first(it);
        bool any = backend_iter_valid(it);
        backend_iter_free(it);
        if (any)
            return false;
    }
    return true;
}

int backend_lists_meta(const char *dir)
{
    char *err = NULL;
    size_t n = 0;
    rocksdb_options_t *o = rocksdb_options_create();
    char **names = rocksdb_list_column_families(o, dir, &n, &err);
    rocksdb_options_destroy(o);
    int found = 0;
    for (size_t i = 0; names && i < n; i++)
        found |= strcmp(names[i], cf_names[BE_CF_META]) == 0;
    if (names)
        rocksdb_list_column_families_destroy(names, n);
    rocksdb_free(err);
    return found;
}

kv_err backend_get(backend *b, backend_batch *wb, int cf, const void *key, size_t klen,
                   char **val, size_t *vlen, bool *found)
{
    char *err = NULL;
    char *v;
    if (wb && wb->indexed)
        v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(wb->wi, b->db, b->ro, b->cf[cf],
                                                           key, klen, vlen, &err);
    else
        v = rocksdb_get_cf(b->db, b->ro, b->cf[cf], key, klen, vlen, &err);
    if (err)
        return conv_err(err);
    *found = v != NULL;
    *val = v;
    return KV_OK;
}

void backend_free(void *p)
{
    rocksdb_free(p);
}

backend_iter *backend_iter_new(backend *b, backend_batch *wb, int cf)
{
    backend_iter *it = malloc(sizeof *it);
    if (!it)
        return NULL;
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(b->db, b->ro, b->cf[cf]);
    if (wb && wb->indexed)
        /* takes over `base` */
        it->it = rocksdb_writebatch_wi_create_iterator_with_base_cf(wb->wi, base, b->cf[cf]);
    else
        it->it = base;
    return it;
}

void backend_iter_seek(backend_iter *it, const void *key, size_t klen)
{
    rocksdb_iter_seek(it->it, key, klen);
}

void backend_iter_seek_first(backend_iter *it)
{
    rocksdb_iter_seek_to_first(it->it);
}

void backend_iter_next(backend_iter *it)
{
    rocksdb_iter_next(it->it);
}

bool backend_iter_valid(backend_iter *it)
{
    return rocksdb_iter_valid(it->it) != 0;
}

const uint8_t *backend_iter_key(backend_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *backend_iter_value(backend_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

kv_err backend_iter_status(backend_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    return err ? conv_err(err) : KV_OK;
}

void backend_iter_free(backend_iter *it)
{
    if (!it)
        return;
    rocksdb_iter_destroy(it->it);
    free(it);
}

backend_batch *backend_batch_new(backend *b, bool indexed)
{
    backend_batch *wb = calloc(1, sizeof *wb);
    if (!wb)
        return NULL;
    wb->b = b;
    wb->indexed = indexed;
    if (indexed)
        wb->wi = rocksdb_writebatch_wi_create(BACKEND_WBWI_RESERVED_BYTES, 1);
    else
        wb->wb = rocksdb_writebatch_create();
    return wb;
}

void backend_batch_free(backend_batch *wb)
{
    if (!wb)
        return;
    if (wb->wi)
        rocksdb_writebatch_wi_destroy(wb->wi);
    if (wb->wb)
        rocksdb_writebatch_destroy(wb->wb);
    free(wb);
}

void backend_batch_put(backend_batch *wb, int cf, const void *k, size_t kl, const void *v,
                       size_t vl)
{
    if (wb->indexed)
        rocksdb_writebatch_wi_put_cf(wb->wi, wb->b->cf[cf], k, kl, v, vl);
    else
        rocksdb_writebatch_put_cf(wb->wb, wb->b->cf[cf], k, kl, v, vl);
}

void backend_batch_delete(backend_batch *wb, int cf, const void *k, size_t kl)
{
    if (wb->indexed)
        rocksdb_writebatch_wi_delete_cf(wb->wi, wb->b->cf[cf], k, kl);
    else
        rocksdb_writebatch_delete_cf(wb->wb, wb->b->cf[cf], k, kl);
}

void backend_batch_clear(backend_batch *wb)
{
    if (wb->indexed)
        rocksdb_writebatch_wi_clear(wb->wi);
    else
        rocksdb_writebatch_clear(wb->wb);
}

int backend_batch_count(backend_batch *wb)
{
    return wb->indexed ? rocksdb_writebatch_wi_count(wb->wi) : rocksdb_writebatch_count(wb->wb);
}

kv_err backend_batch_write(backend *b, backend_batch *wb, bool sync)
{
    char *err = NULL;
    if (__atomic_load_n(&backend_fail_writes, __ATOMIC_SEQ_CST) > 0 &&
        !(__atomic_load_n(&backend_fail_after, __ATOMIC_SEQ_CST) > 0 &&
          __atomic_sub_fetch(&backend_fail_after, 1, __ATOMIC_SEQ_CST) >= 0) &&
        __atomic_sub_fetch(&backend_fail_writes, 1, __ATOMIC_SEQ_CST) >= 0)
        return backend_fail_err;
    rocksdb_writeoptions_t *wo = sync ? b->wo_sync : b->wo_nosync;
    /* every sequence up to `before` is in the WAL ahead of this batch, so
     * this batch's fsync makes them durable too (see Watermark) */
    uint64_t before = sync && b->wm_fd >= 0 ? rocksdb_get_latest_sequence_number(b->db) : 0;
    if (wb->indexed)
        rocksdb_write_writebatch_wi(b->db, wo, wb->wi, &err);
    else
        rocksdb_write(b->db, wo, wb->wb, &err);
    if (err)
        return conv_err(err);
    if (sync && b->wm_fd >= 0)
        wm_write(b, before + (uint64_t)backend_batch_count(wb));
    return KV_OK;
}
