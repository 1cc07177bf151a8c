#!/usr/bin/env python3
"""enrichd benchmark harness (make bench).

Starts the real nginx + enrichd (+ the provider simulator) from the integration
harness, drives them with wrk, and prints a Markdown table.  Every comparison is
made in one run against a do-nothing libfcgi responder (bench/nullfcgi.c) behind
the same nginx configuration, so the ratio means something on any machine.

    bench/bench.py [--seconds 10] [--only health,enrich,...]
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from harness import BUILD, Env, wait_for  # noqa: E402

NULLFCGI = os.path.join(BUILD, "bench", "nullfcgi")


def wrk(port, path, seconds, conns, threads=2, script=None, timeout="10s"):
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
           "--timeout", timeout]
    if script:
        cmd += ["-s", script]
    cmd.append(f"https://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    res = {"raw": out, "rps": 0.0, "p50": None, "p99": None, "errors": 0, "non2xx": 0,
           "requests": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    for pct, key in (("50.000%|50%", "p50"), ("99.000%|99%", "p99")):
        m = re.search(r"^\s+(?:%s)\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        if m:
            v, unit = float(m.group(1)), m.group(2)
            res[key] = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
    return res


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f} ms"


def swap_to_null(env, threads):
    """Stop enrichd and start the do-nothing responder on the same socket."""
    env.stop_enrichd()
    p = subprocess.Popen([NULLFCGI, env.socket, str(threads)])
    wait_for(lambda: os.path.exists(env.socket), what="nullfcgi socket")
    return p


def bench_health(seconds, conns):
    rows = []
    with Env(conf={"threads": 64, "log_level": "warn"}) as env:
        wrk(env.https_port, "/health", 2, conns)  # warm-up
        e = wrk(env.https_port, "/health", seconds, conns)
        null = swap_to_null(env, 64)
        try:
            wrk(env.https_port, "/health", 2, conns)
            n = wrk(env.https_port, "/health", seconds, conns)
        finally:
            null.terminate()
            null.wait()
    rows.append(("GET /health, enrichd", e))
    rows.append(("GET /health, do-nothing libfcgi responder", n))
    return rows, e["rps"] / n["rps"] if n["rps"] else 0.0


def table(rows):
    out = ["| case | requests/s | p50 | p99 | errors |", "|---|---:|---:|---:|---:|"]
    for name, r in rows:
        out.append(f"| {name} | {r['rps']:.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
                   f"{r['errors'] + r['non2xx']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    print(f"# enrichd benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, wrk {a.conns} connections, {a.seconds} s per case)\n")
    if not only or "health" in only:
        rows, ratio = bench_health(a.seconds, a.conns)
        print(table(rows))
        print(f"\n/health through nginx: enrichd reaches {ratio * 100:.0f}% of the do-nothing "
              f"responder's requests/s.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
