"""The store failing for a while: rows are never left running, /health says degraded,
authenticated calls answer 503 `unavailable` with Retry-After, and everything comes back
when the store does.  The store is made unwritable by holding SQLite's write lock from
the test (BEGIN EXCLUSIVE) for longer than enrichd's busy timeout."""

import re
import sqlite3

from harness import Env, check, deep_merge, wait_for
from providers import client_key, keys_env, provider

WORKER = {"concurrency": 4, "claim_batch": 4, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 5, "grace_s": 5}


def jobs_conf(env):
    return {"providers": [provider(env, "pdl", 2)],
            "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
            "worker": WORKER}


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
    with Env() as env:
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
