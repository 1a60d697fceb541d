"""CORS (a deliberate difference from etcd 3.4, which answers every
OPTIONS with Access-Control-Allow-Origin: * and has no per-origin list).
kvgate's documented answers (openapi.yaml, PreflightAllowed /
PreflightForbidden / PreflightNoOrigin, README "Differences from etcd"):
  - allowed origin: 200, no body, ACAO = the origin, Vary: Origin,
    Access-Control-Allow-Methods with POST, Access-Control-Allow-Headers,
    Access-Control-Max-Age: 600;
  - origin not allowed: 403, etcd-style JSON error with code 7, no ACAO;
  - no Origin header: 204 with an Allow header;
  - --cors-origins '*': ACAO '*'.
"""
import pytest

from kvtest import b64

A, B, EVIL = "http://a.example", "http://b.example", "http://evil.example"
KV_PATHS = ["/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn", "/v3/kv/compaction"]


@pytest.fixture
def cors_kvgate(kvgate_factory):
    return kvgate_factory(extra_args=["--cors-origins", "%s,%s" % (A, B)])


def preflight(c, path, origin, method="POST", headers="content-type"):
    h = {"Access-Control-Request-Method": method}
    if origin is not None:
        h["Origin"] = origin
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return c.request("OPTIONS", path, None, h)


@pytest.mark.parametrize("path", KV_PATHS)
@pytest.mark.parametrize("origin", [A, B])
def test_preflight_allowed_origin(cors_kvgate, path, origin):
    r = preflight(cors_kvgate.client(), path, origin)
    assert r.status == 200, r
    assert r.raw == b"", r.raw
    assert r.headers.get("access-control-allow-origin") == origin, r.headers
    assert "origin" in r.headers.get("vary", "").lower(), r.headers
    assert "POST" in r.headers.get("access-control-allow-methods", "").upper(), r.headers
    assert "content-type" in r.headers.get("access-control-allow-headers", "").lower(), r.headers
    assert r.headers.get("access-control-max-age") == "600", r.headers  # README


@pytest.mark.parametrize("origin", [EVIL, "http://a.example.evil", "https://a.example", "null"])
def test_preflight_other_origin_gets_no_acao(cors_kvgate, origin):
    r = preflight(cors_kvgate.client(), "/v3/kv/range", origin)
    assert "access-control-allow-origin" not in r.headers, r.headers
    assert r.status == 403, r
    body = r.json()
    assert body["code"] == 7 and body["error"] == body["message"] and body["error"], body


def test_preflight_without_origin(cors_kvgate):
    r = preflight(cors_kvgate.client(), "/v3/kv/put", None)
    assert r.status == 204, r
    assert "POST" in r.headers.get("allow", "").upper(), r.headers
    assert "access-control-allow-origin" not in r.headers, r.headers


def test_actual_request_from_allowed_and_other_origin(cors_kvgate):
    c = cors_kvgate.client()
    r = c.post("/v3/kv/put", {"key": b64("a"), "value": b64("1")}, {"Origin": A})
    assert r.status == 200, r
    assert r.headers.get("access-control-allow-origin") == A, r.headers
    r = c.post("/v3/kv/range", {"key": b64("a")}, {"Origin": EVIL})
    assert "access-control-allow-origin" not in r.headers, r.headers
    r = c.post("/v3/kv/range", {"key": b64("a")})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers, r.headers


def test_wildcard(kvgate_factory):
    k = kvgate_factory(extra_args=["--cors-origins", "*"])
    r = preflight(k.client(), "/v3/kv/txn", EVIL)
    assert r.status == 200, r
    assert r.headers.get("access-control-allow-origin") == "*", r.headers


def test_preflight_changes_nothing(cors_kvgate):
    c = cors_kvgate.client()
    c.put("a", "1")
    for p in KV_PATHS:
        preflight(c, p, A)
        preflight(c, p, EVIL)
    assert c.revision() == 2
