/*
 * log.c — see log.h.  Formatting is separate from writing (log_format is
 * pure) so the line layout is unit-tested without capturing stderr.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest message written; longer messages are cut (log lines are for
 * humans and grep, not for dumping payloads). */
#define LOG_LINE_MAX 2048
/* Room for what log_format puts around the message: the timestamp (24),
 * the level (5), the component (a short word) and separators. */
#define LOG_PREFIX_MAX 128
/* The shortest buffer log_format writes into: "...\n" and a NUL, with
 * room to spare. */
#define LOG_FORMAT_MIN_CAP 8

static _Atomic int log_threshold = LOG_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};
#define LOG_LEVEL_COUNT ((int)(sizeof log_names / sizeof log_names[0]))

void log_set_level(log_level l) { atomic_store_explicit(&log_threshold, (int)l, memory_order_relaxed); }
log_level log_get_level(void)
{
    return (log_level)atomic_load_explicit(&log_threshold, memory_order_relaxed);
}
bool log_enabled(log_level l)
{
    return (int)l >= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

const char *log_level_name(log_level l)
{
    return (unsigned)l < (unsigned)LOG_LEVEL_COUNT ? log_names[l] : "?";
}

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i < LOG_LEVEL_COUNT; i++)
        if (strcmp(s, log_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

static int64_t log_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t log_format(char *out, size_t cap, int64_t unix_ms, log_level l, const char *component,
                  const char *msg)
{
    if (cap < LOG_FORMAT_MIN_CAP) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(unix_ms % 1000), log_level_name(l), component, msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap) {
        /* cut: keep the line a line */
        memcpy(out + cap - 5, "...\n", 5);
        return cap - 1;
    }
    return (size_t)n;
}

void log_printf(log_level l, const char *component, const char *fmt, ...)
{
    if (!log_enabled(l))
        return;
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + LOG_PREFIX_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = log_format(line, sizeof line, log_now_ms(), l, component, msg);
    /* one write: lines from several threads do not interleave */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* nowhere to report a failing stderr */
}

bool log_ratelimit_allow(log_ratelimit *rl, int64_t interval_ms, uint64_t *suppressed)
{
    int64_t now = log_now_ms();
    int64_t next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);
    if (now < next ||
        !atomic_compare_exchange_strong_explicit(&rl->next_ms, &next, now + interval_ms,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
        return false;
    }
    *suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
    return true;
}
