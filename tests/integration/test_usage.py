"""Usage is billing data: it survives a crash of the responder, and quota spent on a
batch that was not stored is given back.  Runs on both back ends."""

import json
import signal
import threading

from harness import Env, check, wait_for


def key_for(env, account="acme", **limits):
    env.ctl("account", "create", account, check_rc=False)
    for k, v in limits.items():
        env.ctl("account", "set-limits", account, "--" + k.replace("_", "-"), str(v))
    p = env.ctl("key", "create", account, "--scopes", "enrich,enqueue,admin", "--json")
    return json.loads(p.stdout)["key"]


def auth(k):
    return {"Authorization": "Bearer " + k}


def usage_today(env, k):
    r = env.request("GET", "/admin/usage?days=1", headers=auth(k))
    check(r.status == 200, r)
    rows = [u for u in r.json()["usage"] if u["account"] == "acme"]
    return rows[0] if rows else {"requests": 0, "records": 0, "rejections": 0, "credits": 0}


# POST /enrich answered by the built-in local provider: no upstream, cheap, one
# record each.
LOCAL = {"waterfall": {"person": ["local"], "phone": ["local"], "email": ["local"],
                       "company": ["local"]},
         "threads": 16}


def test_usage_survives_kill_9_of_the_responder_mid_burst():
    """A burst from 8 clients; enrichd is killed with SIGKILL in the middle of it and
    started again.  Every answer the clients received (200 or 429) is in the usage:
    requests for the 200s, rejections for the 429s.  The only excess allowed is the
    requests admitted but not yet answered at the instant of the kill (at most one
    per client connection)."""
    clients = 8
    with Env(conf=LOCAL) as env:
        # A busy account: requests come from leases (most never reach the store one
        # by one), and the bucket is small enough that some are refused.
        k = key_for(env, requests_per_minute=6000, burst=400)
        body = json.dumps({"email": "jane.doe@example.com", "enrich": ["first_name"]})
        counts = {200: 0, 429: 0, "other": 0}
        lock = threading.Lock()
        stop = threading.Event()

        def client():
            c = env.new_client()
            while not stop.is_set():
                try:
                    r = c.request("POST", "/enrich", body=body,
                                  headers=dict(auth(k), **{"Content-Type": "application/json"}))
                    key = r.status if r.status in (200, 429) else "other"
                except Exception:  # noqa: BLE001 - the connection dies with enrichd
                    key = "other"
                    c.close()
                with lock:
                    counts[key] += 1
            c.close()

        ts = [threading.Thread(target=client) for _ in range(clients)]
        for t in ts:
            t.start()
        wait_for(lambda: counts[200] + counts[429] >= 1500, timeout=60,
                 what="1500 answers before the kill")
        env.enrichd.send_signal(signal.SIGKILL)
        env.enrichd.wait(10)
        stop.set()
        for t in ts:
            t.join(30)
        answered = counts[200] + counts[429]
        env.start_enrichd()
        wait_for(lambda: env.request("GET", "/health").status == 200, timeout=20,
                 what="enrichd back")
        u = usage_today(env, k)
        counted = u["requests"] + u["rejections"]
        print(f"    answered {counts[200]} x 200 + {counts[429]} x 429 = {answered}; usage "
              f"{u['requests']} requests + {u['rejections']} rejections = {counted}; "
              f"{counts['other']} other (while down)")
        check(counts[429] > 0, f"the bucket refused nothing: {counts}")
        check(u["requests"] >= counts[200] and u["records"] >= counts[200],
              f"answered requests missing from usage: {u} vs {counts}")
        check(u["rejections"] >= counts[429], f"answered 429s missing from usage: {u} vs {counts}")
        check(counted - answered <= clients,
              f"{counted - answered} more counted than answered (at most {clients} in flight)")


def test_quota_spent_on_a_replayed_batch_is_given_back():
    """Several submissions of one batch with one Idempotency-Key at once: one job, every
    answer names it, and the record quota is spent once (the others' records are given
    back), so a further batch that fits the rest is accepted."""
    with Env(conf={"threads": 8}) as env:
        k = key_for(env, records_per_hour=100)
        records = [{"email": f"p{i}@example.com"} for i in range(10)]
        answers = []
        lock = threading.Lock()
        start = threading.Barrier(6)

        def submit():
            c = env.new_client()
            c.request("GET", "/health")    # connected (TLS done) before the start
            start.wait(10)
            r = c.request("POST", "/enrich/enqueue", json_body={"records": records},
                          headers=dict(auth(k), **{"Idempotency-Key": "batch-1"}))
            c.close()
            with lock:
                answers.append(r)

        ts = [threading.Thread(target=submit) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        check(all(r.status == 202 for r in answers), [r.status for r in answers])
        ids = {r.json()["job_id"] for r in answers}
        check(len(ids) == 1, f"one job for one key, got {ids}")
        u = usage_today(env, k)
        check(u["records"] == 10, f"the batch counted once: {u}")
        r = env.request("POST", "/enrich/enqueue",
                        json_body={"records": [{"email": f"q{i}@example.com"} for i in range(90)]},
                        headers=auth(k))
        check(r.status == 202, f"90 more records fit the hour: {r!r}")
