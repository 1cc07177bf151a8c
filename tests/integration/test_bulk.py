"""Bulk calls for batches: the worker and enrich-batch send the person lookups of many
rows in one PDL /v5/person/bulk, Lusha POST /v2/person or Surfe enrichment call; items
map back by id, an item's miss or error is its row's, the call's 429 is the key's (the
rows go to another key); a worker killed during a bulk call loses nothing and pays again
only for that call.  Every check counts the simulator's calls."""

import csv
import io
import json
import os
import signal
import subprocess
import time
import urllib.parse

from harness import BATCH, Env, check, deep_merge, wait_for
from providers import client_key, keys_env, provider, secret

PERSON = ["first_name", "last_name", "title", "phone"]
WORKER = {"concurrency": 1, "claim_batch": 100, "batch_rows": 100, "lease_s": 20,
          "heartbeat_s": 2, "poll_ms": 50, "backoff_base_ms": 100, "backoff_max_ms": 400,
          "max_attempts": 3, "grace_s": 5}


def bulk_conf(kind="pdl", nkeys=2, bulk=None, worker=None, extra=None, waterfall=None):
    def make(env):
        b = {"enabled": True, "batch_size": 100, "linger_ms": 50}
        b.update(bulk or {})
        p = provider(env, kind, nkeys, bulk=b)
        c = {"providers": [p],
             "waterfall": waterfall or {g: [kind] for g in ("person", "phone", "email", "company")},
             "rotation": {"strategy": "round_robin"},
             "worker": dict(WORKER, **(worker or {}))}
        return deep_merge(c, extra or {})
    return make, keys_env(kind, nkeys)


def auth(k):
    return {"Authorization": "Bearer " + k}


def enqueue(env, k, records, enrich=PERSON):
    r = env.request("POST", "/enrich/enqueue", json_body={"records": records, "enrich": enrich},
                    headers=auth(k))
    check(r.status == 202, r)
    return r.json()["job_id"]


def status(env, k, job):
    r = env.request("GET", f"/enrich/jobs/{job}", headers=auth(k))
    check(r.status == 200, r)
    return r.json()


def wait_done(env, k, job, timeout=90):
    return wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(
        status(env, k, job)), timeout=timeout, what=f"job {job} to finish")


def results(env, k, job):
    r = env.request("GET", f"/enrich/jobs/{job}/results?format=ndjson", headers=auth(k))
    check(r.status == 200, r)
    return [json.loads(line) for line in r.text().splitlines() if line]


def people(n, prefix="p", companies=37):
    return [{"email": f"{prefix}{i}.lee@co{i % companies}.com"} for i in range(n)]


def expected(env, kind, email):
    q = urllib.parse.urlencode({"provider": kind, "kind": "person", "email": email})
    return env.sim._call("GET", "/_sim/expected?" + q)["fields"]


BULK_PATH = {"pdl": "/pdl/v5/person/bulk", "lusha": "/lusha/v2/person"}


def bulk_calls(env, kind):
    return [c for c in env.sim.calls(provider=kind) if c["path"] == BULK_PATH[kind]
            and c["method"] == "POST"]


def check_thousand(kind):
    make, e = bulk_conf(kind)
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        recs = people(1000) + [{"email": "missing.one@co1.com"}]
        job = enqueue(env, k, recs)
        s = wait_done(env, k, job)
        check(s["status"] == "completed" and s["done"] == 1001 and s["found"] == 1000 and
              s["not_found"] == 1 and s["failed"] == 0, s)
        calls = env.sim.calls(provider=kind)
        check(all(c["path"] == BULK_PATH[kind] for c in calls), {c["path"] for c in calls})
        check(len(calls) <= 11, f"{len(calls)} calls for 1001 rows")
        check(sum(c["items"] for c in calls) == 1001, [c["items"] for c in calls])
        check(s["credits_used"] == 1000 == sum(c["credits"] for c in calls), s)
        rows = results(env, k, job)
        check([x["row"] for x in rows] == list(range(1, 1002)), "results in input order")
        for i in (0, 517, 999):
            want = expected(env, kind, recs[i]["email"])
            got = rows[i]
            check(got["first_name"] == want["first_name"] and got["title"] == want["title"] and
                  got["phone"] == want["phone"], (got, want))
        check(rows[1000]["_status"] == "not_found", rows[1000])
        return len(calls)


def test_pdl_bulk_1000_rows_in_at_most_11_calls():
    n = check_thousand("pdl")
    print(f"  pdl: 1001 rows in {n} bulk calls")


def test_lusha_bulk_1000_rows_in_at_most_11_calls():
    n = check_thousand("lusha")
    print(f"  lusha: 1001 rows in {n} bulk calls")


def test_rows_of_concurrent_threads_share_bulk_calls():
    """Four threads, a hundred rows each round: the collector gathers their lookups
    into full calls."""
    make, e = bulk_conf("pdl", bulk={"linger_ms": 200},
                        worker={"concurrency": 4, "claim_batch": 100})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        job = enqueue(env, k, people(400, "t"))
        s = wait_done(env, k, job)
        check(s["done"] == 400 and s["found"] == 400, s)
        calls = bulk_calls(env, "pdl")
        check(len(calls) <= 6, [c["items"] for c in calls])
        check(max(c["items"] for c in calls) > 25, [c["items"] for c in calls])


def test_item_misses_and_errors_are_the_rows_own():
    make, e = bulk_conf("pdl", nkeys=1, worker={"max_attempts": 3})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        # In the first bulk call: item 3 misses, item 5 fails; the rest are hits.
        env.sim.script("pdl", secret("pdl", 1),
                       [{"kind": "default", "items": {"#3": "miss", "#5": "error"}}])
        recs = people(10, "m")
        job = enqueue(env, k, recs)
        s = wait_done(env, k, job)
        rows = results(env, k, job)
        check(rows[3]["_status"] == "not_found", rows[3])
        # The failed item is retried (an attempt spent) and found the second time.
        check(rows[5]["_status"] == "complete" and rows[5]["first_name"], rows[5])
        check(all(rows[i]["_status"] == "complete" for i in range(10) if i != 3), rows)
        calls = bulk_calls(env, "pdl")
        check(len(calls) == 2 and calls[0]["items"] == 10 and calls[1]["items"] == 1,
              [(c["items"], c["status"]) for c in calls])
        check(s["found"] == 9 and s["not_found"] == 1 and s["failed"] == 0, s)


def test_a_429_bulk_call_is_retried_on_another_key():
    make, e = bulk_conf("pdl", nkeys=2, extra={"rotation": {"strategy": "ordered"}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 120}])
        job = enqueue(env, k, people(50, "r"))
        s = wait_done(env, k, job)
        check(s["done"] == 50 and s["found"] == 50 and s["failed"] == 0, s)
        calls = bulk_calls(env, "pdl")
        check([(c["key"], c["status"], c["items"]) for c in calls] ==
              [(secret("pdl", 1), 429, 50), (secret("pdl", 2), 200, 50)],
              [(c["key"], c["status"], c["items"]) for c in calls])
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys",
                                                 headers=auth(k)).json()["keys"]}
        check(keys["pdl-1"]["state"] == "cooling", keys["pdl-1"])


def test_a_402_in_the_middle_of_a_bulk_call_moves_the_rest_to_another_key():
    """The account behind key 1 has credits for 30 records: items past them fail on their
    own (402), the key is parked, and those rows are found on key 2."""
    make, e = bulk_conf("pdl", nkeys=2, extra={"rotation": {"strategy": "ordered"}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.sim.limits(provider="pdl", key=secret("pdl", 1), credits=30)
        job = enqueue(env, k, people(50, "q"))
        s = wait_done(env, k, job)
        check(s["done"] == 50 and s["found"] == 50 and s["failed"] == 0, s)
        calls = bulk_calls(env, "pdl")
        check([(c["key"], c["items"], c["credits"]) for c in calls] ==
              [(secret("pdl", 1), 50, 30), (secret("pdl", 2), 20, 20)],
              [(c["key"], c["items"], c["credits"]) for c in calls])
        check(s["credits_used"] == 50, s)
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys",
                                                 headers=auth(k)).json()["keys"]}
        check(keys["pdl-1"]["state"] == "exhausted", keys["pdl-1"])


def test_kill_9_during_a_bulk_call_loses_nothing_and_repays_only_that_call():
    make, e = bulk_conf("pdl", nkeys=1, worker={"lease_s": 10, "heartbeat_s": 1})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.config(delay_ms=1500)
        w = env.start_worker()
        job = enqueue(env, k, people(300, "k"))
        # The second bulk call is on its way when the worker dies.
        wait_for(lambda: len(bulk_calls(env, "pdl")) >= 2, timeout=30, what="a second bulk call")
        w.send_signal(signal.SIGKILL)
        w.wait(10)
        before = bulk_calls(env, "pdl")
        env.sim.config(delay_ms=0)
        env.start_worker()
        s = wait_done(env, k, job)
        check(s["done"] == 300 and s["found"] == 300 and s["failed"] == 0, s)
        rows = results(env, k, job)
        check([x["row"] for x in rows] == list(range(1, 301)), "each row once, in order")
        # Every email sent, counted: the rows of calls that had answered are never sent
        # again; those of the calls in flight at the kill at most once more.
        sent = {}
        for c in bulk_calls(env, "pdl"):
            for rq in c["body"]["requests"]:
                em = rq["params"]["email"]
                sent[em] = sent.get(em, 0) + 1
        answered_before = set()
        for c in before[:1]:
            answered_before.update(rq["params"]["email"] for rq in c["body"]["requests"])
        twice = {em for em, n in sent.items() if n > 1}
        check(len(sent) == 300, len(sent))
        check(not (twice & answered_before), "a row of an answered call was paid again")
        in_flight = sum(c["items"] for c in before[1:])
        check(len(twice) <= in_flight, (len(twice), in_flight))
        print(f"  kill -9: {len(twice)} rows sent twice, {in_flight} were in flight")


def test_company_lookups_in_a_300_row_batch_over_6_companies():
    """The worker: at most one company lookup per company, whatever the threads."""
    make, e = bulk_conf("pdl", bulk={"enabled": False},
                        worker={"concurrency": 6, "claim_batch": 20})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        recs = [{"email": f"u{i}.x@firm{i % 6}.com"} for i in range(300)]
        job = enqueue(env, k, recs, enrich=["first_name", "company_revenue", "technologies"])
        s = wait_done(env, k, job)
        check(s["done"] == 300 and s["found"] == 300, s)
        comp = [c for c in env.sim.calls(provider="pdl") if "/company" in c["path"]]
        check(len(comp) <= 6, [c["query"] for c in comp])
        check({c["query"]["website"] for c in comp} == {f"firm{i}.com" for i in range(6)},
              [c["query"] for c in comp])
        print(f"  worker: {len(comp)} company lookups for 6 companies in 300 rows")


def write(env, name, text):
    p = os.path.join(env.tmp, name)
    with open(p, "w", newline="") as f:
        f.write(text)
    return p


def run_batch(env, *args):
    return subprocess.run([BATCH, "-c", env.conf_path, *args], env=env.environ(),
                          capture_output=True, text=True, timeout=300)


def test_enrich_batch_bulk_and_company_lookups():
    """enrich-batch: a 1,000-row file on PDL bulk in at most 11 person calls, one company
    lookup per company."""
    make, e = bulk_conf("pdl", worker={"concurrency": 4})
    with Env(conf=make, sim=True, env=e) as env:
        lines = ["email"] + [f"b{i}.ray@shop{i % 6}.com" for i in range(1000)]
        inp = write(env, "in.csv", "\r\n".join(lines) + "\r\n")
        out = os.path.join(env.tmp, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields",
                      "first_name,title,company_revenue", "--workers", "4")
        check(p.returncode == 0, p.stderr)
        rows = list(csv.reader(io.StringIO(open(out).read())))
        check(len(rows) == 1001 and all(r[-2] == "complete" for r in rows[1:]),
              [r for r in rows[1:] if r[-2] != "complete"][:3])
        person = bulk_calls(env, "pdl")
        comp = [c for c in env.sim.calls(provider="pdl") if "/company" in c["path"]]
        check(len(person) <= 11, [c["items"] for c in person])
        check(sum(c["items"] for c in person) == 1000, [c["items"] for c in person])
        check(len(comp) <= 6, [c["query"] for c in comp])
        print(f"  enrich-batch: 1000 rows in {len(person)} bulk calls, {len(comp)} company "
              f"lookups for 6 companies")


def test_surfe_enriches_many_people_in_one_job():
    make, e = bulk_conf("surfe", nkeys=1)

    def conf(env):
        c = make(env)
        c["providers"][0]["poll_interval_ms"] = 20
        return c
    with Env(conf=conf, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        recs = [{"linkedin_url": f"https://www.linkedin.com/in/ann-lee-{i}"} for i in range(40)]
        recs.append({"linkedin_url": "https://www.linkedin.com/in/missing-person"})
        job = enqueue(env, k, recs, enrich=["first_name", "title"])
        s = wait_done(env, k, job)
        check(s["done"] == 41 and s["found"] == 40 and s["not_found"] == 1, s)
        starts = [c for c in env.sim.calls(provider="surfe") if c["method"] == "POST"]
        check(len(starts) == 1 and starts[0]["items"] == 41, [c["items"] for c in starts])
        ids = {p["externalID"] for p in starts[0]["body"]["people"]}
        check(len(ids) == 41, ids)
        rows = results(env, k, job)
        check(rows[7]["first_name"] == "Ann" and rows[40]["_status"] == "not_found", rows[40])


def test_dry_run_estimates_rows_cache_calls_credits_and_time():
    """POST /enrich/enqueue?dry_run=true and enrich-batch --dry-run give the same figures:
    valid rows, cached rows, upstream calls and credits at most (bulk counted), and the time
    the key pool's pacing allows; nothing is created, called or spent."""
    def make(env):
        c, _ = bulk_conf("pdl", nkeys=2)
        conf = c(env)
        conf["providers"][0]["requests_per_minute"] = 60
        conf["accounts_default"] = {"credits_per_day": 5}
        return conf
    _, e = bulk_conf("pdl", nkeys=2)
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        lines = ["email,company"] + [f"e{i}.fox@corp{i % 6}.com,x" for i in range(300)] + \
                ["not-an-email,", ",Acme Inc"]
        body = "\r\n".join(lines) + "\r\n"
        r = env.request("POST", "/enrich/enqueue?dry_run=true&enrich=first_name,title,technologies",
                        body=body, headers=dict(auth(k), **{"Content-Type": "text/csv"}))
        check(r.status == 200, r)
        est = r.json()
        # 300 person lookups in 3 bulk calls, one company lookup per company, and the
        # row that names only a company looks that company up.
        want = {"dry_run": True, "total": 302, "rejected": 1, "valid": 301, "cached": 0,
                "needing_calls": 301, "upstream_calls_max": 3 + 7, "credits_max": 300 + 7}
        check({x: est[x] for x in want} == want, est)
        p = est["providers"]["pdl"]
        check(p["person_lookups_max"] == 300 and p["company_lookups_max"] == 7 and
              p["calls_max"] == 10 and p["bulk"] is True and p["requests_per_minute"] == 120, p)
        # Ten calls at 120 a minute: 5 s.
        check(est["eta_seconds"] == 5 and p["eta_seconds"] == 5, est)
        check(env.sim.calls() == [], "a dry run called a provider")
        check(env.sql("SELECT count(*) FROM jobs").strip() == "0", "a dry run created a job")
        usage = json.loads(env.ctl("usage", "acme", "--json").stdout)
        check(all(u["records"] == 0 and u["credits"] == 0 for u in usage), usage)
        st = json.loads(env.ctl("account", "budget", "acme", "--json").stdout)
        check(st["budgets"][0]["spent"] == 0 and st["budgets"][0]["held"] == 0, st)
        # JSON records too; an Idempotency-Key does not make a dry run a job.
        r = env.request("POST", "/enrich/enqueue?dry_run=true", headers=dict(
            auth(k), **{"Idempotency-Key": "same"}), json_body={
            "records": [{"email": "e1.fox@corp1.com"}, {"email": "bad@"}],
            "enrich": ["first_name"]})
        check(r.status == 200 and r.json()["valid"] == 1 and r.json()["rejected"] == 1 and
              r.json()["upstream_calls_max"] == 1, r)
        r = env.request("POST", "/enrich/enqueue?dry_run=maybe", headers=auth(k), json_body={
            "records": [{"email": "e1.fox@corp1.com"}]})
        check(r.status == 400 and r.json()["error"]["details"][0]["field"] == "dry_run", r)
        # enrich-batch --dry-run: the same figures from the same rows.
        inp = write(env, "in.csv", body)
        rep = os.path.join(env.tmp, "dry.json")
        p2 = run_batch(env, "--input", inp, "--dry-run", "--fields",
                       "first_name,title,technologies", "--report", rep)
        check(p2.returncode == 0, p2.stderr)
        cli = json.load(open(rep))["estimate"]
        check({x: cli[x] for x in ("valid", "cached", "upstream_calls_max", "credits_max",
                                   "eta_seconds")} ==
              {x: est[x] for x in ("valid", "cached", "upstream_calls_max", "credits_max",
                                   "eta_seconds")}, (cli, est))
        check("at most 10 upstream calls" in p2.stdout, p2.stdout)
        check(env.sim.calls() == [], "enrich-batch --dry-run called a provider")


def test_enrich_micro_batches_concurrent_requests_when_configured():
    """realtime_linger_ms: POST /enrich requests arriving within that bound share one bulk
    call; off (the default), each request makes its own single call."""
    make, e = bulk_conf("pdl", nkeys=1, bulk={"realtime_linger_ms": 150})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        import threading
        out = []
        go = threading.Event()

        def one(i):
            c = env.new_client()
            go.wait(10)
            t0 = time.monotonic()
            r = c.request("POST", "/enrich", headers=auth(k),
                          json_body={"email": f"rt{i}.lee@acme.com", "enrich": PERSON})
            out.append((r, time.monotonic() - t0))
            c.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        go.set()
        for t in ts:
            t.join(30)
        check(all(r.status == 200 and r.json()["_meta"]["status"] == "complete" for r, _ in out),
              [r.body[:200] for r, _ in out])
        calls = env.sim.calls(provider="pdl")
        check(all(c["path"] == BULK_PATH["pdl"] for c in calls), [c["path"] for c in calls])
        check(len(calls) <= 2 and sum(c["items"] for c in calls) == 6, [c["items"] for c in calls])
        # The wait is bounded by the linger (plus the call and the machine's noise).
        check(max(d for _, d in out) < 1.5, [d for _, d in out])
        credits = sum(r.json()["_meta"]["credits_used"] for r, _ in out)
        check(credits == 6, credits)
    make, e = bulk_conf("pdl", nkeys=1)
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for i in range(3):
            r = env.request("POST", "/enrich", headers=auth(k),
                            json_body={"email": f"rs{i}.lee@acme.com", "enrich": PERSON})
            check(r.status == 200, r)
        check([c["path"] for c in env.sim.calls(provider="pdl")] == ["/pdl/v5/person/enrich"] * 3,
              env.sim.calls(provider="pdl"))
