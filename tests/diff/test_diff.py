"""Differential suite: every case in tests/diff/cases/*.json runs against a
fresh kvgate and a fresh etcd 3.4; every step must get the same HTTP status,
the same Content-Type and the same JSON (cluster_id, member_id and raft_term dropped from every
header), or the same text for non-JSON answers.

Where etcd's answer is deliberately not reproduced (etcd crashes, or kvgate
does better), the request is not in the cases but in
tests/e2e/test_exceptions.py, with the reason.

etcd's answers are also stored in tests/diff/golden/ (record_golden.py);
this test checks the live etcd still gives them (so a case that turned
nondeterministic is caught), and falls back to them when no etcd binary is
installed.
"""
import json
import os
import threading

import pytest

from kvtest import Etcd, Kvgate, ServerError
from kvtest.cases import load_cases, run_case, load_golden, describe_step, same

CASES = load_cases()


def _fmt(a):
    s = json.dumps(a, ensure_ascii=False, sort_keys=True)
    return s if len(s) < 1500 else s[:1500] + "..."


def _run_parallel(servers, case):
    """Start every server, then run the case on each in its own thread."""
    for s in servers:
        s.spawn()
    for s in servers:
        s.wait_ready()
    results = [None] * len(servers)

    def go(i, s):
        results[i] = run_case(s.port, case)

    ts = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate(servers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return results


def test_cases_are_well_formed():
    names = [c["name"] for _, c in CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 60, "the case files lost cases"
    for _, c in CASES:
        g = load_golden(c["name"])
        assert g is not None, "no golden file for %s: run tests/diff/record_golden.py" % c["name"]
        assert len(g["steps"]) == len(c["steps"]), "golden for %s is stale" % c["name"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(reason=c["xfail"], strict=True)) if c.get("xfail") else c
    for _, c in CASES], ids=[c["name"] for _, c in CASES])
def test_diff(case, kvgate_binary):
    golden = load_golden(case["name"])
    use_live_etcd = os.path.exists(os.environ.get("ETCD_BIN", "/usr/bin/etcd"))
    k = Kvgate(binary=kvgate_binary)
    servers = [k]
    e = None
    if use_live_etcd:
        e = Etcd()
        servers.append(e)
    try:
        try:
            results = _run_parallel(servers, case)
        except ServerError as err:
            pytest.fail("could not start a server: %s" % err)
        ours = results[0]
        if use_live_etcd:
            theirs = results[1]
            reference = "etcd"
        else:
            assert golden is not None, "no etcd and no golden file"
            theirs = [s["answer"] for s in golden["steps"]]
            reference = "golden (no etcd installed)"
        diffs = []
        for i, (step, a, b) in enumerate(zip(case["steps"], theirs, ours)):
            if not same(step, a, b):
                diffs.append("step %d: %s\n    %s: %s\n    kvgate: %s"
                             % (i, describe_step(step), reference, _fmt(a), _fmt(b)))
        alive = k.running()
        if diffs or not alive:
            msg = "%s: %d of %d steps differ (%s)\n" % (case["name"], len(diffs), len(case["steps"]), case.get("doc", ""))
            msg += "\n".join(diffs)
            if not alive:
                msg += "\nkvgate is no longer running (exit %s); stderr tail:\n%s" % (k.proc.returncode, k.stderr()[-1500:])
            pytest.fail(msg, pytrace=False)
        if use_live_etcd and golden is not None:
            recorded = [s["answer"] for s in golden["steps"]]
            assert recorded == theirs, ("etcd's live answers differ from tests/diff/golden/%s.json; "
                                        "the case is nondeterministic or the golden is stale" % case["name"])
    finally:
        for s in servers:
            s.cleanup()
