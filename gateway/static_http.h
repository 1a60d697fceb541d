/*
 * static_http.h — the files kvgate serves itself: web/ (the dashboard and
 * the JavaScript client web/kvgate.js) and openapi.yaml.
 *
 * The files are embedded in the binary at build time (gateway/gen_assets.sh
 * writes $(BUILD)/gen/assets.c, see the Makefile), so bin/kvgate needs no
 * files beside it and no network:
 *
 *   GET|HEAD /              web/index.html (404 while there is none)
 *   GET|HEAD /NAME          web/NAME for *.js, *.css, *.html, *.svg (also one
 *                           directory down: /DIR/NAME)
 *   GET|HEAD /openapi.yaml  openapi.yaml (application/yaml)
 *
 * Answers carry the Content-Type of the extension, an ETag (a hash of the
 * content) and Cache-Control: no-cache, so browsers revalidate and get 304
 * for an If-None-Match that matches.  Other methods: 405 with Allow: GET,
 * HEAD (the core's answer for a known path).
 *
 * Development: with a web_dir (kvgate --web-dir DIR) web files are read from
 * DIR on every request (edit, reload); the routes are the embedded files
 * plus those in DIR when kvgate starts.  openapi.yaml stays embedded.
 */
#ifndef KVGATE_STATIC_HTTP_H
#define KVGATE_STATIC_HTTP_H

#include <stddef.h>

#include "http.h"

/* One embedded file (generated table, $(BUILD)/gen/assets.c). */
typedef struct static_asset {
    const char *path;            /* URL path: "/kvgate.js", "/openapi.yaml" */
    const unsigned char *data;   /* len bytes (NUL-terminated beyond) */
    size_t len;
    const char *etag;            /* "\"<hex>\"" */
} static_asset;

extern const static_asset static_assets[];
extern const size_t static_assets_count;

typedef struct static_http static_http;

/* Registers the routes.  web_dir NULL: embedded files only.  Free the
 * result with static_http_free() after the server is freed.  NULL on ENOMEM
 * or when web_dir cannot be read (*errmsg set, malloc'd). */
static_http *static_http_register(gw_server *s, const char *web_dir, char **errmsg);
void static_http_free(static_http *sh);

/* "text/javascript; charset=utf-8" for "x.js" etc.; NULL if not served. */
const char *static_content_type(const char *path);

#endif
