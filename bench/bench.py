#!/usr/bin/env python3
"""enrichd benchmark harness (make bench).

Starts the real nginx + enrichd (+ enrich-worker and the provider simulator) from
the integration harness, drives them with wrk, and prints Markdown tables.  Every
responder comparison is made in one run against a do-nothing libfcgi responder
(bench/nullfcgi.c) behind the same nginx configuration, so the ratio means something
on any machine.

The latency cases use bench/fastup.c as the provider (a PDL stand-in in C that
answers after a fixed delay): the Python simulator tops out near ten thousand
answers a second on two cores, the very ceiling the 100 ms case is judged against.
Its "alone" row shows the stand-in is not the bottleneck.

    bench/bench.py [--seconds 10] [--conns 64] [--rounds 3]
                   [--only hit,health,pg,upstream,latency,c5000,batch,batch2,soak,economics]
                   [--soak-seconds 600] [--perf FILE] [--perf-seconds 10] [--perf-dwarf]

Cases: hit (cache-hit POST /enrich and /health at --conns, against the null
responder), upstream (wrk straight at the provider stand-ins), latency (1,000
clients, provider 100 ms away, against the null responder at 1,000 connections),
c5000 (5,000 clients, provider 1 s away: errors, RSS, threads), batch (5 paced keys;
1 and 2 workers at concurrency 16, 1 worker at concurrency 200), batch2 (the batch on
two hosts, two nginx + enrichd pairs with two workers each, on one PostgreSQL), pg (the
cache-hit case with the store on PostgreSQL, the tests' throw-away server, against
SQLite in the same run), soak (mixed hit and
miss at 1,000 clients for --soak-seconds, RSS every 30 s; only when asked for),
economics (what paying once saves, counted at the simulator: upstream calls per 100
rows of a job with bulk off and on, PDL and Lusha; company lookups against distinct
companies; credits spent by 50 concurrent requests against a budget of 20).
--perf FILE records the responder with `perf record -g` during the latency case
(build with frame pointers: make BUILD=build-perf CFLAGS="-O2 -g -fno-omit-frame-pointer",
then BUILD=build-perf bench/bench.py --only latency --perf FILE).
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from harness import BUILD, Env, FastUp, deep_merge, pg_database, wait_for  # noqa: E402
from providers import client_key, keys_env, provider, secret  # noqa: E402

NULLFCGI = os.path.join(BUILD, "bench", "nullfcgi")
BACKLOG = 4096   # enrichd's listen_backlog and the null responder's, in every case
HIGH_LIMITS = {"requests_per_minute": 1000000000, "burst": 1000000000,
               "records_per_hour": 1000000000000, "records_per_day": 1000000000000}


def wrk(port, path, seconds, conns, threads=2, script=None, timeout="10s", env=None,
        scheme="https", headers=()):
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
           "--timeout", timeout]
    for h in headers:
        cmd += ["-H", h]
    # RUN makes the "unique" scripts' records differ from one wrk run to the next.
    env = dict(env or os.environ, RUN=str(time.time_ns()))
    if script:
        cmd += ["-s", os.path.join(HERE, script)]
    cmd.append(f"{scheme}://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    res = {"raw": out, "rps": 0.0, "p50": None, "p99": None, "errors": 0, "non2xx": 0,
           "requests": 0, "timeout": timeout}
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
        res["socket"] = tuple(int(x) for x in m.groups())
    return res


def error_kinds(r):
    """What the errors of a wrk run were, for a row's notes ("" when none)."""
    if r["errors"] + r["non2xx"] == 0:
        return ""
    c, rd, w, t = r.get("socket", (0, 0, 0, 0))
    return (f"; errors: {c} connect, {rd} read, {w} write, {t} timeout (over "
            f"{r.get('timeout', '?')}), {r['non2xx']} non-2xx")


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f} ms"


def row(name, r, extra=""):
    return (f"| {name} | {r['rps']:.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
            f"{r['errors'] + r['non2xx']} | {extra} |")


HEAD = ["| case | requests/s | p50 | p99 | errors | notes |", "|---|---:|---:|---:|---:|---|"]


def swap_to_null(env, threads):
    """Stop enrichd (or an earlier null responder) and start the do-nothing
    responder on the same socket."""
    env.stop_enrichd()
    if os.path.exists(env.socket):
        os.unlink(env.socket)
    p = subprocess.Popen([NULLFCGI, env.socket, str(threads), str(BACKLOG)])
    wait_for(lambda: os.path.exists(env.socket), what="nullfcgi socket")
    return p


def stop(p):
    p.terminate()
    p.wait()


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Samples a process's VmRSS and thread count every interval seconds."""

    def __init__(self, pid, interval=1.0):
        self.pid, self.interval = pid, interval
        self.samples = []   # (seconds since start, rss kB, threads)
        self.stop_flag = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.time()
        while True:
            try:
                self.samples.append((time.time() - t0, rss_kb(self.pid, "VmRSS"),
                                     rss_kb(self.pid, "Threads")))
            except (OSError, ValueError):
                return
            if self.stop_flag.wait(self.interval):
                return

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop_flag.set()
        self.t.join()

    def max_rss(self):
        return max((s[1] for s in self.samples), default=0)

    def max_threads(self):
        return max((s[2] for s in self.samples), default=0)


# Responder threads of the latency rows: requests that wait on the provider
# hold none, so the default is enough.
ENRICHD_THREADS = 8


def fast_conf(up, threads):
    """enrichd with one PDL provider (2 keys) at the fast stand-in."""
    def make(env):
        p = {"name": "pdl", "kind": "pdl", "base_url": up.url(), "timeout_ms": 5000,
             "keys": [{"id": f"pdl-{i}", "secret": f"env:PDL_KEY_{i}"} for i in (1, 2)]}
        if up.tls:
            p["ca_file"] = up.cert
        return {"threads": threads, "listen_backlog": BACKLOG, "log_level": "warn",
                "accounts_default": HIGH_LIMITS, "providers": [p],
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]}}
    return make


def hit_conf(threads=64):
    def make(env):
        return {"threads": threads, "listen_backlog": BACKLOG, "log_level": "warn",
                "accounts_default": HIGH_LIMITS,
                "providers": [provider(env, "pdl", 2)],
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]}}
    return make


def null_baselines(env, thread_counts, conns, script, seconds, wenv):
    """Swap the do-nothing responder in at each thread count and measure it; returns
    the results by thread count and the best count."""
    nulls = {}
    for t in thread_counts:
        null = swap_to_null(env, t)
        try:
            wrk(env.https_port, "/enrich", 2, conns, script=script, env=wenv)  # warm-up
            nulls[t] = wrk(env.https_port, "/enrich", seconds, conns, script=script, env=wenv)
        finally:
            stop(null)
    return nulls, max(nulls, key=lambda t: nulls[t]["rps"])


def baseline_rows(out, label, nulls, best):
    for t, nr in sorted(nulls.items()):
        out.append(row(f"{label}, do-nothing libfcgi responder, {t} threads", nr,
                       "baseline (best)" if t == best else ""))


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def bench_responder(a, out, rss):
    """(a) /health and cache-hit POST /enrich against the do-nothing responder:
    enrichd at its default thread count, the do-nothing responder at 8 and at 64
    threads (the better one is each round's baseline).  The machine's speed drifts
    over minutes, so the comparison is made in --rounds alternating rounds (enrichd,
    then both baselines, then enrichd again) and the ratio is the median of the
    rounds' ratios; the rows show each side's median."""
    with Env(conf=hit_conf(ENRICHD_THREADS), sim=True, env=keys_env("pdl", 2)) as env:
        key = client_key(env)
        wenv = dict(os.environ, KEY=key)
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@acme.com",
                                                      "enrich": ["first_name", "title", "phone"]},
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 200, r
        hits, rounds, health = [], [], None
        for i in range(a.rounds):
            if i:
                env.start_enrichd()
            # warm-up: the first round also warms nginx and the machine
            wrk(env.https_port, "/enrich", 2 if i else a.seconds, a.conns,
                script="enrich_hit.lua", env=wenv)
            hits.append(wrk(env.https_port, "/enrich", a.seconds, a.conns,
                            script="enrich_hit.lua", env=wenv))
            if i == 0:
                health = wrk(env.https_port, "/health", a.seconds, a.conns)
                rss["after cache-hit and /health load"] = rss_kb(env.enrichd.pid)
            rounds.append(null_baselines(env, (8, 64), a.conns, "enrich_hit.lua", a.seconds, wenv))
    ratios = [h["rps"] / n[b]["rps"] * 100 for h, (n, b) in zip(hits, rounds) if n[b]["rps"]]
    hit = dict(hits[0], **{k: median([h[k] for h in hits]) for k in ("rps", "p50", "p99")},
               errors=sum(h["errors"] for h in hits), non2xx=sum(h["non2xx"] for h in hits))
    nulls = {t: dict(rounds[0][0][t], **{k: median([n[t][k] for n, _ in rounds])
                                         for k in ("rps", "p50", "p99")})
             for t in rounds[0][0]}
    best = max(nulls, key=lambda t: nulls[t]["rps"])
    each = ", ".join(f"{v:.0f}%" for v in ratios)
    out.append(row(f"POST /enrich, cache hit, auth + rate limit (enrichd, {ENRICHD_THREADS} threads)",
                   hit, f"{median(ratios):.0f}% of the baseline (median of {len(ratios)} "
                   f"alternating rounds: {each})" if ratios else ""))
    out.append(row("GET /health (enrichd)", health,
                   f"{health['rps'] / nulls[best]['rps'] * 100:.0f}% of the baseline"
                   if nulls[best]["rps"] else ""))
    baseline_rows(out, "same requests", nulls, best)
    return hit, nulls[best]


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


def bench_upstream(a, out):
    """The provider stand-ins alone: wrk straight at them, at 1,000 connections (what
    the latency case needs: 10,000/s) and at 4,000 (their headroom: 40,000/s)."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="enrichd-bench-")
    path, hdr = "/pdl/v5/person/enrich?email=a@b.c", ["X-Api-Key: pdl-secret-0001"]
    up = FastUp(tmp, 100)
    try:
        for c in (1000, 4000):
            c0 = cpu_s(up.proc.pid)
            r = wrk(up.port, path, a.seconds, c, scheme="http", headers=hdr)
            cpu = (cpu_s(up.proc.pid) - c0) / max(r["requests"], 1) * 1e6
            out.append(row(f"bench/fastup alone (wrk straight at it), 100 ms, {c:,} connections",
                           r, f"{r['rps'] / (c * 10) * 100:.0f}% of the {c * 10}/s the latency "
                           f"allows; {cpu:.0f} us CPU per answer"))
    finally:
        up.close()
    with Env(sim=True, sim_delay_ms=100, start=False) as env:
        for c in (1000, 4000):
            c0 = cpu_s(env.sim.proc.pid)
            r = wrk(env.sim.port, path, a.seconds, c, scheme="http", headers=hdr)
            cpu = (cpu_s(env.sim.proc.pid) - c0) / max(r["requests"], 1) * 1e6
            out.append(row(f"tests/sim/providersim.py alone, 100 ms, {c:,} connections", r,
                           f"{r['rps'] / (c * 10) * 100:.0f}% of {c * 10}/s; {cpu:.0f} us CPU "
                           "per answer"))


def cpu_s(pid):
    """User + system CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def perf_record(a, pid):
    """perf record the responder for --perf-seconds: frame-pointer call graphs (-g; the
    responder built with -fno-omit-frame-pointer), or DWARF ones (--perf-dwarf) that
    also walk the system libraries, built without frame pointers."""
    graph = ["--call-graph", "dwarf,16384"] if a.perf_dwarf else ["-g"]
    return subprocess.Popen(["perf", "record", *graph, "-F", "999", "-p", str(pid), "-o", a.perf,
                             "--", "sleep", str(a.perf_seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def latency_over_tls_h2(a, tmp):
    """The 1,000-client case with the provider as real ones are: over TLS, HTTP/2."""
    up = FastUp(tmp, 100, h2=True)
    try:
        with Env(conf=fast_conf(up, ENRICHD_THREADS), env=keys_env("pdl", 2)) as env:
            wenv = dict(os.environ, KEY=client_key(env))
            wrk(env.https_port, "/enrich", 2, 1000, script="enrich_unique.lua", env=wenv)
            return wrk(env.https_port, "/enrich", a.seconds, 1000, script="enrich_unique.lua",
                       env=wenv), up
    finally:
        up.close()


def bench_latency(a, out, rss, threads_seen):
    """1,000 concurrent clients, provider 100 ms away, never in the cache; then the
    null responder at 1,000 connections behind the same nginx (several thread counts,
    the best is the baseline); then the same clients with the provider over TLS and
    HTTP/2."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="enrichd-bench-")
    up = FastUp(tmp, 100)
    try:
        with Env(conf=fast_conf(up, ENRICHD_THREADS), env=keys_env("pdl", 2)) as env:
            key = client_key(env)
            wenv = dict(os.environ, KEY=key)
            wrk(env.https_port, "/enrich", 2, 1000, script="enrich_unique.lua", env=wenv)
            perf = perf_record(a, env.enrichd.pid) if a.perf else None
            with Sampler(env.enrichd.pid) as smp:
                r = wrk(env.https_port, "/enrich", a.seconds, 1000, script="enrich_unique.lua",
                        env=wenv)
            if perf:
                perf.wait()
            rss["after 1,000 concurrent clients (provider 100 ms)"] = rss_kb(env.enrichd.pid)
            threads_seen["1,000 clients"] = smp.max_threads()
            nulls, best = null_baselines(env, (8, 64, 1100), 1000, "enrich_unique.lua",
                                         a.seconds, wenv)
    finally:
        up.close()
    r2, up2 = latency_over_tls_h2(a, tmp)
    base = nulls[best]["rps"]
    bound = min(10000.0, base)
    for how, res, u in (("", r, up), (", over TLS with HTTP/2", r2, up2)):
        out.append(row(f"POST /enrich, 1,000 clients, provider 100 ms away{how} (enrichd, "
                       f"{ENRICHD_THREADS} responder threads)",
                       res, f"{res['rps'] / bound * 100:.0f}% of min(10000/s, null at 1,000) = "
                       f"{bound:.0f}/s; p99 {'under' if (res['p99'] or 1e9) < 250 else 'over'} "
                       f"250 ms; {u.connections} connections to the provider"))
    baseline_rows(out, "same load", nulls, best)
    return r, base


def raise_backlogs(want=16384):
    """5,000 clients connecting at once overflow the kernel's default accept
    queues (net.core.somaxconn 4096, tcp_max_syn_backlog 2048): nginx's and the
    stand-in provider's listens then drop connections, and clients retry their
    SYNs seconds later. Raise both when we may (root); say what they are."""
    got = []
    for name in ("net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog"):
        path = "/proc/sys/" + name
        try:
            with open(path) as f:
                cur = int(f.read())
            if cur < want:
                with open(path, "w") as f:
                    f.write(str(want))
                cur = want
        except (OSError, ValueError):
            cur = None
        got.append(f"{name.split('/')[-1]} {cur if cur is not None else 'unknown'}")
    return ", ".join(got)


# How the c5000 case's stand-in speaks: the target's row first (plain HTTP/1.1, as
# every latency row), then a provider as real ones are, over TLS, with HTTP/2 and
# without.
C5000_UPSTREAMS = (("plain HTTP/1.1", {}), ("TLS, HTTP/2", {"h2": True}),
                   ("TLS, HTTP/1.1", {"tls": True}))


def bench_c5000(a, out, rss, threads_seen):
    """5,000 concurrent clients, provider 1 s away: errors, RSS, threads (vs 10), with the
    provider over plain HTTP/1.1, then over TLS with HTTP/2 and with HTTP/1.1."""
    import tempfile
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    backlogs = raise_backlogs()
    tmp = tempfile.mkdtemp(prefix="enrichd-bench-")
    env_vars = dict(keys_env("pdl", 2), WORKER_CONNECTIONS="16384", LISTEN_BACKLOG="16384")
    for i, (how, kw) in enumerate(C5000_UPSTREAMS):
        up = FastUp(tmp, 1000, **kw)
        try:
            with Env(conf=fast_conf(up, ENRICHD_THREADS), env=env_vars) as env:
                key = client_key(env)
                wenv = dict(os.environ, KEY=key)
                with Sampler(env.enrichd.pid) as s10:
                    r10 = wrk(env.https_port, "/enrich", 5, 10, script="enrich_unique.lua",
                              env=wenv)
                with Sampler(env.enrichd.pid) as s5k:
                    r = wrk(env.https_port, "/enrich", max(a.seconds, 20), 5000, threads=2,
                            script="enrich_unique.lua", env=wenv, timeout="15s")
                rss[f"after 5,000 concurrent clients (provider 1 s, {how})"] = \
                    rss_kb(env.enrichd.pid)
        finally:
            up.close()
        if i == 0:
            threads_seen["10 clients"] = s10.max_threads()
            threads_seen["5,000 clients"] = s5k.max_threads()
            out.append(row("POST /enrich, 10 clients, provider 1 s away", r10,
                           f"{s10.max_threads()} responder threads"))
        target = " (target < 128)" if i == 0 else ""
        out.append(row(f"POST /enrich, 5,000 clients, provider 1 s away, {how} (enrichd, "
                       f"{ENRICHD_THREADS} responder threads)", r,
                       f"RSS max {s5k.max_rss() / 1024:.0f} MiB{target}; "
                       f"{up.connections} connections to the provider; "
                       f"{s5k.max_threads()} threads (at 10 clients: {s10.max_threads()}); "
                       f"nofile limit {hard}; {backlogs}, nginx backlog 16384{error_kinds(r)}"))


def bench_soak(a, out):
    """Mixed hit/miss load at 1,000 clients for --soak-seconds, provider 100 ms away;
    RSS every 30 s."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="enrichd-bench-")
    up = FastUp(tmp, 100)
    try:
        with Env(conf=fast_conf(up, ENRICHD_THREADS), env=keys_env("pdl", 2)) as env:
            key = client_key(env)
            wenv = dict(os.environ, KEY=key)
            with Sampler(env.enrichd.pid, interval=30) as smp:
                r = wrk(env.https_port, "/enrich", a.soak_seconds, 1000, script="enrich_mixed.lua",
                        env=wenv, timeout="10s")
            samples = smp.samples
    finally:
        up.close()
    out.append(row(f"soak: {a.soak_seconds} s mixed hit/miss, 1,000 clients, provider 100 ms", r,
                   ""))
    rs = [x[1] for x in samples]
    first, last = rs[0], rs[-1]
    out.append("\nSoak RSS every 30 s (kB): " + ", ".join(str(x) for x in rs))
    # RSS moves with the number of requests in flight at the moment of each
    # sample, so flatness is the trend: the least-squares slope of the samples
    # after the first minute, against how far they spread.
    warm = rs[2:] if len(rs) > 4 else rs
    n = len(warm)
    xs = [30 * i for i in range(n)]
    mx, my = sum(xs) / n, sum(warm) / n
    den = sum((x - mx) ** 2 for x in xs) or 1
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, warm)) / den  # kB per s
    out.append(f"first {first} kB, last {last} kB, max {max(rs)} kB; after the first minute: "
               f"mean {my / 1024:.1f} MiB, spread {min(warm) / 1024:.1f}-{max(warm) / 1024:.1f} MiB, "
               f"trend {slope * 600 / 1024:+.1f} MiB per 10 min "
               f"({slope * 600 / max(my, 1) * 100:+.1f}% of the mean).")


def bench_batch(a, out, workers, concurrency=16):
    """2,000 rows, 5 keys each limited by the provider to R/min."""
    n, keys, per_min = 2000, 5, 1200   # ideal: 2000 / (5 * 1200/min) = 20 s

    def make(env):
        p = provider(env, "pdl", keys, requests_per_minute=per_min)
        return {"log_level": "warn", "accounts_default": HIGH_LIMITS, "providers": [p],
                "limits": {"body_max_bytes": 10485760},
                "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                              "company": ["pdl"]},
                "rotation": {"strategy": "round_robin"},
                "worker": {"concurrency": concurrency, "claim_batch": min(concurrency, 64),
                           "poll_ms": 50, "lease_s": 30, "heartbeat_s": 5}}
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
        procs = [env.start_worker() for _ in range(workers)]
        smp = Sampler(procs[0].pid)
        smp.__enter__()

        def done():
            s = env.request("GET", f"/enrich/jobs/{job}",
                            headers={"Authorization": "Bearer " + key}).json()
            return s if s["status"] == "completed" else None
        s = wait_for(done, timeout=600, interval=0.2, what="the batch")
        elapsed = time.time() - t0
        smp.__exit__()
        calls = env.sim.stats()
        total = calls.get("total", 0)
        n429 = sum(v.get("status", {}).get("429", 0) for v in calls.get("by_key", {}).values())
    ideal = n / (keys * per_min / 60)
    out.append(f"| {n} rows, {keys} keys x {per_min}/min, {workers} worker process"
               f"{'es' if workers > 1 else ''}, concurrency {concurrency} | {elapsed:.1f} s | {ideal:.1f} s | "
               f"{elapsed / ideal * 100:.0f}% | {n429} of {total} ({n429 / max(total, 1) * 100:.2f}%) "
               f"| {s['done']} done, {s['failed']} failed | {smp.max_threads()} threads, "
               f"{smp.max_rss() / 1024:.0f} MiB |")


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
               f"{s['done']} done, {s['failed']} failed | - |")


def econ_conf(kind, bulk, companies=False, budget=0):
    def make(env):
        p = provider(env, kind, 2, bulk={"enabled": bulk, "batch_size": 100, "linger_ms": 50})
        c = {"log_level": "warn", "accounts_default": dict(HIGH_LIMITS, credits_per_day=budget),
             "providers": [p], "limits": {"body_max_bytes": 10485760},
             "waterfall": {g: [kind] for g in ("person", "phone", "email", "company")},
             "rotation": {"strategy": "round_robin"},
             "worker": {"concurrency": 4 if not bulk else 1, "claim_batch": 100,
                        "batch_rows": 100, "poll_ms": 50, "lease_s": 30, "heartbeat_s": 5}}
        return c
    return make


def econ_job(kind, n, bulk, fields, emails):
    with Env(conf=econ_conf(kind, bulk), sim=True, env=keys_env(kind, 2), worker=True) as env:
        key = client_key(env)
        r = env.request("POST", "/enrich/enqueue",
                        json_body={"records": [{"email": e} for e in emails], "enrich": fields},
                        headers={"Authorization": "Bearer " + key})
        assert r.status == 202, r
        job = r.json()["job_id"]

        def done():
            s = env.request("GET", f"/enrich/jobs/{job}",
                            headers={"Authorization": "Bearer " + key}).json()
            return s if s["status"] == "completed" else None
        s = wait_for(done, timeout=600, interval=0.2, what="the job")
        calls = env.sim.calls(provider=kind)
    return s, calls


def bench_economics(a, out):
    """What paying once saves, counted at the simulator."""
    out.append("\n| economics | upstream calls | per 100 rows | notes |")
    out.append("|---|---:|---:|---|")
    n = 1000
    emails = [f"e{i}.row@firm{i % 37}.com" for i in range(n)]
    for kind in ("pdl", "lusha"):
        for bulk in (False, True):
            s, calls = econ_job(kind, n, bulk, ["first_name", "title"], emails)
            out.append(f"| {n} rows on {kind}, bulk {'on' if bulk else 'off'} | {len(calls)} | "
                       f"{len(calls) / n * 100:.1f} | {s['done']} done, {s['credits_used']} "
                       f"credits |")
    rows, companies = 300, 6
    emails = [f"u{i}.x@corp{i % companies}.com" for i in range(rows)]
    s, calls = econ_job("pdl", rows, False, ["first_name", "company_revenue", "technologies"],
                        emails)
    comp = [c for c in calls if "/company" in c["path"]]
    out.append(f"| {rows} rows over {companies} companies (company lookups) | {len(comp)} | "
               f"{len(comp) / rows * 100:.1f} | {companies} distinct companies; "
               f"{len(calls) - len(comp)} person calls |")
    # 50 concurrent requests against a budget of 20 credits.
    import threading
    with Env(conf=econ_conf("pdl", False, budget=20), sim=True, env=keys_env("pdl", 2),
             sim_delay_ms=200) as env:
        key = client_key(env)
        res, go = [], threading.Event()

        def one(i):
            c = env.new_client()
            go.wait(10)
            r = c.request("POST", "/enrich", headers={"Authorization": "Bearer " + key},
                          json_body={"email": f"b{i}.x@acme{i}.com", "enrich": ["title"]})
            res.append(r)
            c.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in ts:
            t.start()
        go.set()
        for t in ts:
            t.join(60)
        spent = sum(c["credits"] or 0 for c in env.sim.calls(provider="pdl"))
        refused = sum(1 for r in res if r.status == 429)
    out.append(f"| 50 concurrent requests, account budget 20 credits | {spent} credits | - | "
               f"overshoot {max(spent - 20, 0)}; {refused} answered 429 budget_exceeded |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of the cache-hit comparison")
    ap.add_argument("--only", default="")
    ap.add_argument("--soak-seconds", type=int, default=0)
    ap.add_argument("--perf", default="", help="perf record the responder in the latency case")
    ap.add_argument("--perf-seconds", type=int, default=10)
    ap.add_argument("--perf-dwarf", action="store_true", help="DWARF call graphs")
    a = ap.parse_args()
    only = set(filter(None, a.only.split(",")))
    want = (lambda k: not only or k in only)
    # 5,000 clients need about 20,000 descriptors between wrk, nginx and the responder.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"# enrichd benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, wrk, {a.seconds} s per case)\n")
    out, rss, threads_seen = list(HEAD), {}, {}
    if want("hit") or want("health"):
        bench_responder(a, out, rss)
    if want("pg"):
        bench_pg(a, out)
    if want("upstream"):
        bench_upstream(a, out)
    if want("latency"):
        bench_latency(a, out, rss, threads_seen)
    if want("c5000"):
        bench_c5000(a, out, rss, threads_seen)
    if len(out) > len(HEAD):
        print("\n".join(out))
    if rss:
        print("\nResponder peak RSS (VmHWM): " +
              "; ".join(f"{k}: {v / 1024:.1f} MiB" for k, v in rss.items()) + ".")
    if threads_seen:
        print("Responder threads (most seen): " +
              "; ".join(f"{k}: {v}" for k, v in threads_seen.items()) + ".")
    if want("batch") or want("batch2"):
        bout = ["\n| batch | time | ideal N/(5R) | time / ideal | 429 answers | rows | "
                "worker (first) |", "|---|---:|---:|---:|---:|---|---|"]
        if want("batch"):
            bench_batch(a, bout, 1)
            bench_batch(a, bout, 2)
            bench_batch(a, bout, 1, concurrency=200)
        if want("batch2"):
            bench_batch_two_hosts(a, bout)
        print("\n".join(bout))
    if want("economics"):
        eout = []
        bench_economics(a, eout)
        print("\n".join(eout))
    if a.soak_seconds or "soak" in only:
        if not a.soak_seconds:
            a.soak_seconds = 600
        sout = list(HEAD)
        bench_soak(a, sout)
        print("\n" + "\n".join(sout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
