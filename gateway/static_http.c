/*
 * static_http.c — web/ and openapi.yaml, embedded or (--web-dir) from disk;
 * see static_http.h.
 */
#include "static_http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest file served from --web-dir (embedded files have no limit). */
static const off_t sh_max_disk_file = 64 * 1024 * 1024;

typedef struct sh_route {
    char *path;                 /* URL path routed ("/" for index.html) */
    char *file;                 /* web path ("/index.html"), for the disk and the type */
    const static_asset *asset;  /* embedded, or NULL */
    struct static_http *sh;
} sh_route;

struct static_http {
    char *web_dir;              /* NULL: embedded only */
    sh_route *routes;
    size_t n, cap;
};

static const struct {
    const char *ext, *type;
} sh_types[] = {
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".html", "text/html; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".yaml", "application/yaml"},
};

const char *static_content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    for (size_t i = 0; i < sizeof sh_types / sizeof sh_types[0]; i++)
        if (strcmp(dot, sh_types[i].ext) == 0)
            return sh_types[i].type;
    return NULL;
}

static bool is_web_file(const char *name)
{
    const char *t = static_content_type(name);
    return t && strcmp(t, "application/yaml") != 0 && name[0] != '.';
}

static void common_headers(gw_req *r, const char *etag)
{
    gw_reply_add_header(r, "ETag", etag);
    gw_reply_add_header(r, "Cache-Control", "no-cache");
    gw_reply_add_header(r, "X-Content-Type-Options", "nosniff");
}

/* If-None-Match: a list of entity tags, or "*"; weak comparison. */
static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    const char *e = etag[0] == 'W' && etag[1] == '/' ? etag + 2 : etag;
    size_t el = strlen(e);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *end = q;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - p) == el && memcmp(p, e, el) == 0)
            return true;
        p = q;
    }
    return false;
}

static void answer(gw_req *r, const char *type, const char *etag, const unsigned char *data,
                   size_t len)
{
    if (etag_matches(gw_req_header(r, "If-None-Match"), etag)) {
        gw_reply(r, 304, NULL, NULL, 0);
        common_headers(r, etag);
        return;
    }
    char *body = NULL;
    if (len) {
        body = malloc(len);
        if (!body) {
            gw_reply_error(r, 500, 13, "kvgate: out of memory");
            return;
        }
        memcpy(body, data, len);
    }
    gw_reply(r, 200, type, body, len);
    common_headers(r, etag);
}

/* --web-dir: the file as it is now on disk.  0, or -1 when it is not there
 * (the caller falls back to the embedded copy). */
static int answer_from_disk(gw_req *r, const sh_route *rt, const char *type)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s%s", rt->sh->web_dir, rt->file);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > sh_max_disk_file) {
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        gw_reply_error(r, 500, 13, "kvgate: out of memory");
        return 0;
    }
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    char etag[64];
    snprintf(etag, sizeof etag, "W/\"%zx-%llx-%lx\"", got, (unsigned long long)st.st_mtim.tv_sec,
             (unsigned long)st.st_mtim.tv_nsec);
    answer(r, type, etag, buf, got);
    free(buf);
    return 0;
}

static void h_static(gw_req *r, void *ctx)
{
    const sh_route *rt = ctx;
    const char *type = static_content_type(rt->file);
    if (rt->sh->web_dir && strcmp(rt->file, "/openapi.yaml") != 0 &&
        answer_from_disk(r, rt, type) == 0)
        return;
    if (!rt->asset) {
        char *p = strdup("404 page not found\n");
        gw_reply(r, 404, "text/plain; charset=utf-8", p, p ? strlen(p) : 0);
        return;
    }
    answer(r, type, rt->asset->etag, rt->asset->data, rt->asset->len);
}

static sh_route *find(static_http *sh, const char *file)
{
    for (size_t i = 0; i < sh->n; i++)
        if (strcmp(sh->routes[i].file, file) == 0)
            return &sh->routes[i];
    return NULL;
}

static int add(static_http *sh, const char *file, const static_asset *a)
{
    sh_route *have = find(sh, file);
    if (have) {
        if (a)
            have->asset = a;
        return 0;
    }
    if (sh->n == sh->cap) {
        size_t cap = sh->cap ? sh->cap * 2 : 16;
        sh_route *nr = realloc(sh->routes, cap * sizeof *nr);
        if (!nr)
            return -1;
        sh->routes = nr;
        sh->cap = cap;
    }
    sh_route *rt = &sh->routes[sh->n];
    rt->file = strdup(file);
    rt->path = strdup(strcmp(file, "/index.html") == 0 ? "/" : file);
    rt->asset = a;
    rt->sh = sh;
    if (!rt->file || !rt->path) {
        free(rt->file);
        free(rt->path);
        return -1;
    }
    sh->n++;
    return 0;
}

/* Files in web_dir (and one directory down) that are served. */
static int scan(static_http *sh, const char *rel, int depth)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s", sh->web_dir, rel);
    DIR *d = opendir(dir);
    if (!d)
        return depth == 0 ? -1 : 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '%') || strchr(e->d_name, '?'))
            continue;
        char sub[4096];
        int n = snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
        if (n < 0 || (size_t)n >= sizeof sub)
            continue;
        char full[8192];
        snprintf(full, sizeof full, "%s%s", sh->web_dir, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth == 0 && strcmp(e->d_name, "node_modules") != 0)
                rc = scan(sh, sub, depth + 1);
        } else if (S_ISREG(st.st_mode) && is_web_file(e->d_name)) {
            rc = add(sh, sub, NULL);
        }
    }
    closedir(d);
    return rc;
}

void static_http_free(static_http *sh)
{
    if (!sh)
        return;
    for (size_t i = 0; i < sh->n; i++) {
        free(sh->routes[i].path);
        free(sh->routes[i].file);
    }
    free(sh->routes);
    free(sh->web_dir);
    free(sh);
}

static_http *static_http_register(gw_server *s, const char *web_dir, char **errmsg)
{
    static_http *sh = calloc(1, sizeof *sh);
    if (!sh)
        goto nomem;
    for (size_t i = 0; i < static_assets_count; i++)
        if (add(sh, static_assets[i].path, &static_assets[i]) < 0)
            goto nomem;
    if (web_dir) {
        size_t l = strlen(web_dir);
        while (l > 1 && web_dir[l - 1] == '/')
            l--;
        sh->web_dir = strndup(web_dir, l);
        if (!sh->web_dir)
            goto nomem;
        if (scan(sh, "", 0) < 0) {
            if (errmsg && asprintf(errmsg, "--web-dir %s: %s", web_dir, strerror(errno)) < 0)
                *errmsg = NULL;
            static_http_free(sh);
            return NULL;
        }
    }
    /* The routes array is final now: handlers get pointers into it. */
    for (size_t i = 0; i < sh->n; i++) {
        if (gw_server_route(s, "GET", sh->routes[i].path, h_static, &sh->routes[i]) != 0 ||
            gw_server_route(s, "HEAD", sh->routes[i].path, h_static, &sh->routes[i]) != 0)
            goto nomem;
    }
    return sh;
nomem:
    static_http_free(sh);
    if (errmsg)
        *errmsg = strdup("out of memory");
    return NULL;
}
