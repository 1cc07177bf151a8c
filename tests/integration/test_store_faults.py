"""The store failing for a while: rows are never left running, /health says degraded,
authenticated calls answer 503 `unavailable` with Retry-After, and everything comes back
when the store does.  The store is made unwritable by holding SQLite's write lock from
the test (BEGIN EXCLUSIVE) for longer than enrichd's busy timeout."""

import re
import sqlite3

from harness import ROOT, Env, Skip, check, deep_merge, wait_for
from providers import client_key, keys_env, provider

WORKER = {"concurrency": 4, "claim_batch": 4, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 5, "grace_s": 5}


def jobs_conf(env):
    return {"providers": [provider(env, "pdl", 2)],
            "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
            "worker": WORKER,
            # Writes blocked by the test's lock fail after 300 ms instead of 5 s.
            "store_busy_timeout_ms": 300}


class WriteLock:
    """Hold the database's write lock (readers still read: WAL)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)

    def __enter__(self):
        self.db.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *a):
        self.db.execute("ROLLBACK")
        self.db.close()
        return False


def row_states(path):
    db = sqlite3.connect(path, timeout=30)
    try:
        return dict(db.execute("SELECT state, count(*) FROM job_rows GROUP BY state").fetchall())
    finally:
        db.close()


def test_rows_never_stay_running_after_a_failed_result_write():
    with Env(conf=jobs_conf, sim=True, env=keys_env("pdl", 2)) as env:
        k = client_key(env)
        env.sim.config(delay_ms=300)
        n = 12
        r = env.request("POST", "/enrich/enqueue", headers={"Authorization": "Bearer " + k},
                        json_body={"records": [{"email": f"row{i}.person@acme.com"} for i in range(n)],
                                   "enrich": ["title"]})
        check(r.status == 202, r)
        w = env.start_worker()
        wait_for(lambda: len(env.sim.calls(provider="pdl")) >= 4, timeout=20, what="rows in flight")

        def worker_log():
            return open(w.logfile, errors="replace").read()
        failed_write = re.compile(r'mod=worker msg="job job_\w+ row \d+: the service cannot answer right now"')
        with WriteLock(env.db_path):
            # Rows finishing now cannot be written (each write waits out the
            # busy timeout, one at a time): hold on until one has failed.
            wait_for(lambda: failed_write.search(worker_log()), timeout=60,
                     what="a result write to fail")
        # Every row ends done within a few leases; none stays running.
        def settled():
            st = row_states(env.db_path)
            return st if st.get(2, 0) == n and st.get(1, 0) == 0 else None
        wait_for(settled, timeout=4 * WORKER["lease_s"] + 10,
                 what=f"all rows done, none running: {row_states(env.db_path)}")
        s = env.request("GET", f"/enrich/jobs/{r.json()['job_id']}",
                        headers={"Authorization": "Bearer " + k}).json()
        check(s["status"] == "completed" and s["done"] == n and s["failed"] == 0, s)
        check("given back to the queue" in worker_log(), worker_log()[-2000:])


def _unavailable(r):
    check(r.status == 503, r)
    e = r.json()["error"]
    check(e["code"] == "unavailable" and e["request_id"] == r.header("x-request-id"), r)
    check(r.header("retry-after") and int(r.header("retry-after")) >= 1, r)


def test_health_degraded_and_503_unavailable_while_the_store_takes_no_writes():
    with Env(conf={"store_busy_timeout_ms": 300}) as env:
        k = client_key(env, scopes="enrich,enqueue,admin")
        other = client_key(env, scopes="enrich,enqueue", account="other")
        h = env.request("GET", "/health")
        check(h.status == 200 and h.json()["store"] == "ok", h)
        with WriteLock(env.db_path):
            def degraded():
                r = env.request("GET", "/health")
                return r if r.status == 503 else None
            r = wait_for(degraded, timeout=30, what="/health to say degraded")
            b = r.json()
            check(b["status"] == "degraded" and b["store"] == "unavailable" and b["version"], b)
            check(set(b) == {"status", "version", "store"}, "no details beyond the contract")
            check(r.header("retry-after"), r)
            # Calls that must write (an account's first admission) wait out the busy
            # timeout and answer 503 unavailable with Retry-After, not 500.
            _unavailable(env.request("POST", "/enrich", json_body={"email": "john.doe@example.com"},
                                     headers={"Authorization": "Bearer " + k}))
            _unavailable(env.request("POST", "/enrich/enqueue",
                                     json_body={"records": [{"email": "john.doe@example.com"}]},
                                     headers={"Authorization": "Bearer " + other}))
        # Back when the store is.
        wait_for(lambda: env.request("GET", "/health").status == 200, timeout=30,
                 what="/health to be ok again")
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@example.com"},
                        headers={"Authorization": "Bearer " + k})
        check(r.status == 200, r)
        check("the store takes writes again" in env.log(), env.log()[-2000:])


def _sql(path, *stmts):
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        return [db.execute(s).fetchall() for s in stmts]
    finally:
        db.close()


def test_failed_counter_and_cache_writes_lose_nothing():
    """Key call counters and cache writes that the store refuses: the counters stay in
    memory until a write takes them, and a lost cache write is logged and counted."""
    from providers import secret  # noqa: F401 - the keys of keys_env
    with Env(conf=jobs_conf, sim=True, env=keys_env("pdl", 2)) as env:
        k = client_key(env, scopes="enrich,admin")
        a = {"Authorization": "Bearer " + k}
        _sql(env.db_path,
             "CREATE TRIGGER refuse_counts BEFORE UPDATE ON upstream_keys"
             " BEGIN SELECT RAISE(FAIL, 'test: counters refused'); END",
             "CREATE TRIGGER refuse_cache BEFORE INSERT ON cache"
             " BEGIN SELECT RAISE(FAIL, 'test: cache refused'); END")
        for i in range(3):
            r = env.request("POST", "/enrich", json_body={"email": f"p{i}.person@acme.com",
                                                          "enrich": ["title"]}, headers=a)
            check(r.status == 200 and r.json()["title"], r)
        m = env.request("GET", "/metrics", headers=a).text()
        check("enrichd_cache_write_failures_total 3" in m, m[:3000])
        check(env.log().count("answer not cached") == 3, env.log()[-3000:])
        # The counter flush (each second, and before this listing) keeps failing...
        env.wait_log(r"call counters of \d+ keys not written", timeout=10)
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys", headers=a).json()["keys"]}
        check(keys["pdl-1"]["calls"] + keys["pdl-2"]["calls"] == 3, keys)
        # ...and once the store takes them, they are written, once.
        _sql(env.db_path, "DROP TRIGGER refuse_counts", "DROP TRIGGER refuse_cache")

        def stored():
            rows = _sql(env.db_path, "SELECT sum(calls), sum(hits) FROM upstream_keys")[0]
            return rows[0] if rows and rows[0][0] == 3 else None
        got = wait_for(stored, timeout=10, what="the counters in the store")
        check(got == (3, 3), got)
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys", headers=a).json()["keys"]}
        check(keys["pdl-1"]["calls"] + keys["pdl-2"]["calls"] == 3, keys)
        # The answers were not cached, so they are asked again; now they are cached.
        r = env.request("POST", "/enrich", json_body={"email": "p0.person@acme.com",
                                                      "enrich": ["title"]}, headers=a)
        check(r.status == 200 and r.json()["_meta"]["cached"] is False, r)
        r = env.request("POST", "/enrich", json_body={"email": "p0.person@acme.com",
                                                      "enrich": ["title"]}, headers=a)
        check(r.status == 200 and r.json()["_meta"]["cached"] is True, r)


def test_rows_in_flight_cost_no_threads():
    """1,024 rows at a time under an address-space limit that 1,024 threads (8 MiB
    stacks each) could not fit in: the worker starts, because rows in flight wait on
    the engine's loop, and its thread count does not grow with its concurrency."""
    import os
    import subprocess

    from harness import WORKER as WORKER_BIN
    if "address" in os.environ.get("SAN", "") or "thread" in os.environ.get("SAN", ""):
        raise Skip("the sanitizers reserve terabytes of address space: no limit can be set")
    with Env(conf={"worker": {"concurrency": 1024}}, start=False) as env:
        log = os.path.join(env.tmp, "worker.out")
        with open(log, "wb") as out:
            p = subprocess.Popen(["prlimit", "--as=1000000000", WORKER_BIN, "-c", env.conf_path],
                                 stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_for(lambda: "started with 1024 rows at a time" in open(log).read(),
                     timeout=20, what="the worker to start")
            with open(f"/proc/{p.pid}/status") as f:
                threads = int([ln for ln in f if ln.startswith("Threads:")][0].split()[1])
            check(threads < 16, threads)
        finally:
            p.terminate()
            p.wait(30)
        check(p.returncode == 0, (p.returncode, open(log).read()[-800:]))


def test_worker_refuses_a_reload_whose_keys_cannot_be_recorded():
    import signal as sig

    def conf(env):
        c = jobs_conf(env)
        c["worker"] = WORKER
        return c
    with Env(conf=conf, sim=True, env=keys_env("pdl", 3)) as env:
        w = env.start_worker()

        def wlog():
            return open(w.logfile, errors="replace").read()
        wait_for(lambda: "started with" in wlog(), timeout=20, what="the worker")
        _sql(env.db_path, "CREATE TRIGGER refuse_keys BEFORE INSERT ON upstream_keys"
                          " BEGIN SELECT RAISE(FAIL, 'test: keys refused'); END")
        more = deep_merge(env.conf, {})
        more["providers"] = [provider(env, "pdl", 3)]
        env.write_conf(more)
        w.send_signal(sig.SIGHUP)
        wait_for(lambda: "reload refused" in wlog(), timeout=20, what="the reload verdict")
        check("could not be recorded" in wlog() and "reloaded" not in wlog(), wlog()[-1500:])
        check(w.poll() is None, "the worker stopped")
        # Once the store takes the keys, the same file reloads.
        _sql(env.db_path, "DROP TRIGGER refuse_keys")
        w.send_signal(sig.SIGHUP)
        wait_for(lambda: "msg=\"reloaded" in wlog(), timeout=20, what="the reload")
        ids = {r[0] for r in _sql(env.db_path, "SELECT id FROM upstream_keys")[0]}
        check("pdl-3" in ids, ids)
