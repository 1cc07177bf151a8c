"""Credit budgets: a client account's credits per day and month, an upstream key's or
upstream account's budget.  Worst-case credits are reserved before a call, so
concurrent calls never overshoot; an exceeded client budget is 429 budget_exceeded with
Retry-After until the reset; an upstream key whose budget is spent is parked and
rotation moves on; both raise an alert.  Counted at the simulator."""

import json
import threading
import time

from harness import Env, check, deep_merge, wait_for
from providers import client_key, keys_env, provider, secret

PERSON = ["first_name", "title"]


def pdl_conf(nkeys=2, keys_extra=None, pextra=None, extra=None):
    def make(env):
        p = provider(env, "pdl", nkeys, **(pextra or {}))
        for i, kx in (keys_extra or {}).items():
            p["keys"][i].update(kx)
        c = {"providers": [p],
             "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
             "rotation": {"strategy": "ordered"},
             "worker": {"concurrency": 2, "claim_batch": 10, "lease_s": 10, "heartbeat_s": 1,
                        "poll_ms": 50, "backoff_base_ms": 100, "backoff_max_ms": 400}}
        return deep_merge(c, extra or {})
    return make, keys_env("pdl", nkeys)


def auth(k):
    return {"Authorization": "Bearer " + k}


def seconds_to_utc_midnight():
    now = time.time()
    return 86400 - now % 86400


def charged(env):
    return sum(c["credits"] or 0 for c in env.sim.calls(provider="pdl"))


def test_50_concurrent_requests_against_20_credits_spend_at_most_20():
    make, e = pdl_conf()
    with Env(conf=make, sim=True, env=e, sim_delay_ms=200) as env:
        k = client_key(env)
        out = env.ctl("account", "set-budget", "acme", "--credits-per-day", "20", "--json")
        acc = json.loads(out.stdout)
        check(acc["limits"]["credits_per_day"] == 20 and acc["effective"]["credits_per_day"] == 20
              and acc["budgets"][0]["limit"] == 20, out.stdout)
        results = []
        lock = threading.Lock()
        go = threading.Event()

        def one(i):
            c = env.new_client()
            go.wait(10)
            r = c.request("POST", "/enrich", headers=auth(k),
                          json_body={"email": f"c{i}.lee@acme{i}.com", "enrich": PERSON})
            with lock:
                results.append(r)
            c.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in ts:
            t.start()
        go.set()
        for t in ts:
            t.join(60)
        ok = [r for r in results if r.status == 200]
        refused = [r for r in results if r.status == 429]
        check(len(ok) + len(refused) == 50, [r.status for r in results])
        spent = sum(r.json()["_meta"]["credits_used"] for r in ok)
        check(spent <= 20 and charged(env) <= 20, (spent, charged(env)))
        # Every request that got through was paid for, so exactly the budget was spent.
        check(spent == 20 == len(ok), (spent, len(ok)))
        for r in refused:
            err = r.json()["error"]
            check(err["code"] == "budget_exceeded", err)
            ra = int(r.header("retry-after"))
            check(abs(ra - seconds_to_utc_midnight()) <= 5, (ra, seconds_to_utc_midnight()))
        st = json.loads(env.ctl("account", "budget", "acme", "--json").stdout)
        day = st["budgets"][0]
        check(day["period"] == "day" and day["spent"] == 20 and day["left"] == 0 and
              day["held"] == 0, st)
        env.wait_log(r"budget.*account acme's daily budget of 20 credits is spent")
        # The alert is in the list the console shows, once (at most one a minute).
        alerts = env.request("GET", "/admin/alerts", headers=auth(k)).json()["alerts"]
        spent_alerts = [a for a in alerts if a["event"] == "budget_exhausted"]
        check(len(spent_alerts) == 1 and spent_alerts[0]["provider"] == "" and
              "account acme's daily budget of 20 credits is spent" in spent_alerts[0]["message"] and
              spent_alerts[0]["state"] == "exhausted" and spent_alerts[0]["until"], alerts)
        print(f"  50 concurrent requests, budget 20: {spent} credits spent, "
              f"{len(refused)} refused with 429")


def test_default_budget_from_the_configuration_and_reset_to_default():
    make, e = pdl_conf(extra={"accounts_default": {"credits_per_day": 2}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for i in range(2):
            r = env.request("POST", "/enrich", headers=auth(k),
                            json_body={"email": f"d{i}.lee@acme.com", "enrich": PERSON})
            check(r.status == 200 and r.json()["_meta"]["credits_used"] == 1, r)
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "d9.lee@acme.com", "enrich": PERSON})
        check(r.status == 429 and r.json()["error"]["code"] == "budget_exceeded", r)
        # A cached answer costs nothing and is not refused.
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "d0.lee@acme.com", "enrich": PERSON})
        check(r.status == 200 and r.json()["_meta"]["cached"] is True, r)
        # The account's own budget wins over the default; "default" goes back to it.
        env.ctl("account", "set-budget", "acme", "--credits-per-day", "0")
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "d9.lee@acme.com", "enrich": PERSON})
        check(r.status == 200, r)
        env.ctl("account", "set-budget", "acme", "--credits-per-day", "default")
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "d8.lee@acme.com", "enrich": PERSON})
        check(r.status == 429, r)
        check(len(env.sim.calls(provider="pdl")) == 3, env.sim.calls(provider="pdl"))


def test_budgets_set_and_read_through_the_admin_api_each_change_audited():
    make, e = pdl_conf(extra={"accounts_default": {"credits_per_month": 100}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        a = env.request("GET", "/admin/accounts/acme", headers=auth(k)).json()
        check(a["limits"]["credits_per_day"] == "default" and a["effective"]["credits_per_day"] == 0
              and a["effective"]["credits_per_month"] == 100, a)
        check([(b["period"], b["limit"], b["left"]) for b in a["budgets"]] == [("month", 100, 100)], a)
        before = env.request("GET", "/admin/audit", headers=auth(k)).json()["entries"]
        for body, field in (({"credits_per_day": -1}, "credits_per_day"),
                            ({"credits_per_month": "lots"}, "credits_per_month"),
                            ({"credits_per_day": 5, "credits": 5}, "credits")):
            r = env.request("PATCH", "/admin/accounts/acme", json_body=body, headers=auth(k))
            check(r.status == 400 and r.json()["error"]["code"] == "invalid_request" and
                  any(d["field"] == field for d in r.json()["error"]["details"]), (body, r))
        r = env.request("PATCH", "/admin/accounts/acme", headers=auth(k),
                        json_body={"credits_per_day": 5, "credits_per_month": "default"})
        check(r.status == 200, r)
        a = r.json()
        check(a["limits"]["credits_per_day"] == 5 and a["limits"]["credits_per_month"] == "default"
              and a["limits"]["burst"] == "default", a)
        check([(b["budget"], b["period"], b["limit"], b["spent"], b["left"]) for b in a["budgets"]] ==
              [(f"account:{a['id']}:day", "day", 5, 0, 5), (f"account:{a['id']}:month", "month", 100, 0, 100)],
              a["budgets"])
        # What the account spends shows as used and left, in the API and in enrichctl.
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "x.lee@acme.com", "enrich": PERSON})
        check(r.status == 200 and r.json()["_meta"]["credits_used"] == 1, r)
        a = env.request("GET", "/admin/accounts", headers=auth(k)).json()["accounts"]
        day = [b for b in a[0]["budgets"] if b["period"] == "day"][0]
        check(day["spent"] == 1 and day["left"] == 4 and day["held"] == 0, a)
        ctl = json.loads(env.ctl("account", "budget", "acme", "--json").stdout)
        check(ctl["budgets"][0]["spent"] == 1 and ctl["budgets"][0]["left"] == 4, ctl)
        # A new account may be given its budgets at once.
        r = env.request("POST", "/admin/accounts", headers=auth(k),
                        json_body={"name": "beta", "credits_per_month": 0})
        check(r.status == 201 and r.json()["budgets"] == [] and
              r.json()["effective"]["credits_per_month"] == 0, r)
        # One audit entry per change (the refusals wrote none), the same for enrichctl.
        env.ctl("account", "set-budget", "acme", "--credits-per-month", "50")
        after = env.request("GET", "/admin/audit", headers=auth(k)).json()["entries"]
        new = after[:len(after) - len(before)]
        check([(x["action"], x["target"], x["details"]) for x in new] ==
              [("account.update", "acme", {"credits_per_month": 50}),
               ("account.create", "beta", {"credits_per_month": 0}),
               ("account.update", "acme", {"credits_per_day": 5, "credits_per_month": "default"})], new)
        check(new[0]["who"].startswith("enrichctl (") and new[2]["who"].startswith("acme (key "), new)
        r = env.request("GET", "/admin/accounts/acme", headers=auth(k))
        check(r.json()["limits"]["credits_per_month"] == 50, r.json())


def test_an_upstream_key_budget_parks_the_key_and_rotation_moves_on():
    make, e = pdl_conf(keys_extra={0: {"budget": {"credits": 3, "period": "day"}}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for i in range(5):
            r = env.request("POST", "/enrich", headers=auth(k),
                            json_body={"email": f"u{i}.lee@acme.com", "enrich": PERSON})
            check(r.status == 200 and r.json()["_meta"]["status"] == "complete", r)
        by_key = {}
        for c in env.sim.calls(provider="pdl"):
            by_key[c["key"]] = by_key.get(c["key"], 0) + 1
        check(by_key == {secret("pdl", 1): 3, secret("pdl", 2): 2}, by_key)
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys",
                                                 headers=auth(k)).json()["keys"]}
        check(keys["pdl-1"]["state"] == "exhausted", keys["pdl-1"])
        until = time.mktime(time.strptime(keys["pdl-1"]["until"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        check(abs(until - (time.time() + seconds_to_utc_midnight())) <= 5, keys["pdl-1"])
        env.wait_log(r"key pdl-1 .* is exhausted until")
        env.wait_log(r"key pdl-1's daily budget of 3 credits is spent")
        b = json.loads(env.ctl("keys", "budgets", "--json").stdout)
        check(b == [dict(b[0], budget="key:pdl-1", period="day", limit=3, spent=3, held=0,
                         left=0)], b)
        # The pool's listing (the console's key pool) says the budget parked it.
        p1 = keys["pdl-1"]
        check(p1["budget_left"] == 0 and p1["budgets"] == b, p1)
        check("credit budget (key:pdl-1, 3 credits a day) is spent" in p1["why"] and
              "when the budget resets" in p1["why"], p1["why"])
        check(keys["pdl-2"]["budgets"] == [] and keys["pdl-2"]["budget_left"] is None, keys["pdl-2"])


def test_an_upstream_account_budget_parks_every_key_of_the_account():
    make, e = pdl_conf(pextra={"account_budget": {"credits": 2, "period": "month"}},
                       keys_extra={0: {"account": "acme"}, 1: {"account": "acme"}})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for i in range(2):
            r = env.request("POST", "/enrich", headers=auth(k),
                            json_body={"email": f"a{i}.lee@acme.com", "enrich": PERSON})
            check(r.status == 200, r)
        r = env.request("POST", "/enrich", headers=auth(k),
                        json_body={"email": "a9.lee@acme.com", "enrich": PERSON})
        check(r.status == 503 and r.json()["error"]["code"] == "unavailable", r)
        check(int(r.header("retry-after")) > 86400 or time.gmtime().tm_mday >= 27, r)
        check(len(env.sim.calls(provider="pdl")) == 2, env.sim.calls(provider="pdl"))
        keys = {x["id"]: x for x in env.request("GET", "/admin/keys",
                                                 headers=auth(k)).json()["keys"]}
        check(keys["pdl-1"]["state"] == "exhausted" and keys["pdl-2"]["state"] == "exhausted",
              keys)


def test_batch_rows_wait_for_the_budget_instead_of_failing():
    make, e = pdl_conf()
    with Env(conf=make, sim=True, env=e, worker=True) as env:
        k = client_key(env)
        env.ctl("account", "set-budget", "acme", "--credits-per-day", "4")
        r = env.request("POST", "/enrich/enqueue", headers=auth(k), json_body={
            "records": [{"email": f"b{i}.lee@acme.com"} for i in range(10)], "enrich": PERSON})
        check(r.status == 202, r)
        job = r.json()["job_id"]
        s = wait_for(lambda: (lambda s: s if s["done"] == 4 else None)(
            env.request("GET", f"/enrich/jobs/{job}", headers=auth(k)).json()), timeout=20,
            what="four rows done")
        # The other six wait for the budget's reset, without spending an attempt.
        later = int(time.time() * 1000) + 3600 * 1000 if seconds_to_utc_midnight() > 3700 else 0
        wait_for(lambda: env.sql("SELECT count(*) FROM job_rows WHERE state = 0 AND attempts = 0"
                                 f" AND not_before_ms > {later}").strip() == "6",
                 timeout=20, what="six rows snoozed until the reset")
        s = env.request("GET", f"/enrich/jobs/{job}", headers=auth(k)).json()
        check(s["status"] == "running" and s["done"] == 4 and s["failed"] == 0 and
              s["pending"] == 6 and s["credits_used"] == 4, s)
        check(charged(env) == 4, charged(env))
