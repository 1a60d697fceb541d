/*
 * log.h — kvgate's operational log: one line per event worth knowing, on
 * stderr, in the form
 *
 *   2026-11-21T01:02:03.456Z info gateway: listening url=http://127.0.0.1:2379
 *
 * (UTC timestamp with milliseconds, level, component, message, then
 * key=value pairs written by the caller).  stdout is never used: it carries
 * only the readiness line printed by main.c.
 *
 * Why it lives in store/: it is the lowest layer.  The store logs too
 * (compaction, lease expiry, I/O errors) and must not include gateway
 * headers, so the logger sits where every layer above can include it
 * without an upward include.  It depends on libc only.
 *
 * Threads: any thread.  Each line is formatted into a local buffer and
 * written with one write(2), so lines from different threads never mix.
 * The level is a relaxed atomic: log_enabled() is one load, so a disabled
 * debug line costs nothing but that.
 */
#ifndef KVGATE_LOG_H
#define KVGATE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
} log_level;

/* The threshold: lines below it are dropped.  Default LOG_INFO. */
void log_set_level(log_level l);
log_level log_get_level(void);
bool log_enabled(log_level l);
/* "debug" | "info" | "warn" | "error" -> 0 and *out; else -1. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level l);

/* One line: `component` e.g. "gateway", "store", "watch", "lease";
 * fmt is the message followed by " key=value" pairs.  Longer than 2 KiB:
 * cut, ending in "...". */
void log_printf(log_level l, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a line into out (NUL-terminated, '\n' included) for time
 * `unix_ms`; returns its length.  Pure: the unit tests check the format. */
size_t log_format(char *out, size_t cap, int64_t unix_ms, log_level l, const char *component,
                  const char *msg);

/* Rate limit for repetitive events (slow consumers, lease expiry batches):
 * at most one line per `interval_ms`; the events suppressed in between are
 * counted and reported by the next line that passes (*suppressed).
 * Zero-initialise (LOG_RATELIMIT_INIT). */
typedef struct log_ratelimit {
    _Atomic int64_t next_ms;
    _Atomic uint64_t suppressed;
} log_ratelimit;
#define LOG_RATELIMIT_INIT {0, 0}
/* true: log now, with *suppressed events skipped since the last line. */
bool log_ratelimit_allow(log_ratelimit *rl, int64_t interval_ms, uint64_t *suppressed);

#endif
