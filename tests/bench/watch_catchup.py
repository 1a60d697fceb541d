#!/usr/bin/env python3
"""Watch catch-up benchmark, kvgate and etcd 3.4 side by side in one run.

Writes N revisions (N puts on distinct keys under "cu/", 100-byte values,
64 keep-alive connections with 8 requests in flight each), then opens one
watch on the prefix "cu/" from revision 1 (POST /v3/watch with
start_revision 1) and measures the time from sending the watch request to
receiving the N-th event (kernel receive timestamp); the time to the first
event is reported too (both servers start a new history watch on their
sync loop's next periodic pass, up to 100 ms later).  Repeated --rounds
times on the same data (a new watch each time); the median is reported.
Also checks the stream: every revision 2..N+1 exactly once, in order.

Target: kvgate events/s >= 10x etcd's.

Usage: watch_catchup.py [--revisions 20000] [--rounds 5] [--out watch_catchup.json]
"""
import argparse
import asyncio
import statistics
import sys
import time

import watch_lib as L


async def one_catchup(server, n, first_rev, timeout):
    stats = {"events": 0}
    w = L.Watcher(stats)
    req = L.post_watch_request("cu/", start_revision=1, range_end="cu0")
    c0 = L.client_cpu_s()
    t0 = time.time()
    ok = await w.open(server.port, req, timeout)
    if not ok:
        return {"error": w.error}
    deadline = time.monotonic() + timeout
    while stats["events"] < n and time.monotonic() < deadline and not w.closed:
        await asyncio.sleep(0.001)
    got = stats["events"]
    t_end = w.kts[n - 1] if got >= n else time.time()
    w.close()
    revs = w.revs[:n]
    in_order = revs == list(range(first_rev, first_rev + n))
    dt = t_end - t0
    first = (w.kts[0] - t0) if w.kts else None
    return {"events": got, "seconds": round(dt, 4), "events_per_s": round(min(got, n) / dt, 1),
            "first_event_s": round(first, 4) if first is not None else None,
            "client_cpu_s": round(L.client_cpu_s() - c0, 4),
            "after_first_events_per_s": (round(min(got, n) / (dt - first), 1)
                                         if first is not None and dt > first else None),
            "complete": got >= n, "in_order_no_gaps": in_order, "body_bytes": w.body_bytes}


async def run_server(kind, n, rounds, timeout):
    srv = L.Server(kind)
    try:
        srv.start()
        t0 = time.monotonic()
        top = await L.concurrent_puts(srv.port, n, key_fmt="cu/%06d")
        write_s = time.monotonic() - t0
        first = top - n + 1
        L.log("  %s: %d puts in %.2fs (%.0f/s), revision %d" % (kind, n, write_s, n / write_s, top))
        res = {"server": kind, "revisions": n, "write_s": round(write_s, 3),
               "write_puts_per_s": round(n / write_s, 1), "last_revision": top, "rounds": []}
        for i in range(rounds):
            c0 = srv.cpu_ticks()
            r = await one_catchup(srv, n, first, timeout)
            r["server_cpu_s"] = (srv.cpu_ticks() - c0) / L.CLK_TCK
            L.log("  %s round %d: %s" % (kind, i + 1, r))
            res["rounds"].append(r)
            await asyncio.sleep(0.5)
        good = [r for r in res["rounds"] if r.get("complete")]
        res["complete"] = len(good) == rounds
        res["in_order_no_gaps"] = all(r.get("in_order_no_gaps") for r in res["rounds"])
        if good:
            res["median_s"] = statistics.median(r["seconds"] for r in good)
            res["median_events_per_s"] = round(n / res["median_s"], 1)
            res["median_first_event_s"] = statistics.median(r["first_event_s"] for r in good)
            res["median_after_first_events_per_s"] = statistics.median(
                r["after_first_events_per_s"] for r in good)
        return res
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revisions", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", default="watch_catchup.json")
    a = ap.parse_args()
    L.exit_on_sigterm()

    async def go():
        out = []
        for kind in ("etcd", "kvgate"):
            L.log("== %s" % kind)
            try:
                out.append(await run_server(kind, a.revisions, a.rounds, a.timeout))
            except Exception as e:  # noqa: BLE001
                L.log("  %s failed: %s: %s" % (kind, type(e).__name__, e))
                out.append({"server": kind, "error": "%s: %s" % (type(e).__name__, e)})
        return out

    results = asyncio.run(go())
    by = {r["server"]: r for r in results}
    print("watch catch-up: %d revisions, one watch from revision 1, median of %d rounds"
          % (a.revisions, a.rounds))
    print("%-8s %10s %12s %10s %18s %10s %8s %14s" % (
        "server", "seconds", "events/s", "first_s", "after_first_ev/s", "complete", "order",
        "write puts/s"))
    for r in results:
        if "error" in r:
            print("%-8s ERROR %s" % (r["server"], r["error"]))
            continue
        print("%-8s %10.3f %12.0f %10.3f %18.0f %10s %8s %14.0f" % (
            r["server"], r.get("median_s", float("nan")), r.get("median_events_per_s", 0),
            r.get("median_first_event_s", float("nan")),
            r.get("median_after_first_events_per_s", 0), r["complete"], "ok" if r["in_order_no_gaps"] else "BAD", r["write_puts_per_s"]))
    ratio = None
    e, k = by.get("etcd", {}), by.get("kvgate", {})
    if e.get("median_events_per_s") and k.get("median_events_per_s"):
        ratio = k["median_events_per_s"] / e["median_events_per_s"]
        print("kvgate/etcd events/s: %.1fx (target >= 10x: %s)"
              % (ratio, "ok" if ratio >= 10 else "MISS"))
    path = L.write_json(a.out, {"bench": "watch_catchup", "host": L.host_info(), "params": vars(a),
                                "results": results, "ratio_events_per_s": ratio,
                                "target_met": ratio is not None and ratio >= 10,
                                "command": " ".join(sys.argv)})
    print("results: %s" % path)
    sys.exit(0 if k.get("complete") and k.get("in_order_no_gaps") else 1)


if __name__ == "__main__":
    main()
