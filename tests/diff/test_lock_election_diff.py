"""Differential tests of etcd 3.4's v3lock and v3election gateways
(/v3/lock/*, /v3/election/*): each scenario runs on a fresh etcd 3.4.23 and
a fresh kvgate at once and the answers (status, Content-Type, JSON without
cluster_id/member_id/raft_term) must be equal.

Leases have fixed IDs so keys (name/<lease hex>) and revisions are
deterministic; lease 0 (a new 60 s lease, random in etcd) is compared by
shape.  Blocking calls (a contended lock, a campaign behind a leader) run
in threads with timeouts.
"""
import base64
import json
import re
import signal
import socket
import threading
import time

import pytest

from kvtest import Client, b64, normalise
from kvtest.pair import both
from kvtest.cases import answer



def ans(s, path, body, headers=None, timeout=10.0):
    c = Client("127.0.0.1", s.port, timeout)
    if isinstance(body, str):
        return answer(c.request("POST", path, body.encode(), headers or {}))
    return answer(c.post(path, body, headers=headers))


class Bg:
    """A request in a thread: .done(), .result (an answer), .join(t)."""

    def __init__(self, s, path, body, timeout=20.0):
        self.result = None
        self.error = None

        def go():
            try:
                self.result = ans(s, path, body, timeout=timeout)
            except Exception as e:  # noqa: BLE001 - recorded
                self.error = e
        self.t = threading.Thread(target=go, daemon=True)
        self.t.start()

    def done(self):
        return not self.t.is_alive()

    def join(self, timeout=10.0):
        self.t.join(timeout)
        assert not self.t.is_alive(), "still blocked"
        if self.error:
            raise self.error
        return self.result


def keys(s, prefix):
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    r = Client("127.0.0.1", s.port).post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end),
                                                          "keys_only": True}).body
    return [(base64.b64decode(kv["key"]).decode(), kv.get("lease")) for kv in r.get("kvs", [])]


def wait_for(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def grant(s, *ids, ttl=600):
    for i in ids:
        assert ans(s, "/v3/lease/grant", {"TTL": ttl, "ID": i})["status"] == 200


# ---------------------------------------------------------------- unary answers

LEADER = {"name": b64("e"), "key": b64("e/64"), "rev": "6", "lease": "100"}

SEQ = [
    ("/v3/lock/lock", {"name": b64("my"), "lease": "100"}),
    ("/v3/kv/range", {"key": b64("my/"), "range_end": b64("my0")}),
    ("/v3/lock/lock", {"name": b64("my"), "lease": "100"}),            # already the owner
    ("/v3/lock/unlock", {"key": b64("my/64")}),
    ("/v3/lock/unlock", {"key": b64("my/64")}),                        # gone: same revision
    ("/v3/lock/unlock", {"key": b64("nothing")}),
    ("/v3/lock/lock", {"name": b64("my"), "lease": "999"}),            # no such lease
    ("/v3/lock/lock", {"name": b64("my"), "lease": "-1"}),
    ("/v3/lock/unlock", {}),                                           # key is not provided
    ("/v3beta/lock/lock", {"name": b64("b"), "lease": "100"}),
    ("/v3beta/lock/unlock", {"key": b64("b/64")}),
    # election
    ("/v3/election/leader", {"name": b64("e")}),                       # no leader
    ("/v3/election/campaign", {"name": b64("e"), "lease": "100", "value": b64("v")}),
    ("/v3/election/campaign", {"name": b64("e"), "lease": "100", "value": b64("v")}),
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/campaign", {"name": b64("e"), "lease": "100", "value": b64("x")}),  # proclaims
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/proclaim", {"leader": dict(LEADER, rev="7"), "value": b64("w")}),  # not leader
    ("/v3/election/proclaim", {"leader": LEADER, "value": b64("w")}),
    ("/v3/election/proclaim", {"leader": LEADER}),                     # empty value
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3beta/election/leader", {"name": b64("e")}),
    ("/v3/election/resign", {"leader": dict(LEADER, rev="7")}),        # not leader: still 200
    ("/v3/election/resign", {"leader": LEADER}),
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/campaign", {"name": b64("e"), "lease": "999", "value": b64("v")}),
    ("/v3/election/proclaim", {}),
    ("/v3/election/resign", {}),
    ("/v3/election/proclaim", {"leader": None}),
    ("/v3/election/proclaim", {"leader": {"key": b64("e/64"), "lease": "100"}}),  # rev 0: creates
    ("/v3/election/leader", {"name": b64("e")}),
    ("/v3/election/resign", {"leader": {"key": b64("e/64"), "lease": "100", "rev": "16"}}),
    ("/v3/election/resign", {"leader": {"lease": "100", "rev": "5"}}),  # key is not provided
    ("/v3/election/leader", {}),
    ("/v3/election/campaign", {"lease": "100"}),                       # name "": key "/64"
    ("/v3/election/leader", {}),
    ("/v3/lock/lock", {"lease": "100"}),                               # the campaign's key "/64"
    ("/v3/lock/unlock", {"key": b64("/64")}),
    ("/v3/election/leader", {}),
]


@pytest.mark.timeout(90)
def test_unary_sequence(pair):
    def run(s):
        grant(s, 100, 101)
        return [ans(s, p, b) for p, b in SEQ]
    e, k = both(pair, run)
    for (path, body), w, g in zip(SEQ, e, k):
        assert g == w, (path, body, g, w)


BAD = [
    ("/v3/lock/lock", "x"),
    ("/v3/lock/lock", "[]"),
    ("/v3/lock/lock", '{"name":1}'),
    ("/v3/lock/lock", '{"name":"bA==","lease":"x"}'),
    ("/v3/lock/lock", '{"name":"bA==","lease":1.5}'),
    ("/v3/lock/lock", '{"name":"bA","lease":"100"}'),
    ("/v3/lock/lock", '{"name":"bA==","lease":"100"} trailing'),
    ("/v3/lock/unlock", '{"key":true}'),
    ("/v3/lock/unlock", '"s"'),
    ("/v3/election/campaign", '{"name":"ZQ==","lease":"100","value":5}'),
    ("/v3/election/campaign", '{"value":5,"name":7}'),
    ("/v3/election/proclaim", '{"leader":[]}'),
    ("/v3/election/proclaim", '{"leader":{"rev":"x"}}'),
    ("/v3/election/proclaim", '{"leader":{"name":1},"value":2}'),
    ("/v3/election/resign", '{"leader":"x"}'),
    ("/v3/election/leader", "x"),
    ("/v3/election/leader", '{"name":[]}'),
    ("/v3/election/observe", "x"),
    ("/v3/election/observe", "[]"),
    ("/v3/election/observe", '{"name":{}}'),
]


@pytest.mark.timeout(60)
def test_bad_bodies(pair):
    def run(s):
        grant(s, 100)
        return [ans(s, p, b) for p, b in BAD]
    e, k = both(pair, run)
    for (path, body), w, g in zip(BAD, e, k):
        assert g == w, (path, body, g, w)


AUTH = [
    ("/v3/lock/lock", {"name": b64("a"), "lease": "100"}),
    ("/v3/lock/lock", {"name": b64("a")}),
    ("/v3/lock/unlock", {"key": b64("a/64")}),
    ("/v3/lock/unlock", {}),
    ("/v3/election/campaign", {"name": b64("a"), "lease": "100"}),
    ("/v3/election/leader", {"name": b64("a")}),
    ("/v3/election/proclaim", {"leader": LEADER}),
    ("/v3/election/resign", {"leader": {"lease": "100"}}),
    ("/v3/election/resign", {}),
    ("/v3/lock/lock", "x"),
]


@pytest.mark.timeout(60)
def test_authorization_header(pair):
    """etcd without auth refuses any token the gateway passes on; through
    the lock/election servers that is code 2."""
    def run(s):
        grant(s, 100)
        return [ans(s, p, b, headers={"Authorization": "t"}) for p, b in AUTH]
    e, k = both(pair, run)
    for (path, body), w, g in zip(AUTH, e, k):
        assert g == w, (path, body, g, w)


@pytest.mark.timeout(60)
def test_too_large(pair):
    big = {"name": b64("n" * 1600000), "lease": "100"}

    def run(s):
        grant(s, 100)
        return [ans(s, "/v3/lock/lock", big, timeout=30),
                ans(s, "/v3/lock/unlock", {"key": big["name"]}, timeout=30),
                ans(s, "/v3/election/campaign", dict(big, value=b64("v")), timeout=30)]
    e, k = both(pair, run)
    assert k == e


@pytest.mark.timeout(60)
def test_not_under_v3alpha(pair):
    """etcd 3.4 serves lock and election under /v3 and /v3beta only.  (Its
    404 body for an unknown /v3alpha path is Go's "404 page not found",
    kvgate's core answers "Not Found" for every unknown /v3* path: only the
    status is compared.)"""
    def run(s):
        return [ans(s, p, {"name": b64("c"), "lease": "100"})["status"]
                for p in ("/v3alpha/lock/lock", "/v3alpha/lock/unlock", "/v3alpha/election/leader",
                          "/v3alpha/election/campaign", "/v3alpha/election/observe")]
    e, k = both(pair, run)
    assert k == e == [404] * 5


# ---------------------------------------------------------------- lease 0

def shape(a):
    """An answer with the lease hex in keys and the lease IDs replaced."""
    txt = json.dumps(a, sort_keys=True)

    def key(m):
        try:
            raw = base64.b64decode(m.group(1), validate=True)
        except ValueError:
            return m.group(0)
        raw = re.sub(rb"/[0-9a-f]{8,16}$", b"/<lease>", raw)
        return '"%s"' % base64.b64encode(raw).decode()
    txt = re.sub(r'"([A-Za-z0-9+/=]{8,})"', key, txt)
    txt = re.sub(r'"lease": "\d{10,}"', '"lease": "<id>"', txt)
    return json.loads(txt)


@pytest.mark.timeout(60)
def test_lease_zero_is_a_new_60s_session(pair):
    """Lease 0 (concurrency.NewSession): a new lease of 60 s, not kept alive;
    proclaim and resign make one too, even when they then fail."""
    def run(s):
        c = Client("127.0.0.1", s.port)
        out = [shape(ans(s, "/v3/lock/lock", {"name": b64("z")}))]
        out.append(shape(ans(s, "/v3/election/campaign", {"name": b64("q"), "value": b64("v")})))
        out.append(shape(ans(s, "/v3/election/leader", {"name": b64("q")})))
        leases = [l["ID"] for l in c.post("/v3/lease/leases", {}).body.get("leases", [])]
        out.append(len(leases))
        ttls = sorted(c.post("/v3/lease/timetolive", {"ID": i}).body.get("grantedTTL")
                      for i in leases)
        out.append(ttls)
        owner = [l for k, l in keys(s, "z/")]
        out.append(owner[0] in leases)
        out.append(shape(ans(s, "/v3/election/proclaim", {"leader": {}})))
        out.append(shape(ans(s, "/v3/election/resign", {"leader": {"key": b64("x"), "rev": "1"}})))
        out.append(len(c.post("/v3/lease/leases", {}).body.get("leases", [])))
        return out
    e, k = both(pair, run)
    assert k == e


# ---------------------------------------------------------------- contention

def contended(s):
    grant(s, 100, 101)
    out = [ans(s, "/v3/lock/lock", {"name": b64("l"), "lease": "100"})]
    b = Bg(s, "/v3/lock/lock", {"name": b64("l"), "lease": "101"})
    time.sleep(0.6)
    out.append(b.done())                                   # still waiting
    out.append(keys(s, "l/"))
    out.append(ans(s, "/v3/kv/put", {"key": b64("l/zz"), "value": b64("x")}))  # younger: no effect
    time.sleep(0.3)
    out.append(b.done())
    out.append(ans(s, "/v3/lock/unlock", {"key": b64("l/64")}))
    out.append(b.join(10))                                 # header: the revision of the unlock
    out.append(keys(s, "l/"))
    return out


@pytest.mark.timeout(60)
def test_contended_lock_waits_for_unlock(pair):
    e, k = both(pair, contended)
    assert e[1] is False
    assert k == e


@pytest.mark.timeout(60)
def test_lock_queue_of_three(pair):
    """Three waiters: each gets the lock when the one created before it
    goes, whatever order the others leave in (the middle one leaves first)."""
    def run(s):
        grant(s, 100, 101, 102)
        out = [ans(s, "/v3/lock/lock", {"name": b64("q"), "lease": "100"})]
        b = Bg(s, "/v3/lock/lock", {"name": b64("q"), "lease": "101"})
        wait_for(lambda: len(keys(s, "q/")) == 2)
        c = Bg(s, "/v3/lock/lock", {"name": b64("q"), "lease": "102"})
        wait_for(lambda: len(keys(s, "q/")) == 3)
        out.append(ans(s, "/v3/lease/revoke", {"ID": 101}))   # the middle waiter's lease
        time.sleep(0.5)
        out.append((b.done(), c.done()))
        out.append(ans(s, "/v3/lock/unlock", {"key": b64("q/64")}))
        out.append(b.join(10))
        out.append(c.join(10))
        return out
    e, k = both(pair, run)
    assert k == e


@pytest.mark.timeout(60)
def test_lock_lease_revoked_while_waiting(pair):
    """etcd 3.4's Mutex.Lock does not re-read its key after waiting: the
    waiter whose lease was revoked still gets an answer with its key."""
    def run(s):
        grant(s, 100, 101)
        out = [ans(s, "/v3/lock/lock", {"name": b64("l"), "lease": "100"})]
        b = Bg(s, "/v3/lock/lock", {"name": b64("l"), "lease": "101"})
        wait_for(lambda: len(keys(s, "l/")) == 2)
        out.append(ans(s, "/v3/lease/revoke", {"ID": 101}))
        time.sleep(0.5)
        out.append(b.done())
        out.append(ans(s, "/v3/kv/put", {"key": b64("x"), "value": b64("x")}))
        out.append(ans(s, "/v3/lock/unlock", {"key": b64("l/64")}))
        out.append(b.join(10))
        out.append(keys(s, "l/"))
        return out
    e, k = both(pair, run)
    assert k == e


def raw_request(s, path, body):
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: %d\r\n\r\n" % (path, len(data))).encode() + data)
    return sock


@pytest.mark.timeout(60)
def test_lock_client_disconnect_while_waiting(pair):
    """The waiter's client leaves: etcd's context is canceled and the mutex
    deletes its key (one revision); the holder keeps the lock."""
    def run(s):
        grant(s, 100, 101)
        out = [ans(s, "/v3/lock/lock", {"name": b64("d"), "lease": "100"})]
        sock = raw_request(s, "/v3/lock/lock", {"name": b64("d"), "lease": "101"})
        out.append(wait_for(lambda: len(keys(s, "d/")) == 2))
        sock.close()
        out.append(wait_for(lambda: len(keys(s, "d/")) == 1, timeout=5))
        out.append(keys(s, "d/"))
        out.append(ans(s, "/v3/kv/range", {"key": b64("d/65")}))   # revision: one delete
        # and the next waiter is not stuck behind the one that left
        b = Bg(s, "/v3/lock/lock", {"name": b64("d"), "lease": "101"})
        time.sleep(0.3)
        out.append(b.done())
        out.append(ans(s, "/v3/lock/unlock", {"key": b64("d/64")}))
        out.append(b.join(10))
        return out
    e, k = both(pair, run)
    assert k == e


# ---------------------------------------------------------------- elections

class Observe:
    """POST /v3/election/observe on a raw socket, read as it comes.  etcd's
    gateway sends the response head only with the first line (so there may
    be none for a while); kvgate sends it at once: only what arrived by the
    time of lines() is compared."""

    def __init__(self, s, name):
        self.sock = raw_request(s, "/v3/election/observe", {"name": b64(name)})
        self.raw = b""

    def _read(self, quiet, timeout):
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            self.sock.settimeout(0.1)
            try:
                c = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not c:
                break
            self.raw += c
            last = time.monotonic()

    def parsed(self):
        head, sep, body = self.raw.partition(b"\r\n\r\n")
        if not sep:
            return None, {}, []
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        data = b""
        if "chunked" in hdrs.get("transfer-encoding", ""):
            while body:
                size, _, rest = body.partition(b"\r\n")
                n = int(size, 16)
                if n == 0:
                    break
                data += rest[:n]
                body = rest[n + 2:]
        else:
            data = body
        out = [json.loads(l) for l in data.decode().split("\n") if l.strip()]
        return int(lines[0].split()[1]), hdrs, out

    def lines(self, n=0, quiet=0.5, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            self._read(quiet, max(0.1, deadline - time.monotonic()))
            st, h, out = self.parsed()
            if len(out) >= n or time.monotonic() >= deadline:
                return [normalise(l) for l in out]

    def head(self):
        st, h, _ = self.parsed()
        return st, h.get("content-type")

    def close(self):
        self.sock.close()


def observe(s, name):
    return Observe(s, name)


@pytest.mark.timeout(90)
def test_campaign_observe_proclaim_resign(pair):
    def run(s):
        grant(s, 100, 101)
        o1 = observe(s, "e")                                  # before any leader
        time.sleep(0.3)
        out = []
        out.append(ans(s, "/v3/election/campaign", {"name": b64("e"), "lease": "100",
                                                    "value": b64("v")}))
        o2 = observe(s, "e")                                  # after: the leader at once
        out.append(o2.lines(1, quiet=0.2))
        out.append(o2.head())
        b = Bg(s, "/v3/election/campaign", {"name": b64("e"), "lease": "101", "value": b64("2")})
        wait_for(lambda: len(keys(s, "e/")) == 2)
        time.sleep(0.3)
        out.append(b.done())
        out.append(ans(s, "/v3/election/proclaim", {"leader": LEADER_E, "value": b64("w")}))
        out.append(ans(s, "/v3/kv/put", {"key": b64("e/zz"), "value": b64("z")}))  # not a leader
        out.append(ans(s, "/v3/kv/put", {"key": b64("f"), "value": b64("z")}))     # not the prefix
        time.sleep(0.3)
        out.append(ans(s, "/v3/election/resign", {"leader": LEADER_E}))
        out.append(b.join(10))
        out.append(ans(s, "/v3/election/leader", {"name": b64("e")}))
        out.append(ans(s, "/v3/lease/revoke", {"ID": 101}))    # the new leader goes: e/zz leads
        time.sleep(0.5)
        out.append(o1.lines(5))
        out.append(o1.head())
        out.append(o2.lines(4))
        o1.close()
        o2.close()
        return out
    e, k = both(pair, run)
    for i, (w, g) in enumerate(zip(e, k)):
        assert g == w, (i, g, w)


LEADER_E = {"name": b64("e"), "key": b64("e/64"), "rev": "2", "lease": "100"}


@pytest.mark.timeout(60)
def test_observe_waits_for_first_put(pair):
    """No leader: the first put under the prefix (not a delete) is the
    leader, with the header at its revision."""
    def run(s):
        o = observe(s, "w")
        time.sleep(0.5)                   # etcd sends no head yet: give it time to start
        out = [ans(s, "/v3/kv/put", {"key": b64("w"), "value": b64("a")})]     # not under w/
        out.append(ans(s, "/v3/kv/put", {"key": b64("w/b"), "value": b64("b")}))
        out.append(ans(s, "/v3/kv/put", {"key": b64("w/a"), "value": b64("a")}))
        out.append(ans(s, "/v3/kv/put", {"key": b64("w/b"), "value": b64("b2")}))
        out.append(ans(s, "/v3/kv/deleterange", {"key": b64("w/b")}))
        out.append(ans(s, "/v3/kv/put", {"key": b64("w/a"), "value": b64("a2")}))
        out.append(o.lines(3))
        o.close()
        return out
    e, k = both(pair, run)
    assert k == e


@pytest.mark.timeout(60)
def test_campaign_client_disconnect_resigns(pair):
    def run(s):
        grant(s, 100, 101)
        out = [ans(s, "/v3/election/campaign", {"name": b64("c"), "lease": "100",
                                                "value": b64("v")})]
        sock = raw_request(s, "/v3/election/campaign", {"name": b64("c"), "lease": "101",
                                                         "value": b64("w")})
        out.append(wait_for(lambda: len(keys(s, "c/")) == 2))
        sock.close()
        out.append(wait_for(lambda: len(keys(s, "c/")) == 1, timeout=5))
        out.append(ans(s, "/v3/election/leader", {"name": b64("c")}))
        return out
    e, k = both(pair, run)
    assert k == e


# ---------------------------------------------------------------- kvgate only

@pytest.mark.timeout(60)
def test_shutdown_with_waiting_requests(kvgate_factory):
    """SIGTERM while a lock and a campaign wait and an observe streams: the
    server stops promptly and cleanly (the sanitizer build checks leaks)."""
    k = kvgate_factory()
    grant(k, 100, 101)
    assert ans(k, "/v3/lock/lock", {"name": b64("s"), "lease": "100"})["status"] == 200
    assert ans(k, "/v3/election/campaign", {"name": b64("e"), "lease": "100",
                                            "value": b64("v")})["status"] == 200
    socks = [raw_request(k, "/v3/lock/lock", {"name": b64("s"), "lease": "101"}),
             raw_request(k, "/v3/election/campaign", {"name": b64("e"), "lease": "101",
                                                      "value": b64("w")})]
    o = observe(k, "e")
    assert len(o.lines(1)) == 1
    assert wait_for(lambda: len(keys(k, "s/")) == 2 and len(keys(k, "e/")) == 2)
    t0 = time.monotonic()
    k.proc.send_signal(signal.SIGTERM)
    rc = k.proc.wait(20)
    assert rc == 0, k.stderr()
    assert time.monotonic() - t0 < 10
    for s in socks:
        s.close()
    o.close()
    err = k.stderr()
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err
