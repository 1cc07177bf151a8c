"""Moving up: `enrichctl store copy` takes a deployment's data from SQLite to
PostgreSQL, and a responder on the new store carries on where the old one was."""

import json

from harness import Env, check, pg_database, wait_for
from providers import calls_by_key, keys_env, provider, secret

PDL = "pdl"
WORKER = {"concurrency": 4, "claim_batch": 4, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50}


def conf(env):
    return {"providers": [provider(env, PDL, 2)],
            "waterfall": {g: [PDL] for g in ("person", "phone", "email", "company")},
            "rotation": {"strategy": "ordered"}, "worker": WORKER}


def bearer(k):
    return {"Authorization": "Bearer " + k}


def test_copy_from_sqlite_to_postgresql_and_carry_on():
    e = keys_env(PDL, 2)
    target = pg_database()
    with Env(conf=conf, sim=True, env=e, store_kind="sqlite", worker=True) as old:
        old.ctl("account", "create", "acme")
        old.ctl("account", "set-limits", "acme", "--burst", "500")
        k = json.loads(old.ctl("key", "create", "acme", "--scopes", "enrich,enqueue,admin",
                               "--json").stdout)
        revoked = json.loads(old.ctl("key", "create", "acme", "--json").stdout)
        old.ctl("key", "revoke", str(revoked["id"]))
        # A key that cools, answers that are cached, a finished job, usage.
        old.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 600}])
        body = {"email": "jane.roe@acme.com", "enrich": ["title"]}
        r = old.request("POST", "/enrich", json_body=body, headers=bearer(k["key"]))
        check(r.status == 200 and r.json()["_meta"]["status"] == "complete", r)
        r = old.request("POST", "/enrich/enqueue", headers=bearer(k["key"]),
                        json_body={"records": [{"email": f"p{i}@acme.com"} for i in range(25)],
                                   "enrich": ["title"]})
        check(r.status == 202, r)
        job = r.json()["job_id"]
        wait_for(lambda: old.request("GET", f"/enrich/jobs/{job}", headers=bearer(k["key"]))
                 .json()["status"] == "completed", timeout=60, what="the job")
        usage_before = old.request("GET", "/admin/usage", headers=bearer(k["key"])).json()["usage"]

        p = old.ctl("store", "copy", old.store_url, target, "--json")
        first = json.loads(p.stdout)["tables"]
        check(first["accounts"] == 1 and first["client_keys"] == 2 and first["jobs"] == 1 and
              first["job_rows"] == 25 and first["upstream_keys"] == 2 and first["cache"] >= 26,
              first)
        # Safe to run again: the same counts, nothing doubled.
        again = json.loads(old.ctl("store", "copy", old.store_url, target, "--json").stdout)
        check(again["tables"] == first, (first, again["tables"]))
        text = old.ctl("store", "copy", old.store_url, target).stdout
        check("job_rows" in text and "25 rows" in text and "done" in text, text)
        bad = old.ctl("store", "copy", old.store_url, "mysql://x", check_rc=False)
        check(bad.returncode == 1 and "store URL" in bad.stderr, bad.stderr)
        sim = old

        with Env(conf=conf, share_sim=sim, env=e, store_url=target) as new:
            h = bearer(k["key"])
            check(new.request("GET", "/admin/usage", headers=bearer(revoked["key"])).status == 401,
                  "a revoked key stays revoked")
            usage = new.request("GET", "/admin/usage", headers=h).json()["usage"]
            check(usage[0]["records"] >= usage_before[0]["records"] and
                  usage[0]["credits"] == usage_before[0]["credits"], (usage_before, usage))
            st = new.request("GET", f"/enrich/jobs/{job}", headers=h).json()
            check(st["status"] == "completed" and st["done"] == 25, st)
            res = new.request("GET", f"/enrich/jobs/{job}/results?format=ndjson", headers=h)
            check(res.status == 200 and len(res.text().splitlines()) == 25, res)
            keys = {x["id"]: x for x in new.request("GET", "/admin/keys", headers=h).json()["keys"]}
            check(keys["pdl-1"]["state"] == "cooling", keys["pdl-1"])
            # The cached answer is answered from the copy: no upstream call.
            sim.sim.clear_calls()
            r = new.request("POST", "/enrich", json_body=body, headers=h)
            check(r.status == 200 and r.json()["_meta"]["cached"] is True, r)
            check(calls_by_key(new, PDL) == {}, calls_by_key(new, PDL))
            # New rows get new ids after the copied ones.
            r = new.request("POST", "/enrich/enqueue", headers=h,
                            json_body={"records": [{"email": "z@acme.com"}], "enrich": ["title"]})
            check(r.status == 202 and r.json()["job_id"] != job, r)
            new.ctl("account", "create", "beta")
