/*
 * store_open.c — kvstore_open on good and bad data dirs: created when
 * missing, refused (with a clear message) when not a directory, not
 * writable, locked by another opener, holding foreign files, or corrupt.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store_testutil.h"
#include "testhelp.h"

static char *open_err(const char *dir)
{
    char *err = NULL;
    kvstore *s = kvstore_open(dir, NULL, &err);
    if (s) {
        kvstore_close(s);
        return NULL;
    }
    return err;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char *base = tu_tmpdir();
    char path[512];

    TEST("a missing dir is created, nested too; defaults apply") {
        snprintf(path, sizeof path, "%s/a/b/data", base);
        char *err = NULL;
        kvstore *s = kvstore_open(path, NULL, &err);
        CHECK(s != NULL && err == NULL);
        if (s) {
            CHECK_EQ_INT(kvstore_rev(s), 1);
            CHECK_EQ_INT(tu_put(s, "k", "v"), 2);
            kvstore_close(s);
        }
        s = kvstore_open(path, NULL, &err);
        CHECK(s && kvstore_rev(s) == 2);
        kvstore_close(s);
    }
    TEST("the same dir opened twice: in use") {
        snprintf(path, sizeof path, "%s/a/b/data", base);
        kvstore *s = tu_open(path, NULL);
        char *err = open_err(path);
        CHECK(err && strstr(err, "in use by another kvgate"));
        if (err)
            printf("locked: %s\n", err);
        free(err);
        kvstore_close(s);
    }
    TEST("the same dir held by another process: in use") {
        snprintf(path, sizeof path, "%s/a/b/data", base);
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            kvstore *s = tu_open(path, NULL);
            char c = 'x';
            if (write(fds[1], &c, 1) != 1)
                _exit(1);
            for (;;)
                pause(); /* until killed */
            kvstore_close(s);
        }
        char c;
        CHECK(read(fds[0], &c, 1) == 1);
        char *err = open_err(path);
        CHECK(err && strstr(err, "in use by another kvgate"));
        if (err)
            printf("locked by another process: %s\n", err);
        free(err);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fds[0]);
        close(fds[1]);
    }
    TEST("not a directory") {
        snprintf(path, sizeof path, "%s/file", base);
        write_file(path, "x");
        char *err = open_err(path);
        CHECK(err && strstr(err, "not a directory"));
        free(err);
    }
    TEST("a dir with foreign files is refused and left alone") {
        snprintf(path, sizeof path, "%s/foreign", base);
        mkdir(path, 0700);
        char f[600];
        snprintf(f, sizeof f, "%s/notes.txt", path);
        write_file(f, "mine");
        char *err = open_err(path);
        CHECK(err && strstr(err, "holds no kvgate store"));
        free(err);
        snprintf(f, sizeof f, "%s/CURRENT", path);
        struct stat st;
        CHECK(stat(f, &st) < 0);
    }
    TEST("a corrupt store is refused, not recreated") {
        snprintf(path, sizeof path, "%s/corrupt", base);
        kvstore *s = tu_open(path, NULL);
        tu_put(s, "k", "v");
        kvstore_close(s);
        char f[600];
        snprintf(f, sizeof f, "%s/CURRENT", path);
        write_file(f, "MANIFEST-999999\n");
        char *err = open_err(path);
        CHECK(err != NULL);
        if (err)
            printf("corrupt: %s\n", err);
        free(err);
        err = open_err(path); /* still refused: nothing was created over it */
        CHECK(err != NULL);
        free(err);
    }
    TEST("a dir without permission") {
        if (geteuid() == 0) {
            printf("skipped (root)\n");
        } else {
            snprintf(path, sizeof path, "%s/noperm", base);
            mkdir(path, 0500);
            char *err = open_err(path);
            CHECK(err && strstr(err, "not usable"));
            free(err);
            chmod(path, 0700);
        }
    }
    tu_rmrf(base);
    free(base);
    return TEST_REPORT();
}
