"""kvtest: helpers for kvgate's Python suites (diff, e2e, crash).

Only the standard library.  Modules:
  client  -- a tiny HTTP/JSON client (http.client), base64 helpers
  procs   -- start/stop/restart/kill kvgate and a real etcd 3.4 on free loopback ports
  norm    -- normalise etcd/kvgate JSON answers for comparison
  cases   -- differential cases: load, expand, run, golden files
  rawhttp -- raw-socket HTTP: requests in pieces, early answers, pipelining
"""
from .client import Client, Resp, b64, unb64  # noqa: F401
from .procs import (Kvgate, Etcd, free_port, kvgate_bin, etcd_bin, kill_all_servers,  # noqa: F401
                    ServerError, REPO, mktemp, LISTEN_LINE)
from .norm import normalise  # noqa: F401
