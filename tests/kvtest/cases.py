"""Differential cases: loading, expanding and running them.

A case file tests/diff/cases/<group>.json holds {"cases": [case, ...]}; a
case is {"name", "doc", "steps": [step, ...]} and a step is
    {"path": "/v3/kv/put", "body": <object | "raw string">,
     "method": "POST" (default), "headers": {...} (optional),
     "compare": "status" (optional: only the HTTP status must match, the
                body is a documented exception, see tests/e2e/test_exceptions.py)}
A case may carry "xfail": "reason" for a documented missing feature
(strict: once it passes, the mark must go).
A body given as a JSON string is sent byte for byte (malformed input); an
object is JSON-encoded; "raw_b64" instead of "body" sends arbitrary bytes
(invalid UTF-8, NUL); "chunk": n sends the body chunked in n-byte pieces.  Inside objects, {"$b": "text"} stands for the
base64 of the UTF-8 text (so cases stay readable), {"$brep": ["ab", n]}
for the base64 of "ab" repeated n times (big values) and {"$repeat": [x, n]}
for a list of n copies of x.  A step without "body" sends no body.

Every case runs against a fresh server; every step's answer is recorded as
{"status": int, "content_type": str|None, "json": <normalised JSON>} or
{"status": int, "content_type": str|None, "text": str}.
"""
import base64
import glob
import json
import os

from .client import Client
from .norm import normalise

DIFF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "diff")
CASES_DIR = os.path.join(DIFF_DIR, "cases")
GOLDEN_DIR = os.path.join(DIFF_DIR, "golden")


def expand(x):
    if isinstance(x, dict):
        if set(x) == {"$b"}:
            return base64.b64encode(x["$b"].encode("utf-8")).decode()
        if set(x) == {"$brep"}:
            text, n = x["$brep"]
            return base64.b64encode((text * n).encode("utf-8")).decode()
        if set(x) == {"$repeat"}:
            item, n = x["$repeat"]
            return [expand(item) for _ in range(n)]
        return {k: expand(v) for k, v in x.items()}
    if isinstance(x, list):
        return [expand(v) for v in x]
    return x


def load_cases():
    """[(group, case)] in file order; names are unique across files."""
    out, seen = [], set()
    for path in sorted(glob.glob(os.path.join(CASES_DIR, "*.json"))):
        group = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            data = json.load(f)
        for case in data["cases"]:
            name = case["name"]
            assert name not in seen, "duplicate case name %s" % name
            seen.add(name)
            assert case["steps"], name
            for st in case["steps"]:
                assert st["path"].startswith("/"), (name, st)
                assert set(st) <= {"path", "body", "raw_b64", "method", "headers", "note", "compare", "chunk"}, (name, st)
                assert st.get("compare", "all") in ("all", "status"), (name, st)
            out.append((group, case))
    return out


def step_request(step):
    """(method, path, body-bytes-or-None, headers) for one step."""
    method = step.get("method", "POST")
    body = step.get("body", None)
    if "raw_b64" in step:
        data = base64.b64decode(step["raw_b64"])
    elif body is None and "body" not in step:
        data = None
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(expand(body)).encode()
    headers = dict(step.get("headers", {}))
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    return method, step["path"], data, headers


def same(step, a, b):
    """Do answers a (reference) and b (kvgate) agree for this step?"""
    if step.get("compare") == "status":
        return a.get("status") == b.get("status")
    return a == b


def answer(resp):
    """What is compared: status, Content-Type, and the JSON (normalised) or text body."""
    out = {"status": resp.status, "content_type": resp.headers.get("content-type")}
    if resp.is_json:
        out["json"] = normalise(resp.body)
    else:
        out["text"] = resp.raw.decode("utf-8", "replace")
    return out


def run_case(port, case, timeout=15.0):
    """Runs every step against 127.0.0.1:port; returns the list of answers.
    A dropped connection is recorded as {"status": 0, "error": "..."}."""
    c = Client("127.0.0.1", port, timeout)
    out = []
    for step in case["steps"]:
        method, path, data, headers = step_request(step)
        try:
            r = c.request(method, path, data, headers, chunk=step.get("chunk", 0))
            out.append(answer(r))
        except Exception as e:  # connection reset, timeout: record, keep going
            out.append({"status": 0, "error": "%s: %s" % (type(e).__name__, e)})
    return out


def golden_path(name):
    return os.path.join(GOLDEN_DIR, name + ".json")


def load_golden(name):
    p = golden_path(name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def describe_step(step):
    method, path, data, _ = step_request(step)
    s = "%s %s" % (method, path)
    if data is not None:
        d = data.decode("utf-8", "replace")
        s += " " + (d if len(d) <= 400 else d[:400] + "...(%d bytes)" % len(d))
    return s
