/*
 * store_crash.c — kill -9 at an arbitrary moment: a child process writes
 * from several threads and reports every acknowledged revision through a
 * pipe; the parent kills it mid-stream, reopens the store and checks that
 * every acknowledged write is there, the revision counter covers them, the
 * history has no holes, and a compaction recorded before the crash holds.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "store_testutil.h"
#include "testhelp.h"

#define WRITERS 4
static kvstore *S;
static int ackfd;
static pthread_mutex_t ackmu = PTHREAD_MUTEX_INITIALIZER;

static void *writer(void *p)
{
    long id = (long)p;
    for (int i = 0;; i++) {
        char k[32];
        snprintf(k, sizeof k, "w%ld/%d", id, i);
        int64_t rev = tu_put(S, k, k);
        if (rev < 0)
            _exit(3);
        char line[64];
        int n = snprintf(line, sizeof line, "%s %lld\n", k, (long long)rev);
        pthread_mutex_lock(&ackmu);
        if (write(ackfd, line, (size_t)n) != n)
            _exit(4);
        pthread_mutex_unlock(&ackmu);
    }
    return NULL;
}

int main(void)
{
    char *dir = tu_tmpdir();
    for (int round = 0; round < 3; round++) {
        TEST("acknowledged writes survive kill -9") {
            int fds[2];
            if (pipe(fds) < 0)
                return 2;
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                ackfd = fds[1];
                S = tu_open(dir, NULL);
                if (round == 1 && kvstore_rev(S) > 10 && tu_compact(S, 10, false) < 0)
                    _exit(5);
                pthread_t th[WRITERS];
                for (long i = 0; i < WRITERS; i++)
                    pthread_create(&th[i], NULL, writer, (void *)i);
                for (;;)
                    pause();
            }
            close(fds[1]);
            FILE *f = fdopen(fds[0], "r");
            char key[64];
            long long rev;
            int acked = 0;
            char (*keys)[64] = calloc(100000, sizeof *keys);
            long long *revs = calloc(100000, sizeof *revs);
            long long maxrev = 0;
            int want = 200 + round * 150;
            while (acked < 100000 && fscanf(f, "%31s %lld", key, &rev) == 2) {
                snprintf(keys[acked], sizeof keys[acked], "%s", key);
                revs[acked++] = rev;
                if (rev > maxrev)
                    maxrev = rev;
                if (acked == want)
                    kill(pid, SIGKILL);
            }
            int st;
            waitpid(pid, &st, 0);
            fclose(f);
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            S = tu_open(dir, NULL);
            CHECK(kvstore_rev(S) >= maxrev);
            int missing = 0;
            for (int i = 0; i < acked; i++) {
                kv_range_resp r;
                if (tu_range(S, keys[i], NULL, 0, &r) != KV_OK || r.n_kvs != 1 ||
                    r.kvs[0].mod_revision != revs[i])
                    missing++;
                else
                    kv_range_resp_free(&r);
            }
            CHECK_EQ_INT(missing, 0);
            if (round >= 1)
                CHECK_EQ_INT(kvstore_compact_rev(S), 10);
            /* history: one put per revision, no holes, above the compaction */
            int64_t from = kvstore_compact_rev(S) ? kvstore_compact_rev(S) + 1 : 2, cur = kvstore_rev(S);
            kv_event *evs;
            size_t n;
            int64_t next;
            CHECK(kvstore_read_events(S, from, cur, 0, &evs, &n, &next) == KV_OK);
            CHECK_EQ_INT((int64_t)n, cur - from + 1);
            int holes = 0;
            for (size_t i = 0; i < n; i++)
                if (evs[i].kv.mod_revision != from + (int64_t)i)
                    holes++;
            CHECK_EQ_INT(holes, 0);
            kv_events_free(evs, n);
            printf("round %d: %d acknowledged, store at %lld\n", round, acked, (long long)cur);
            kvstore_close(S);
            free(keys);
            free(revs);
        }
    }
    tu_rmrf(dir);
    free(dir);
    return TEST_REPORT();
}
