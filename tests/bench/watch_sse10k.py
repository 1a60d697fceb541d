#!/usr/bin/env python3
"""10,000 SSE watchers on kvgate (one connection each), a few puts.

Reports delivery % (target 100%) and memory per stream ((RSS with the
streams open - RSS before) / N), plus the latency and CPU figures of
watch_fanout.py.  kvgate runs with --max-connections N+200 --max-streams
N+100 (defaults: 10000 and 9000).

etcd comparison (--etcd, on by default): the same number of POST
/v3/watch streams on etcd's gateway, bounded: at most --etcd-open-timeout
seconds for opening them; whatever happens (all open, some refused, a
timeout) is reported.

Usage: watch_sse10k.py [--watchers 10000] [--puts 10] [--rate 2] [--no-etcd]
"""
import argparse
import asyncio
import sys

import watch_fanout as F
import watch_lib as L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watchers", type=int, default=10000)
    ap.add_argument("--puts", type=int, default=10)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--no-etcd", action="store_true")
    ap.add_argument("--etcd-open-timeout", type=float, default=120.0)
    ap.add_argument("--out", default="watch_sse10k.json")
    a = ap.parse_args()
    L.exit_on_sigterm()
    n = a.watchers
    nofile = L.raise_nofile(n + 1000)
    if nofile < n + 100:
        sys.exit("RLIMIT_NOFILE %d too low for %d watchers" % (nofile, n))

    async def go():
        out = []
        variants = [("kvgate", "sse")] + ([] if a.no_etcd else [("etcd", "post")])
        for kind, mode in variants:
            L.log("== %s-%s" % (kind, mode))
            srv = L.Server(kind, F.server_args(kind, n))
            try:
                srv.start()
                r = await F.run_variant(srv, mode, n, a.puts, a.rate, conc=200,
                                        open_timeout=a.etcd_open_timeout if kind == "etcd" else 120.0,
                                        drain_timeout=30.0)
                out.append(r)
            except Exception as e:  # noqa: BLE001
                L.log("  %s failed: %s: %s" % (kind, type(e).__name__, e))
                out.append({"server": kind, "mode": mode, "error": "%s: %s" % (type(e).__name__, e),
                            "server_alive": srv.alive()})
            finally:
                srv.stop()
            await asyncio.sleep(1.0)
        return out

    results = asyncio.run(go())
    print("watch 10k: %d watchers on one key, %d puts at %g/s" % (n, a.puts, a.rate))
    print("%-12s %11s %9s %9s %9s %9s %12s %12s" % ("variant", "established", "open_s", "deliv%",
                                                  "p50_ms", "p99_ms", "KiB/stream", "CPU_us/evt"))
    for r in results:
        v = "%s-%s" % (r["server"], r["mode"])
        if "error" in r:
            print("%-12s ERROR %s" % (v, r["error"]))
            continue
        f = lambda x, fmt: (fmt % x) if x is not None else "-"  # noqa: E731
        print("%-12s %11s %9.1f %9s %9s %9s %12s %12s" % (
            v, "%d/%d" % (r["established"], n), r["open_s"], f(r["delivery_pct"], "%.2f"),
            f(r["lat_p50_ms"], "%.2f"), f(r["lat_p99_ms"], "%.2f"),
            f(r["kib_per_watcher"], "%.2f"), f(r["cpu_us_per_event"], "%.2f")))
        if r.get("open_errors"):
            print("%-12s open errors: %s" % ("", r["open_errors"]))
    path = L.write_json(a.out, {"bench": "watch_sse10k", "host": L.host_info(), "params": vars(a),
                                "client_nofile": nofile, "results": results,
                                "command": " ".join(sys.argv)})
    print("results: %s" % path)
    k = [r for r in results if r["server"] == "kvgate"]
    sys.exit(0 if k and k[0].get("delivery_pct") == 100.0 else 1)


if __name__ == "__main__":
    main()
