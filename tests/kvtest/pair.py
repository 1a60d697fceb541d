"""A fresh etcd 3.4 and a fresh kvgate side by side, for the differential
scenarios that case files cannot hold (tests/diff/test_*_diff.py).

  with servers_pair(kvgate_binary) as pair: ...   # [etcd, kvgate], ready
  both(pair, fn)    # fn(server) on both at once, in threads; [etcd, kvgate]
"""
import contextlib
import threading

from .procs import Etcd, Kvgate


@contextlib.contextmanager
def servers_pair(kvgate_binary):
    servers = [Etcd(), Kvgate(binary=kvgate_binary)]
    try:
        for s in servers:
            s.spawn()
        for s in servers:
            s.wait_ready()
        yield servers
    finally:
        for s in servers:
            s.cleanup()


def both(pair, fn, join_s=90):
    """Runs fn(server) on etcd and kvgate at once; returns [etcd, kvgate].
    The first exception raised on either side is raised again, naming it."""
    out = [None, None]
    errs = []

    def go(i):
        try:
            out[i] = fn(pair[i])
        except BaseException as e:  # noqa: B902 - re-raised below
            errs.append((pair[i].name, e))

    ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(join_s)
    if errs:
        raise AssertionError("%s: %r" % errs[0]) from errs[0][1]
    return out
