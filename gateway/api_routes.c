/* api_routes.c — see api_routes.h. */
#include "api_routes.h"

#include <stdio.h>

int gw_route_api(gw_server *s, gw_api_versions v, const gw_api_route *eps, size_t n, void *ctx)
{
    static const char *const prefixes[] = {"/v3", "/v3beta", "/v3alpha"};
    size_t n_prefixes = v == GW_API_ALL ? 3 : 2;
    char path[96];
    for (size_t p = 0; p < n_prefixes; p++) {
        for (size_t i = 0; i < n; i++) {
            if ((size_t)snprintf(path, sizeof path, "%s%s", prefixes[p], eps[i].suffix) >= sizeof path ||
                gw_server_route(s, "POST", path, eps[i].fn, ctx) != 0)
                return -1;
        }
    }
    return 0;
}
