#!/usr/bin/env python3
"""enrichd benchmark harness (make bench).

Starts the real nginx + enrichd (+ enrich-worker and the provider simulator) from
the integration harness, drives them with wrk, and prints a Markdown table.  Every
responder comparison is made in one run against a do-nothing libfcgi responder
(bench/nullfcgi.c, same threading model) behind the same nginx configuration, so
the ratio means something on any machine.

    bench/bench.py [--seconds 10] [--only health,hit,pg,latency,rss,batch,batch2,soak]
                   [--soak-seconds 600]

"pg" measures the cache-hit case again with the store on PostgreSQL (the tests'
throw-away server) against SQLite in the same run; "batch2" runs the batch on two
hosts (two nginx + enrichd pairs) with two workers each, on one PostgreSQL.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from harness import BUILD, Env, deep_merge, pg_database, wait_for  # noqa: E402
from providers import client_key, keys_env, provider, secret  # noqa: E402

NULLFCGI = os.path.join(BUILD, "bench", "nullfcgi")
HIGH_LIMITS = {"requests_per_minute": 1000000000, "burst": 1000000000,
               "records_per_hour": 1000000000000, "records_per_day": 1000000000000}


def wrk(port, path, seconds, conns, threads=2, script=None, timeout="10s", env=None):
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
           "--timeout", timeout]
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    cmd.append(f"https://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
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


def row(name, r, extra=""):
    return (f"| {name} | {r['rps']:.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
            f"{r['errors'] + r['non2xx']} | {extra} |")


HEAD = ["| case | requests/s | p50 | p99 | errors | notes |", "|---|---:|---:|---:|---:|---|"]


def swap_to_null(env, threads):
    """Stop enrichd and start the do-nothing responder on the same socket."""
    env.stop_enrichd()
    p = subprocess.Popen([NULLFCGI, env.socket, str(threads)])
    wait_for(lambda: os.path.exists(env.socket), what="nullfcgi socket")
    return p


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def hit_conf(threads=64):
    def make(env):
        return {"threads": threads, "log_level": "warn", "accounts_default": HIGH_LIMITS,
                "providers": [provider(env, "pdl", 2)],
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]}}
    return make


def bench_responder(a, out, rss):
    """(a) /health and cache-hit POST /enrich against the do-nothing responder."""
    with Env(conf=hit_conf(), sim=True, env=keys_env("pdl", 2)) as env:
        key = client_key(env)
        wenv = dict(os.environ, KEY=key)
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@acme.com",
                                                      "enrich": ["first_name", "title", "phone"]},
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 200, r
        wrk(env.https_port, "/enrich", 2, a.conns, script="enrich_hit.lua", env=wenv)  # warm-up
        hit = wrk(env.https_port, "/enrich", a.seconds, a.conns, script="enrich_hit.lua", env=wenv)
        health = wrk(env.https_port, "/health", a.seconds, a.conns)
        rss["after cache-hit and /health load"] = rss_kb(env.enrichd.pid)
        null = swap_to_null(env, 64)
        try:
            wrk(env.https_port, "/enrich", 2, a.conns, script="enrich_hit.lua", env=wenv)
            base = wrk(env.https_port, "/enrich", a.seconds, a.conns, script="enrich_hit.lua",
                       env=wenv)
        finally:
            null.terminate()
            null.wait()
    out.append(row("POST /enrich, cache hit, auth + rate limit (enrichd)", hit,
                   f"{hit['rps'] / base['rps'] * 100:.0f}% of the baseline" if base["rps"] else ""))
    out.append(row("GET /health (enrichd)", health,
                   f"{health['rps'] / base['rps'] * 100:.0f}% of the baseline" if base["rps"] else ""))
    out.append(row("same requests, do-nothing libfcgi responder", base, "baseline"))
    return hit, base


def hit_rps(a, store_kind):
    """Cache-hit POST /enrich throughput with the store on store_kind."""
    with Env(conf=hit_conf(), sim=True, env=keys_env("pdl", 2), store_kind=store_kind) as env:
        key = client_key(env)
        wenv = dict(os.environ, KEY=key)
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@acme.com",
                                                      "enrich": ["first_name", "title", "phone"]},
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 200, r
        wrk(env.https_port, "/enrich", 2, a.conns, script="enrich_hit.lua", env=wenv)  # warm-up
        return wrk(env.https_port, "/enrich", a.seconds, a.conns, script="enrich_hit.lua", env=wenv)


def bench_pg(a, out):
    """(a') the cache-hit case on PostgreSQL against SQLite, one after the other."""
    lite = hit_rps(a, "sqlite")
    pg = hit_rps(a, "postgresql")
    out.append(row("POST /enrich, cache hit, store on SQLite", lite, "reference for the next row"))
    out.append(row("POST /enrich, cache hit, store on PostgreSQL", pg,
                   f"{pg['rps'] / lite['rps'] * 100:.0f}% of SQLite" if lite["rps"] else ""))


def bench_latency(a, out, rss):
    """(b) the simulator 100 ms away, 1,000 concurrent clients, never in the cache."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with Env(conf=hit_conf(threads=1100), sim=True, sim_delay_ms=100,
             env=keys_env("pdl", 2)) as env:
        key = client_key(env)
        wenv = dict(os.environ, KEY=key)
        r = wrk(env.https_port, "/enrich", a.seconds, 1000, threads=2, script="enrich_unique.lua",
                env=wenv, timeout="10s")
        rss["after 1,000 concurrent clients"] = rss_kb(env.enrichd.pid)
    ceiling = 1000 / 0.1
    out.append(row("POST /enrich, 1,000 clients, provider 100 ms away", r,
                   f"{r['rps'] / ceiling * 100:.0f}% of the {ceiling:.0f}/s the latency allows"))
    return r


def bench_soak(a, out, rss):
    """RSS over a long cache-hit load: sampled every 10 s."""
    with Env(conf=hit_conf(), sim=True, env=keys_env("pdl", 2)) as env:
        key = client_key(env)
        wenv = dict(os.environ, KEY=key)
        env.request("POST", "/enrich", json_body={"email": "john.doe@acme.com",
                                                  "enrich": ["first_name", "title", "phone"]},
                    headers={"Authorization": "Bearer " + key})
        samples = []
        t_end = time.time() + a.soak_seconds
        while time.time() < t_end:
            wrk(env.https_port, "/enrich", 10, 64, script="enrich_hit.lua", env=wenv)
            samples.append(rss_kb(env.enrichd.pid, "VmRSS"))
    first, last = samples[0], samples[-1]
    out.append(f"\nSoak: {a.soak_seconds} s of cache-hit load, RSS every 10 s: "
               f"first {first} kB, last {last} kB, max {max(samples)} kB "
               f"({(last - first) / max(first, 1) * 100:+.1f}% from the first sample).")


def bench_batch(a, out, workers):
    """(c) 2,000 rows, 5 keys each limited by the provider to R/min."""
    n, keys, per_min = 2000, 5, 1200   # ideal: 2000 / (5 * 1200/min) = 20 s

    def make(env):
        p = provider(env, "pdl", keys, requests_per_minute=per_min)
        return {"log_level": "warn", "accounts_default": HIGH_LIMITS, "providers": [p],
                "limits": {"body_max_bytes": 10485760},
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]},
                "rotation": {"strategy": "round_robin"},
                "worker": {"concurrency": 16, "claim_batch": 16, "poll_ms": 50, "lease_s": 30,
                           "heartbeat_s": 5}}
    with Env(conf=make, sim=True, env=keys_env("pdl", keys)) as env:
        for i in range(1, keys + 1):
            env.sim.limits(provider="pdl", key=secret("pdl", i), per_minute=per_min)
        key = client_key(env)
        recs = [{"email": f"row{i}.person@acme{i % 11}.com"} for i in range(n)]
        r = env.request("POST", "/enrich/enqueue", json_body={"records": recs, "enrich": ["title"]},
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 202, r
        job = r.json()["job_id"]
        t0 = time.time()
        for _ in range(workers):
            env.start_worker()

        def done():
            s = env.request("GET", f"/enrich/jobs/{job}",
                            headers={"Authorization": "Bearer " + key}).json()
            return s if s["status"] == "completed" else None
        s = wait_for(done, timeout=600, interval=0.2, what="the batch")
        elapsed = time.time() - t0
        calls = env.sim.stats()
        total = calls.get("total", 0)
        n429 = sum(v.get("status", {}).get("429", 0) for v in calls.get("by_key", {}).values())
    ideal = n / (keys * per_min / 60)
    out.append(f"| {n} rows, {keys} keys x {per_min}/min, {workers} worker process"
               f"{'es' if workers > 1 else ''} | {elapsed:.1f} s | {ideal:.1f} s | "
               f"{elapsed / ideal * 100:.0f}% | {n429} of {total} ({n429 / max(total, 1) * 100:.2f}%) "
               f"| {s['done']} done, {s['failed']} failed |")


def bench_batch_two_hosts(a, out, per_host=2):
    """(c') the same batch on two hosts (two nginx + enrichd pairs) with per_host
    workers each, on one PostgreSQL: pacing and claims shared through the store."""
    n, keys, per_min = 2000, 5, 1200

    def make(env):
        p = provider(env, "pdl", keys, requests_per_minute=per_min)
        return {"log_level": "warn", "accounts_default": HIGH_LIMITS, "providers": [p],
                "limits": {"body_max_bytes": 10485760},
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]},
                "rotation": {"strategy": "round_robin"},
                "worker": {"concurrency": 16, "claim_batch": 16, "poll_ms": 50, "lease_s": 30,
                           "heartbeat_s": 5}}
    url = pg_database()
    e = keys_env("pdl", keys)
    with Env(conf=make, sim=True, env=e, store_url=url) as ha:
        with Env(conf=make, share_sim=ha, env=e, store_url=url) as hb:
            for i in range(1, keys + 1):
                ha.sim.limits(provider="pdl", key=secret("pdl", i), per_minute=per_min)
            key = client_key(ha)
            recs = [{"email": f"row{i}.person@acme{i % 11}.com"} for i in range(n)]
            r = ha.request("POST", "/enrich/enqueue", json_body={"records": recs, "enrich": ["title"]},
                           headers={"Authorization": "Bearer " + key})
            assert r.status == 202, r
            job = r.json()["job_id"]
            t0 = time.time()
            for _ in range(per_host):
                ha.start_worker()
                hb.start_worker()

            def done():
                s = hb.request("GET", f"/enrich/jobs/{job}",
                               headers={"Authorization": "Bearer " + key}).json()
                return s if s["status"] == "completed" else None
            s = wait_for(done, timeout=600, interval=0.2, what="the batch")
            elapsed = time.time() - t0
            calls = ha.sim.stats()
            total = calls.get("total", 0)
            n429 = sum(v.get("status", {}).get("429", 0) for v in calls.get("by_key", {}).values())
    ideal = n / (keys * per_min / 60)
    out.append(f"| {n} rows, {keys} keys x {per_min}/min, 2 hosts x {per_host} workers, PostgreSQL | "
               f"{elapsed:.1f} s | {ideal:.1f} s | {elapsed / ideal * 100:.0f}% | "
               f"{n429} of {total} ({n429 / max(total, 1) * 100:.2f}%) | "
               f"{s['done']} done, {s['failed']} failed |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--only", default="")
    ap.add_argument("--soak-seconds", type=int, default=0)
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    want = (lambda k: not only or k in only)
    print(f"# enrichd benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, wrk, {a.seconds} s per case)\n")
    out, rss = list(HEAD), {}
    if want("hit") or want("health"):
        bench_responder(a, out, rss)
    if want("pg"):
        bench_pg(a, out)
    if want("latency"):
        bench_latency(a, out, rss)
    print("\n".join(out))
    if rss:
        print("\nResponder peak RSS (VmHWM): " +
              "; ".join(f"{k}: {v / 1024:.1f} MiB" for k, v in rss.items()) + ".")
    if want("batch") or want("batch2"):
        bout = ["\n| batch | time | ideal N/(5R) | time / ideal | 429 answers | rows |",
                "|---|---:|---:|---:|---:|---|"]
        if want("batch"):
            bench_batch(a, bout, 1)
            bench_batch(a, bout, 2)
        if want("batch2"):
            bench_batch_two_hosts(a, bout)
        print("\n".join(bout))
    if a.soak_seconds or "soak" in only:
        if not a.soak_seconds:
            a.soak_seconds = 60
        sout = []
        bench_soak(a, sout, rss)
        print("\n".join(sout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
