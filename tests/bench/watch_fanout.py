#!/usr/bin/env python3
"""Watch fan-out benchmark, kvgate and etcd 3.4 side by side in one run.

N watchers on one key, each on its own HTTP connection (POST /v3/watch,
etcd's gateway stream, for both servers; for kvgate also the SSE variant
GET /v3/watch?key=...), then P puts on that key at R per second.  Each
variant runs on a freshly started server.

Reported per variant:
  delivery %      events received / (N x P), each (watcher, revision) once
  p50/p99 ms      put send time -> kernel receive timestamp of the event at
                  the watcher's socket, over all deliveries (user-space read
                  time also recorded: it includes the client loop's delay)
  KiB/watcher     (RSS with the watchers established - RSS before) / N
  CPU us/event    server utime+stime over the put phase (first put until
                  the last delivery) / events delivered; kernel% is the stime
                  share (on loopback a send() also runs the client's TCP
                  receive path, in the server's context)
Targets: kvgate p99 <= 1/4 of etcd's, memory/watcher <= 1/10, CPU/event
<= 1/10.  The client (this process, one asyncio loop) shares the machine's
cores with the server; its CPU time in the put phase is reported too.

Usage: watch_fanout.py [--watchers 2000] [--puts 200] [--rate 10]
                       [--variants etcd-post,kvgate-post,kvgate-sse]
                       [--out watch_fanout.json]
"""
import argparse
import asyncio
import json
import sys
import time

import watch_lib as L


async def run_variant(server, mode, n, puts, rate, key="fan/key", settle=2.0,
                      open_timeout=120.0, drain_timeout=20.0, conc=100, progress=True):
    """One fan-out run against a started server.  mode: "post" or "sse"."""
    res = {"server": server.kind, "mode": mode, "watchers": n, "puts": puts, "rate": rate,
           "server_nofile_limit": server.nofile_limit()}
    ctl = await L.Http(server.port).open()
    try:
        await ctl.put(key, "warmup")
        await asyncio.sleep(settle)
        rss0 = server.rss_kib()
        req = L.post_watch_request(key) if mode == "post" else L.sse_watch_request(key)
        t0 = time.monotonic()
        ws, ok, stats = await L.open_watchers(server.port, n, req, concurrency=conc,
                                              timeout=open_timeout)
        res["open_s"] = round(time.monotonic() - t0, 3)
        res["established"] = ok
        errs = {}
        for w in ws:
            if w.error:
                errs[w.error] = errs.get(w.error, 0) + 1
        res["open_errors"] = errs
        if progress:
            L.log("  %s/%s: %d/%d watchers in %.1fs %s" % (server.kind, mode, ok, n,
                                                           res["open_s"], errs or ""))
        await asyncio.sleep(settle)
        rss1 = server.rss_kib()
        res["rss_before_kib"], res["rss_watchers_kib"] = rss0, rss1
        res["kib_per_watcher"] = round((rss1 - rss0) / n, 3)
        # idle CPU with the watchers open (heartbeats, raft ticks, GC)
        c0 = server.cpu_ticks()
        await asyncio.sleep(2.0)
        res["idle_ticks_per_s"] = (server.cpu_ticks() - c0) / 2.0

        live = [w for w in ws if w.created.done() and w.created.result()]
        expected_events = len(live) * puts
        sent = {}
        rtts = []
        split0 = server.cpu_ticks_split()
        cpu0, ccpu0 = sum(split0), L.client_cpu_s()
        tp0 = time.monotonic()
        for i in range(puts):
            delay = tp0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t, rev = await ctl.put(key, "v%06d" % i)
            rtts.append(time.time() - t)
            sent[rev] = t
        put_s = time.monotonic() - tp0
        deadline = time.monotonic() + drain_timeout
        while stats["events"] < expected_events and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        split1 = server.cpu_ticks_split()
        cpu1, ccpu1 = sum(split1), L.client_cpu_s()
        phase_s = time.monotonic() - tp0
        res["put_phase_s"] = round(phase_s, 3)
        res["put_send_s"] = round(put_s, 3)
        res["drained"] = stats["events"] >= expected_events

        lat, ulat = [], []
        per_put = {rev: [] for rev in sent}
        delivered = dups = out_of_order = gaps = 0
        want = sorted(sent)
        for w in live:
            seen = set()
            last = 0
            for rev, kt, ut in zip(w.revs, w.kts, w.uts):
                if rev not in sent:
                    continue
                if rev in seen:
                    dups += 1
                    continue
                if rev < last:
                    out_of_order += 1
                last = rev
                seen.add(rev)
                delivered += 1
                lat.append(kt - sent[rev])
                per_put[rev].append(kt - sent[rev])
                ulat.append(ut - sent[rev])
            if len(seen) != len(want):
                gaps += 1
        lat.sort()
        ulat.sort()
        # where the tail comes from: whole puts late (commit, wake-up) or
        # some watchers late within a put (fan-out order, threads)
        worst = []
        for rev, ls in per_put.items():
            if ls:
                ls.sort()
                worst.append({"revision": rev, "put_index": want.index(rev),
                              "first_ms": round(ls[0] * 1000, 2),
                              "p50_ms": round(L.pct(ls, 50) * 1000, 2),
                              "last_ms": round(ls[-1] * 1000, 2), "deliveries": len(ls)})
        worst.sort(key=lambda x: -x["last_ms"])
        res["slowest_puts"] = worst[:8]
        res["puts_last_delivery_over_100ms"] = sum(1 for x in worst if x["last_ms"] > 100)
        res["puts_first_delivery_over_100ms"] = sum(1 for x in worst if x["first_ms"] > 100)
        ticks = cpu1 - cpu0
        res.update({
            "events_expected": n * puts,
            "events_delivered": delivered,
            "delivery_pct": round(100.0 * delivered / (n * puts), 4),
            "watchers_missing_events": gaps,
            "duplicates": dups,
            "out_of_order": out_of_order,
            "lat_p50_ms": round(L.pct(lat, 50) * 1000, 3) if lat else None,
            "lat_p99_ms": round(L.pct(lat, 99) * 1000, 3) if lat else None,
            "lat_max_ms": round(lat[-1] * 1000, 3) if lat else None,
            "read_lat_p50_ms": round(L.pct(ulat, 50) * 1000, 3) if ulat else None,
            "read_lat_p99_ms": round(L.pct(ulat, 99) * 1000, 3) if ulat else None,
            "put_rtt_p50_ms": round(L.pct(sorted(rtts), 50) * 1000, 3),
            "put_rtt_p99_ms": round(L.pct(sorted(rtts), 99) * 1000, 3),
            "server_cpu_ticks": ticks,
            "server_cpu_s": ticks / L.CLK_TCK,
            # kernel share: on loopback a send also runs the receiver's TCP
            # input path in the sender's context, charged to the server
            "server_stime_share": round((split1[1] - split0[1]) / ticks, 3) if ticks else None,
            "cpu_us_per_event": round(ticks / L.CLK_TCK * 1e6 / delivered, 3) if delivered else None,
            "server_cpu_pct_of_core": round(100.0 * ticks / L.CLK_TCK / phase_s, 1),
            "client_cpu_s": round(ccpu1 - ccpu0, 3),
            "client_cpu_pct_of_core": round(100.0 * (ccpu1 - ccpu0) / phase_s, 1),
            "rss_end_kib": server.rss_kib(),
            "loadavg_1m": L.loadavg(),
            "server_alive": server.alive(),
        })
        for w in ws:
            w.close()
        return res
    finally:
        ctl.close()


def server_args(kind, n):
    if kind == "kvgate":
        return ["--max-connections", str(n + 200), "--max-streams", str(n + 100)]
    return []


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def summarize(results, n, puts, rate):
    hdr = "%-12s %9s %9s %9s %9s %12s %12s %9s %9s %9s" % (
        "variant", "deliv%", "p50_ms", "p99_ms", "max_ms", "KiB/watcher", "CPU_us/evt",
        "kernel%", "srvCPU%", "cliCPU%")
    lines = ["watch fan-out: %d watchers on one key, %d puts at %g/s" % (n, puts, rate), hdr]
    for r in results:
        f = lambda v, fmt: (fmt % v) if v is not None else "-"  # noqa: E731
        lines.append("%-12s %9s %9s %9s %9s %12s %12s %9s %9s %9s" % (
            "%s-%s" % (r["server"], r["mode"]), f(r["delivery_pct"], "%.2f"),
            f(r["lat_p50_ms"], "%.2f"), f(r["lat_p99_ms"], "%.2f"), f(r["lat_max_ms"], "%.1f"),
            f(r["kib_per_watcher"], "%.2f"), f(r["cpu_us_per_event"], "%.2f"),
            f(r["server_stime_share"] * 100 if r["server_stime_share"] is not None else None, "%.0f"),
            f(r["server_cpu_pct_of_core"], "%.0f"), f(r["client_cpu_pct_of_core"], "%.0f")))
    by = {"%s-%s" % (r["server"], r["mode"]): r for r in results}
    e = by.get("etcd-post")
    ratios = {}
    if e:
        lines.append("")
        lines.append("%-12s %14s %16s %14s   (targets: p99 <= 0.25, mem <= 0.10, cpu <= 0.10;"
                     " kvgate delivery 100%%)" % ("kvgate/etcd", "p99 ratio", "mem/watcher", "CPU/event"))
        for v in ("kvgate-post", "kvgate-sse"):
            k = by.get(v)
            if not k:
                continue
            rp = ratio(k["lat_p99_ms"], e["lat_p99_ms"])
            rm = ratio(k["kib_per_watcher"], e["kib_per_watcher"])
            rc = ratio(k["cpu_us_per_event"], e["cpu_us_per_event"])
            ok = (rp is not None and rp <= 0.25, rm is not None and rm <= 0.10,
                  rc is not None and rc <= 0.10, k["delivery_pct"] == 100.0)
            ratios[v] = {"p99": rp, "mem_per_watcher": rm, "cpu_per_event": rc,
                         "p99_target_met": ok[0], "mem_target_met": ok[1], "cpu_target_met": ok[2],
                         "delivery_100": ok[3]}
            g = lambda x, m: ("%.3f %s" % (x, "ok" if m else "MISS")) if x is not None else "-"  # noqa: E731
            lines.append("%-12s %14s %16s %14s   delivery %s" % (
                v, g(rp, ok[0]), g(rm, ok[1]), g(rc, ok[2]), "ok" if ok[3] else "MISS"))
    return "\n".join(lines), ratios


async def main_async(a):
    results = []
    for v in a.variants.split(","):
        kind, mode = v.split("-")
        L.log("== %s" % v)
        srv = L.Server(kind, server_args(kind, a.watchers))
        try:
            srv.start()
            results.append(await run_variant(srv, mode, a.watchers, a.puts, a.rate))
        except Exception as e:  # noqa: BLE001 (one variant failing still reports the others)
            L.log("  %s failed: %s: %s" % (v, type(e).__name__, e))
            results.append({"server": kind, "mode": mode, "error": "%s: %s" % (type(e).__name__, e)})
        finally:
            srv.stop()
        await asyncio.sleep(1.0)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watchers", type=int, default=2000)
    ap.add_argument("--puts", type=int, default=200)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--variants", default="etcd-post,kvgate-post,kvgate-sse")
    ap.add_argument("--out", default="watch_fanout.json")
    a = ap.parse_args()
    L.exit_on_sigterm()
    nofile = L.raise_nofile(a.watchers + 1000)
    if nofile < a.watchers + 100:
        sys.exit("RLIMIT_NOFILE %d too low for %d watchers (raise the hard limit)"
                 % (nofile, a.watchers))
    results = asyncio.run(main_async(a))
    ok_results = [r for r in results if "error" not in r]
    table, ratios = summarize(ok_results, a.watchers, a.puts, a.rate)
    print(table)
    for r in results:
        if "error" in r:
            print("%s-%s: ERROR %s" % (r["server"], r["mode"], r["error"]))
    path = L.write_json(a.out, {"bench": "watch_fanout", "host": L.host_info(),
                                "client_nofile": nofile,
                                "params": vars(a), "results": results, "ratios": ratios,
                                "command": " ".join(sys.argv)})
    print("results: %s" % path)
    bad = [r for r in results if r.get("server") == "kvgate"
           and ("error" in r or r.get("delivery_pct") != 100.0)]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
