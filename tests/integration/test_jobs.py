"""Batch jobs: POST /enrich/enqueue, the jobs API and enrich-worker, against the
provider simulator."""

import csv
import hashlib
import hmac
import http.server
import io
import json
import os
import signal
import threading
import time

from harness import Env, check, deep_merge, wait_for
from providers import client_key, keys_env, provider, secret

WORKER = {"concurrency": 4, "claim_batch": 4, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 3, "grace_s": 5}


def job_conf(nkeys=2, extra=None):
    def make(env):
        c = {"providers": [provider(env, "pdl", nkeys)],
             "waterfall": {"person": ["pdl"], "phone": ["pdl"], "email": ["pdl"],
                           "company": ["pdl"]},
             "rotation": {"strategy": "round_robin"},
             "worker": WORKER,
             "webhooks": {"allow_private": True, "secret": "env:WEBHOOK_SECRET"}}
        return deep_merge(c, extra or {})
    e = keys_env("pdl", nkeys)
    e["WEBHOOK_SECRET"] = "whsec-test"
    return make, e


def auth(k):
    return {"Authorization": "Bearer " + k}


def enqueue(env, k, body, headers=None, expect=202):
    h = dict(auth(k), **(headers or {}))
    if isinstance(body, (bytes, str)):
        r = env.request("POST", "/enrich/enqueue" + h.pop("_query", ""), body=body, headers=h)
    else:
        r = env.request("POST", "/enrich/enqueue", json_body=body, headers=h)
    check(r.status == expect, f"want {expect}: {r!r}")
    return r


def status(env, k, job):
    r = env.request("GET", f"/enrich/jobs/{job}", headers=auth(k))
    check(r.status == 200, r)
    return r.json()


def results(env, k, job, fmt="ndjson"):
    r = env.request("GET", f"/enrich/jobs/{job}/results?format={fmt}", headers=auth(k))
    check(r.status == 200, r)
    if fmt == "ndjson":
        return [json.loads(line) for line in r.text().splitlines() if line]
    return list(csv.reader(io.StringIO(r.text())))


def wait_done(env, k, job, timeout=60):
    return wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed", "cancelled") else None)(
        status(env, k, job)), timeout=timeout, what=f"job {job} to finish")


def people(n, prefix="p"):
    return [{"email": f"{prefix}{i}.person@acme{i % 7}.com"} for i in range(n)]


def test_enqueue_json_runs_to_completion():
    make, e = job_conf()
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        recs = people(30) + [{"email": "miss.one@acme.com"}]
        r = enqueue(env, k, {"records": recs, "enrich": ["first_name", "title"]})
        b = r.json()
        check(b["status"] == "queued" and b["total"] == 31 and b["rejected"] == 0, b)
        check(b["status_url"] == f"/enrich/jobs/{b['job_id']}" and r.header("location") == b["status_url"], b)
        s = wait_done(env, k, b["job_id"])
        check(s["status"] == "completed" and s["done"] == 31 and s["found"] == 30 and
              s["not_found"] == 1 and s["failed"] == 0 and s["pending"] == 0, s)
        check(s["progress"] == 1.0 and s["credits_used"] == 30 and s["finished_at"], s)
        rows = results(env, k, b["job_id"])
        check([x["row"] for x in rows] == list(range(1, 32)), "results in input order")
        check(rows[0]["first_name"] and rows[0]["title"] and rows[0]["_status"] == "complete", rows[0])
        check(rows[30]["_status"] == "not_found" and rows[30]["title"] is None, rows[30])
        check(rows[3]["input"] == recs[3], rows[3])
        usage = json.loads(env.ctl("usage", "acme", "--json").stdout)[0]
        check(usage["records"] == 31 and usage["credits"] == 30, usage)


def test_enqueue_csv_with_bad_rows_and_carried_columns():
    make, e = job_conf()
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        body = ("\ufeffE-mail,Company,Notes\r\n"
                "ann.lee@acme.com,Acme,\"likes, commas\"\r\n"
                "not-an-email,Acme,bad row\r\n"
                "bob.ray@acme.com,Acme,\"two\nlines\"\r\n"
                "only,two\r\n"
                "cy.dee@acme.com,Acme,ok\r\n"
                "junk,,nothing else\r\n"
                "st\"ray@x.com,Acme,q\r\n").encode()
        r = enqueue(env, k, body, headers={"Content-Type": "text/csv",
                                           "_query": "?enrich=first_name,title"})
        b = r.json()
        # A junk e-mail beside a company is ignored, a short row is padded: both run.
        # Rows with nothing valid, or that the reader rejects, are refused.
        check(b["total"] == 7 and b["rejected"] == 2, b)
        check({x["row"] for x in b["rejections"]} == {6, 7}, b["rejections"])
        check("email" in b["rejections"][0]["reason"], b["rejections"])
        check("quote" in b["rejections"][1]["reason"], b["rejections"])
        wait_done(env, k, b["job_id"])
        rows = results(env, k, b["job_id"], fmt="csv")
        check(rows[0] == ["E-mail", "Company", "Notes", "first_name", "title", "_status", "_error"], rows[0])
        check(len(rows) == 8, rows)
        ignored = "email ignored: not a valid e-mail address"
        check(rows[1][:4] == ["ann.lee@acme.com", "Acme", "likes, commas", "Ann"] and rows[1][5] == "complete", rows[1])
        check(rows[2][:3] == ["not-an-email", "Acme", "bad row"] and
              rows[2][5] in ("complete", "partial", "not_found") and rows[2][6] == ignored, rows[2])
        check(rows[3][2] == "two\nlines" and rows[3][6] == "", rows[3])
        check(rows[4][:3] == ["only", "two", ""] and rows[4][5] != "invalid" and rows[4][6] == ignored,
              rows[4])
        check(rows[6][:3] == ["junk", "", "nothing else"] and rows[6][5] == "invalid" and
              "e-mail" in rows[6][6], rows[6])
        check(rows[7][:3] == ['st"ray@x.com', "Acme", "q"] and rows[7][5] == "invalid" and
              "quote" in rows[7][6], rows[7])
        nd = results(env, k, b["job_id"], fmt="ndjson")
        check(nd[1]["_error"] == ignored and nd[1]["input"]["E-mail"] == "not-an-email", nd[1])
        s = status(env, k, b["job_id"])
        check(s["rejected"] == 2 and s["done"] == 5 and {"code": "invalid_request", "count": 2} in s["errors"], s)


def test_bad_submissions_are_refused_whole():
    make, e = job_conf(extra={"limits": {"records_per_job_max": 5},
                              "webhooks": {"allow_private": False}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for body, what in (({"records": []}, "records"), ({"records": people(6)}, "records"),
                           ({"records": people(1), "colour": "red"}, "colour"),
                           ({"records": people(1), "webhook_url": "ftp://x"}, "webhook_url"),
                           ({"records": people(1), "webhook_url": "https://10.0.0.1/h"}, None),
                           ({"records": people(1), "enrich": ["salary"]}, "enrich")):
            r = env.request("POST", "/enrich/enqueue", json_body=body, headers=auth(k))
            check(r.status in (400, 413), (body, r))
            if what:
                check(any(d["field"] == what for d in r.json()["error"]["details"]), r)
        r = env.request("POST", "/enrich/enqueue", body=b"email\r\n\"open",
                        headers=dict(auth(k), **{"Content-Type": "text/csv"}))
        check(r.status == 400 and "line" in r.text(), r)
        r = env.request("POST", "/enrich/enqueue", body=b"x", headers=dict(auth(k), **{"Content-Type": "text/plain"}))
        check(r.status == 415, r)
        r = env.request("POST", "/enrich/enqueue", body=b"Notes\r\nhello\r\n",
                        headers=dict(auth(k), **{"Content-Type": "text/csv"}))
        check(r.status == 400 and "identifier" in r.text(), r)


def test_idempotent_resubmission_returns_the_first_job():
    make, e = job_conf()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        h = {"Idempotency-Key": "batch-2026-11-23-a"}
        a = enqueue(env, k, {"records": people(3)}, headers=h).json()
        b = enqueue(env, k, {"records": people(3)}, headers=h)
        check(b.json()["job_id"] == a["job_id"] and b.header("idempotent-replayed") == "true", b)
        c = enqueue(env, k, {"records": people(3)}, headers={"Idempotency-Key": "other"}).json()
        check(c["job_id"] != a["job_id"], c)
        usage = json.loads(env.ctl("usage", "acme", "--json").stdout)[0]
        check(usage["records"] == 6, f"a replay counted records again: {usage}")


def test_quota_checked_for_the_whole_batch():
    make, e = job_conf()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.ctl("account", "set-limits", "acme", "--records-per-hour", "10")
        enqueue(env, k, {"records": people(4)})
        r = env.request("POST", "/enrich/enqueue", json_body={"records": people(8)}, headers=auth(k))
        check(r.status == 429 and r.json()["error"]["code"] == "quota_exceeded", r)
        check("6 fit" in r.json()["error"]["message"] and r.header("retry-after"), r)
        check(r.json()["error"]["details"][0]["fits"] == 6, r)
        enqueue(env, k, {"records": people(6)})


def test_other_accounts_get_404():
    make, e = job_conf()
    with Env(conf=make, sim=True, env=e) as env:
        k1 = client_key(env, account="one", scopes="enrich,enqueue")
        k2 = client_key(env, account="two", scopes="enrich,enqueue")
        job = enqueue(env, k1, {"records": people(2)}).json()["job_id"]
        for method, path in (("GET", ""), ("GET", "/results"), ("POST", "/retry"), ("DELETE", "")):
            r = env.request(method, f"/enrich/jobs/{job}{path}", headers=auth(k2))
            check(r.status == 404, (method, path, r))
        check(env.request("GET", "/enrich/jobs/job_nope", headers=auth(k1)).status == 404)
        # An admin key (the console's) reaches every account's jobs.
        admin = client_key(env, account="ops", scopes="admin")
        r = env.request("GET", f"/enrich/jobs/{job}", headers=auth(admin))
        check(r.status == 200 and r.json()["job_id"] == job, r)
        check(env.request("GET", f"/enrich/jobs/{job}/results", headers=auth(admin)).status == 200)
        check(env.request("DELETE", f"/enrich/jobs/{job}", headers=auth(admin)).json()["status"] == "cancelled")


def test_progress_and_results_while_running():
    make, e = job_conf(nkeys=1, extra={"worker": {"concurrency": 2}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.sim.config(delay_ms=60)
        job = enqueue(env, k, {"records": people(40)}).json()["job_id"]
        mid = wait_for(lambda: (lambda s: s if s["status"] == "running" and 5 <= s["done"] < 35 else None)(
            status(env, k, job)), timeout=30, what="a job half done")
        check(0 < mid["progress"] < 1 and mid["pending"] > 0 and mid["started_at"], mid)
        partial = results(env, k, job)
        check(0 < len(partial) < 40, len(partial))
        check([x["row"] for x in partial] == sorted(x["row"] for x in partial), "in input order")
        s2 = wait_for(lambda: (lambda s: s if s["rate_per_min"] > 0 and s["eta_seconds"] else None)(
            status(env, k, job)), timeout=30, what="rate and ETA")
        check(s2["eta_seconds"] > 0, s2)
        wait_done(env, k, job)
        check(len(results(env, k, job)) == 40)


def test_retry_touches_only_failed_rows():
    make, e = job_conf(nkeys=1, extra={"worker": {"concurrency": 1, "max_attempts": 1},
                                       "rotation": {"breaker_threshold": 100}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "error", "status": 503}] * 4)
        job = enqueue(env, k, {"records": people(6), "enrich": ["title"]}).json()["job_id"]
        s = wait_done(env, k, job)
        rows = results(env, k, job)
        # A row whose provider failed is incomplete (not a miss) and says why.
        failed = {x["input"]["email"] for x in rows if x["_status"] == "incomplete"}
        check(all(x["_error"] == "pdl: transient (1 attempt)" for x in rows
                  if x["_status"] == "incomplete"), rows)
        # One attempt per row: the four scripted 503s fail four rows.
        check(s["failed"] == len(failed) == 4 and s["done"] == 2, (s, failed))
        check({"code": "upstream_failed", "count": s["failed"]} in s["errors"], s)
        env.sim.clear_calls()
        r = env.request("POST", f"/enrich/jobs/{job}/retry", headers=auth(k))
        check(r.status == 200 and r.json()["requeued"] == len(failed), r)
        s = wait_done(env, k, job)
        check(s["failed"] == 0 and s["done"] == 6, s)
        called = {c["query"].get("email") for c in env.sim.calls(provider="pdl")}
        check(called == failed, f"retry called {called}, failed rows were {failed}")


def test_cancel_keeps_finished_rows():
    make, e = job_conf(nkeys=1, extra={"worker": {"concurrency": 1}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.sim.config(delay_ms=100)
        job = enqueue(env, k, {"records": people(30)}).json()["job_id"]
        wait_for(lambda: status(env, k, job)["done"] >= 3, timeout=30, what="some rows done")
        r = env.request("DELETE", f"/enrich/jobs/{job}", headers=auth(k))
        check(r.status == 200 and r.json()["status"] == "cancelled", r)
        wait_for(lambda: status(env, k, job)["pending"] == 0, timeout=10, what="rows in flight to end")
        n = len(env.sim.calls(provider="pdl"))
        done = len(results(env, k, job))
        check(3 <= done < 30, done)
        wait_for(lambda: True, timeout=1)
        check(len(env.sim.calls(provider="pdl")) == n, "calls after the cancel finished")
        check(env.request("DELETE", f"/enrich/jobs/{job}", headers=auth(k)).status == 409)


def test_two_workers_never_process_a_row_twice():
    make, e = job_conf(nkeys=4)
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        env.start_worker()
        k = client_key(env)
        env.sim.config(delay_ms=20)
        job = enqueue(env, k, {"records": people(120), "enrich": ["title"]}).json()["job_id"]
        wait_done(env, k, job, timeout=90)
        calls = env.sim.calls(provider="pdl")
        emails = [c["query"]["email"] for c in calls]
        check(len(emails) == 120 and len(set(emails)) == 120, f"{len(emails)} calls for 120 rows")
        rows = results(env, k, job)
        check(sorted(x["row"] for x in rows) == list(range(1, 121)), "each row once")
        logs = "".join(open(p.logfile).read() for p in env.workers)
        check(logs.count("started with") == 2, "two workers ran")


def test_kill_9_workers_repeatedly_loses_nothing_and_repays_nothing():
    make, e = job_conf(nkeys=4)
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.config(delay_ms=40)
        n = 80
        job = enqueue(env, k, {"records": people(n), "enrich": ["title"]}).json()["job_id"]
        stored_at = {}       # email -> epoch in which its result was seen stored
        calls_in = {}        # email -> epochs in which it was called
        for epoch in range(4):
            w = env.start_worker()
            target = min(n, (epoch + 1) * 15)
            wait_for(lambda: status(env, k, job)["done"] >= target, timeout=60,
                     what=f"{target} rows done")
            w.send_signal(signal.SIGKILL)
            w.wait()
            for c in env.sim.calls(provider="pdl"):
                calls_in.setdefault(c["query"]["email"], []).append(epoch)
            env.sim.clear_calls()
            for row in results(env, k, job):
                stored_at.setdefault(row["input"]["email"], epoch)
        env.start_worker()
        s = wait_done(env, k, job, timeout=90)
        for c in env.sim.calls(provider="pdl"):
            calls_in.setdefault(c["query"]["email"], []).append(99)
        check(s["status"] == "completed" and s["done"] == n and s["failed"] == 0, s)
        rows = results(env, k, job)
        check(sorted(x["row"] for x in rows) == list(range(1, n + 1)), "every row exactly once")
        repaid = [em for em, ep in stored_at.items() if any(x > ep for x in calls_in.get(em, []))]
        check(repaid == [], f"rows called again after their result was stored: {repaid}")
        extra = sum(len(v) - 1 for v in calls_in.values())
        print(f"    4 kills: {n} rows, {sum(len(v) for v in calls_in.values())} upstream calls "
              f"({extra} repeated for rows in flight at a kill), 0 lost, 0 duplicated")


def test_rate_limit_storm_snoozes_rows_without_failing_them():
    make, e = job_conf(nkeys=2, extra={"worker": {"max_attempts": 2}})
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        for i in (1, 2):
            env.sim.script("pdl", secret("pdl", i), [{"kind": "rate_limited", "reset_s": 1}] * 3)
        job = enqueue(env, k, {"records": people(10), "enrich": ["title"]}).json()["job_id"]
        s = wait_done(env, k, job, timeout=60)
        check(s["failed"] == 0 and s["done"] == 10, f"429s must snooze, not fail: {s}")
        n429 = sum(1 for c in env.sim.calls(provider="pdl") if c["status"] == 429)
        check(n429 == 6, n429)


def test_sigterm_gives_rows_back():
    make, e = job_conf(nkeys=1, extra={"worker": {"concurrency": 2, "lease_s": 30, "grace_s": 1}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.config(delay_ms=3000)
        job = enqueue(env, k, {"records": people(6)}).json()["job_id"]
        w = env.start_worker()
        wait_for(lambda: len(env.sim.calls(provider="pdl")) >= 2, timeout=20, what="rows in flight")
        w.send_signal(signal.SIGTERM)
        check(w.wait(30) == 0, "worker exit code")
        log = open(w.logfile).read()
        check("given back to the queue" in log, log[-500:])
        env.sim.config(delay_ms=0)
        # With a 30 s lease, only rows given back can be taken at once by a new worker.
        env.start_worker()
        s = wait_done(env, k, job, timeout=20)
        check(s["done"] == 6, s)


class _Hook(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.got.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_completion_webhook_is_signed():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        make, e = job_conf()
        with Env(conf=make, sim=True, env=e, worker=True) as env:
            k = client_key(env)
            url = f"http://127.0.0.1:{srv.server_address[1]}/done"
            job = enqueue(env, k, {"records": people(3), "webhook_url": url}).json()["job_id"]
            wait_done(env, k, job)
            wait_for(lambda: _Hook.got, timeout=20, what="the webhook")
            headers, body = _Hook.got[0]
            sig = headers.get("X-Enrichd-Signature")
            want = "sha256=" + hmac.new(b"whsec-test", body, hashlib.sha256).hexdigest()
            check(sig == want, (sig, want))
            b = json.loads(body)
            check(b["job_id"] == job and b["status"] == "completed" and b["done"] == 3, b)
            check(len(_Hook.got) == 1, "delivered once")
    finally:
        srv.shutdown()
