"""Two hosts on one PostgreSQL database: host A and host B each have their own nginx,
enrichd, worker, temporary directory (state_dir included) and ports; they share the
store and the provider simulator.  Limits hold in total, revocation and key cooling
cross hosts, and a batch survives kill -9 of one host's worker.

Always on PostgreSQL (the session's server), whatever ENRICHD_TEST_STORE says."""

import contextlib
import json
import signal
import threading
import time

from harness import Env, check, deep_merge, pg_database, wait_for
from providers import calls_by_key, client_key, keys_env, provider, secret

PDL = "pdl"
WORKER = {"concurrency": 8, "claim_batch": 8, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 5, "grace_s": 5}


def pdl_conf(nkeys):
    def make(env):
        return {"providers": [provider(env, PDL, nkeys)],
                "waterfall": {g: [PDL] for g in ("person", "phone", "email", "company")},
                "rotation": {"strategy": "ordered"},
                "worker": WORKER,
                "threads": 16,
                "limits": {"body_max_bytes": 1048576}}
    return make


@contextlib.contextmanager
def two_hosts(nkeys=2, workers=False):
    url = pg_database()
    e = keys_env(PDL, nkeys)
    with Env(conf=pdl_conf(nkeys), sim=True, env=e, store_url=url) as a:
        with Env(conf=pdl_conf(nkeys), share_sim=a, env=e, store_url=url) as b:
            if workers:
                a.start_worker()
                b.start_worker()
            yield a, b


def bearer(k):
    return {"Authorization": "Bearer " + k}


def set_limits(env, account="acme", **limits):
    env.ctl("account", "create", account, check_rc=False)
    for k, v in limits.items():
        env.ctl("account", "set-limits", account, "--" + k.replace("_", "-"), str(v))


def test_30_clients_on_two_hosts_never_exceed_the_bucket():
    with two_hosts() as (a, b):
        set_limits(a, requests_per_minute=60, burst=50)
        k = client_key(a)
        results = {"a": [], "b": []}
        lock = threading.Lock()
        t0 = time.time()

        def client(env, name):
            c = env.new_client()
            got = [c.request("GET", "/admin/usage", headers=bearer(k)).status for _ in range(20)]
            c.close()
            with lock:
                results[name].extend(got)

        ts = [threading.Thread(target=client, args=(a if i % 2 else b, "a" if i % 2 else "b"))
              for i in range(30)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        elapsed = time.time() - t0
        allowed = {h: r.count(200) for h, r in results.items()}
        total = allowed["a"] + allowed["b"]
        every = results["a"] + results["b"]
        check(set(every) <= {200, 429}, set(every))
        check(allowed["a"] > 0 and allowed["b"] > 0, f"both hosts admitted some: {allowed}")
        # The bucket's arithmetic, in total: burst plus one token a second.
        check(50 <= total <= 50 + int(elapsed) + 1,
              f"admitted {total} ({allowed}) of {len(every)} in {elapsed:.1f}s")
        print(f"    30 clients on 2 hosts x 20 requests: admitted A {allowed['a']} + B "
              f"{allowed['b']} = {total} in {elapsed:.2f}s; the bucket allows "
              f"50 + {elapsed:.2f} = {50 + elapsed:.1f}")


def test_key_revoked_on_host_a_is_refused_on_host_b_within_a_second():
    with two_hosts() as (a, b):
        set_limits(a)
        p = a.ctl("key", "create", "acme", "--scopes", "admin", "--json")
        k = json.loads(p.stdout)
        check(b.request("GET", "/admin/usage", headers=bearer(k["key"])).status == 200)
        seen = []
        stop = threading.Event()

        def loop():
            c = b.new_client()
            while not stop.is_set():
                t = time.monotonic()
                seen.append((t, c.request("GET", "/admin/usage", headers=bearer(k["key"])).status))
            c.close()

        th = threading.Thread(target=loop)
        th.start()
        wait_for(lambda: len(seen) > 20, what="requests on B before the revocation")
        a.ctl("key", "revoke", str(k["id"]))      # on host A, with A's state directory
        revoked = time.monotonic()
        wait_for(lambda: any(s == 401 and t > revoked for t, s in seen), timeout=5,
                 what="a 401 on host B")
        first = min(t for t, s in seen if s == 401 and t > revoked)
        wait_for(lambda: len([1 for t, _ in seen if t > revoked + 1.0]) > 20,
                 what="requests on B a second after")
        stop.set()
        th.join(10)
        late = {s for t, s in seen if t > revoked + 1.0}
        print(f"    revoked on A; first 401 on B {1000 * (first - revoked):.0f} ms later")
        check(first - revoked < 1.0, f"B refused it only {first - revoked:.2f}s later")
        check(late == {401}, f"B answered {late} more than a second after the revocation")


def test_key_that_429s_on_host_a_is_not_called_by_host_b_until_its_deadline():
    with two_hosts(nkeys=2) as (a, b):
        k = client_key(a)
        a.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 4}])
        r = a.request("POST", "/enrich", json_body={"email": "a.one@acme.com", "enrich": ["title"]},
                      headers=bearer(k))
        check(r.status == 200 and r.json()["_meta"]["status"] == "complete", r)
        check(calls_by_key(a, PDL) == {secret(PDL, 1): 1, secret(PDL, 2): 1}, calls_by_key(a, PDL))
        t_cooled = time.time()
        a.sim.clear_calls()
        for i in range(5):
            r = b.request("POST", "/enrich", json_body={"email": f"b{i}.two@acme.com",
                                                        "enrich": ["title"]}, headers=bearer(k))
            check(r.status == 200, r)
        before = calls_by_key(b, PDL)
        check(before == {secret(PDL, 2): 5}, f"host B called the cooling key: {before}")
        # After the deadline host B may use it again (ordered: the first key first).
        wait_for(lambda: time.time() > t_cooled + 4.5, timeout=10, what="the deadline")
        a.sim.clear_calls()
        r = b.request("POST", "/enrich", json_body={"email": "b9.three@acme.com", "enrich": ["title"]},
                      headers=bearer(k))
        check(r.status == 200, r)
        check(calls_by_key(b, PDL) == {secret(PDL, 1): 1}, calls_by_key(b, PDL))


def test_2000_rows_with_worker_a_killed_three_times():
    n = 2000
    with two_hosts(nkeys=4, workers=False) as (a, b):
        k = client_key(a)
        a.sim.config(delay_ms=5)
        people = [{"email": f"p{i}.row@acme{i % 13}.com"} for i in range(n)]
        r = a.request("POST", "/enrich/enqueue", json_body={"records": people, "enrich": ["title"]},
                      headers=bearer(k))
        check(r.status == 202, r)
        job = r.json()["job_id"]

        def status():
            s = b.request("GET", f"/enrich/jobs/{job}", headers=bearer(k))
            check(s.status == 200, s)
            return s.json()

        def stored():
            s = b.request("GET", f"/enrich/jobs/{job}/results?format=ndjson", headers=bearer(k))
            check(s.status == 200, s)
            return [json.loads(line) for line in s.text().splitlines() if line]

        # A call is judged by the simulator's sequence number: for each row, the last
        # call number known when its stored result was first seen.  A later call for
        # that row would be a second payment.
        stored_mark, calls_in, kills = {}, {}, 0
        seen = {"seq": 0}

        def snapshot():
            rows = stored()                      # results first, then the calls so far
            for c in a.sim.calls(provider=PDL, since_seq=seen["seq"]):
                calls_in.setdefault(c["query"]["email"], []).append(c["seq"])
                seen["seq"] = max(seen["seq"], c["seq"])
            for row in rows:
                stored_mark.setdefault(row["input"]["email"], seen["seq"])
            return rows

        b.start_worker()
        for epoch in range(3):
            w = a.start_worker()
            target = (epoch + 1) * 500
            wait_for(lambda: status()["done"] >= target, timeout=120, what=f"{target} rows done")
            w.send_signal(signal.SIGKILL)
            w.wait()
            kills += 1
            snapshot()
        a.start_worker()
        s = wait_for(lambda: (lambda x: x if x["status"] == "completed" else None)(status()),
                     timeout=180, what="the job to complete")
        snapshot()
        rows = stored()
        check(s["done"] == n and s["failed"] == 0, s)
        check(sorted(x["row"] for x in rows) == list(range(1, n + 1)), "every row exactly once")
        repaid = [em for em, mark in stored_mark.items() if any(x > mark for x in calls_in.get(em, []))]
        check(repaid == [], f"rows paid for again after their result was stored: {repaid[:5]}")
        never = [p["email"] for p in people if p["email"] not in calls_in]
        check(never == [], f"rows never called: {never[:5]}")
        extra = sum(len(v) - 1 for v in calls_in.values())
        logs = "".join(open(p.logfile).read() for p in a.workers + b.workers)
        check(logs.count("started with") == 5, "worker B and four lives of worker A ran")
        print(f"    {n} rows, worker A killed {kills} times: 0 lost, 0 duplicated, "
              f"{sum(len(v) for v in calls_in.values())} upstream calls "
              f"({extra} repeated for rows in flight at a kill, none after a stored result)")
