"""The admin API (accounts, client keys, the upstream pool, usage, the audit log, jobs of
every account), /health/ready, the metrics scope, JSON log lines and the account on
access lines."""

import json
import re
import subprocess

from harness import Env, check, wait_for
from providers import keys_env, provider, secret
from test_store_faults import WriteLock

PDL = "pdl"


def key_for(env, account, scopes):
    env.ctl("account", "create", account, check_rc=False)
    return env.ctl("key", "create", account, "--scopes", scopes, "--raw").stdout.strip()


def auth(k):
    return {"Authorization": "Bearer " + k}


def error(r, status, code):
    check(r.status == status, f"want {status}: {r!r}")
    check(r.json()["error"]["code"] == code, r.json())
    return r.json()["error"]


# Every admin operation with a body that would be accepted: the enrich scope must get
# 403 on each before anything happens.
ADMIN_CALLS = [
    ("GET", "/admin/usage", None), ("GET", "/admin/keys", None),
    ("POST", "/admin/keys/pdl-1/revive", None), ("GET", "/admin/accounts", None),
    ("POST", "/admin/accounts", {"name": "intruder"}), ("GET", "/admin/accounts/acme", None),
    ("PATCH", "/admin/accounts/acme", {"burst": 1}), ("POST", "/admin/accounts/acme/keys", {}),
    ("GET", "/admin/client-keys", None), ("DELETE", "/admin/client-keys/1", None),
    ("GET", "/metrics", None),
]


def test_every_admin_endpoint_refuses_the_enrich_and_enqueue_scopes():
    with Env() as env:
        user = key_for(env, "acme", "enrich,enqueue")
        for method, path, body in ADMIN_CALLS:
            error(env.request(method, path, json_body=body, headers=auth(user)), 403, "forbidden")
            error(env.request(method, path, json_body=body), 401, "unauthorized")
        accounts = json.loads(env.ctl("account", "list", "--json").stdout)
        check([a["name"] for a in accounts] == ["acme"], accounts)
        check(all(k["state"] == "active" for k in json.loads(env.ctl("key", "list", "--json").stdout)),
              "a refused call revoked a key")
        metrics = key_for(env, "scraper", "metrics")
        for method, path, body in ADMIN_CALLS[:-1]:
            error(env.request(method, path, json_body=body, headers=auth(metrics)), 403, "forbidden")


def test_accounts_create_list_show_update():
    with Env() as env:
        admin = key_for(env, "ops", "admin")
        r = env.request("POST", "/admin/accounts", json_body={"name": "acme", "burst": 50,
                                                              "records_per_day": 0}, headers=auth(admin))
        check(r.status == 201 and r.header("location") == "/admin/accounts/acme", r)
        a = r.json()
        check(a["limits"] == {"requests_per_minute": "default", "burst": 50, "records_per_hour": "default",
                              "records_per_day": 0, "credits_per_day": "default",
                              "credits_per_month": "default"} and a["effective"]["burst"] == 50, a)
        error(env.request("POST", "/admin/accounts", json_body={"name": "acme"}, headers=auth(admin)),
              409, "conflict")
        for body, field in (({"name": "bad name"}, "name"), ({"name": "x", "burst": 0}, "burst"),
                            ({"name": "x", "burst": "lots"}, "burst"), ({"nme": "x"}, "nme"),
                            ({"name": "x", "records_per_hour": -1}, "records_per_hour"),
                            ({}, "name"), ([], "body")):
            e = error(env.request("POST", "/admin/accounts", json_body=body, headers=auth(admin)),
                      400, "invalid_request")
            check(any(d["field"] == field for d in e["details"]), (body, e))
        r = env.request("POST", "/admin/accounts", body='{"name":"x","name":"y"}',
                        headers=dict(auth(admin), **{"Content-Type": "application/json"}))
        check("duplicate" in error(r, 400, "invalid_request")["details"][0]["problem"], r)
        deep = '{"name":"x","burst":' + "[" * 40 + "]" * 40 + "}"
        r = env.request("POST", "/admin/accounts", body=deep,
                        headers=dict(auth(admin), **{"Content-Type": "application/json"}))
        check("nested deeper" in error(r, 400, "invalid_request")["details"][0]["problem"], r)
        error(env.request("POST", "/admin/accounts", body="name=x",
                          headers=dict(auth(admin), **{"Content-Type": "text/plain"})),
              415, "unsupported_media_type")
        check({a["name"] for a in json.loads(env.ctl("account", "list", "--json").stdout)} == {"ops", "acme"},
              "a refused body created an account")

        r = env.request("PATCH", "/admin/accounts/acme", json_body={"requests_per_minute": 600,
                                                                     "burst": "default"}, headers=auth(admin))
        check(r.status == 200, r)
        check(r.json()["limits"]["requests_per_minute"] == 600 and r.json()["limits"]["burst"] == "default"
              and r.json()["limits"]["records_per_day"] == 0, r.json())
        error(env.request("PATCH", "/admin/accounts/acme", json_body={}, headers=auth(admin)),
              400, "invalid_request")
        error(env.request("PATCH", "/admin/accounts/ghost", json_body={"burst": 2}, headers=auth(admin)),
              404, "not_found")
        error(env.request("GET", "/admin/accounts/ghost", headers=auth(admin)), 404, "not_found")
        # The change is the one enrichctl sees: one code path.
        shown = json.loads(env.ctl("account", "show", "acme", "--json").stdout)
        check(shown["limits"]["requests_per_minute"] == 600, shown)
        r = env.request("GET", "/admin/accounts", headers=auth(admin))
        check([a["name"] for a in r.json()["accounts"]] == ["acme", "ops"], r.json())
        r = env.request("GET", "/admin/accounts/ops", headers=auth(admin))
        check(r.status == 200 and len(r.json()["keys"]) == 1 and "key" not in r.json()["keys"][0], r)
        error(env.request("PUT", "/admin/accounts/acme", json_body={}, headers=auth(admin)),
              405, "method_not_allowed")


def test_client_keys_create_once_list_revoke_expiry_scopes():
    with Env() as env:
        admin = key_for(env, "ops", "admin")
        env.ctl("account", "create", "acme")
        r = env.request("POST", "/admin/accounts/acme/keys",
                        json_body={"scopes": ["enrich"], "name": "crm", "expires_in_days": 30},
                        headers=auth(admin))
        check(r.status == 201, r)
        k = r.json()
        check(re.fullmatch(r"enr_[0-9a-f]{40}", k["key"]) and k["last4"] == k["key"][-4:] and
              k["scopes"] == ["enrich"] and k["state"] == "active" and k["expires_at"], k)
        check(r.header("location") == f"/admin/client-keys/{k['id']}", r.headers)
        # The key works, only for its scope.
        check(env.request("POST", "/enrich", json_body={"email": "a.b@acme.com"}, headers=auth(k["key"])).status
              == 200, "the new key does not work")
        error(env.request("POST", "/enrich/enqueue", json_body={"records": [{"email": "a.b@acme.com"}]},
                          headers=auth(k["key"])), 403, "forbidden")
        # Shown once: no listing has it.
        for path in ("/admin/client-keys", "/admin/client-keys?account=acme", "/admin/accounts/acme"):
            r = env.request("GET", path, headers=auth(admin))
            check(r.status == 200 and k["key"] not in r.text() and "key\"" not in r.text().replace(
                "\"keys\"", ""), r)
        listed = env.request("GET", "/admin/client-keys?account=acme", headers=auth(admin)).json()["keys"]
        check([x["id"] for x in listed] == [k["id"]] and listed[0]["name"] == "crm", listed)
        error(env.request("GET", "/admin/client-keys?account=ghost", headers=auth(admin)), 404, "not_found")
        error(env.request("GET", "/admin/client-keys?acount=acme", headers=auth(admin)), 400, "invalid_request")
        for body, field in (({"scopes": ["root"]}, "scopes"), ({"scopes": []}, "scopes"),
                            ({"scopes": "enrich"}, "scopes"), ({"expires_in_days": 0}, "expires_in_days"),
                            ({"name": "x" * 65}, "name"), ({"secret": "mine"}, "secret")):
            e = error(env.request("POST", "/admin/accounts/acme/keys", json_body=body, headers=auth(admin)),
                      400, "invalid_request")
            check(e["details"][0]["field"] == field, (body, e))
        error(env.request("POST", "/admin/accounts/ghost/keys", json_body={}, headers=auth(admin)),
              404, "not_found")
        # Default scopes, no expiry; a metrics key.
        r = env.request("POST", "/admin/accounts/acme/keys", json_body={}, headers=auth(admin))
        check(r.json()["scopes"] == ["enrich", "enqueue"] and r.json()["expires_at"] is None, r.json())
        # Revoke: effective on the next request, a second revoke is a conflict.
        r = env.request("DELETE", f"/admin/client-keys/{k['id']}", headers=auth(admin))
        check(r.status == 200 and r.json()["state"] == "revoked" and r.json()["revoked_at"], r)
        error(env.request("POST", "/enrich", json_body={"email": "a.b@acme.com"}, headers=auth(k["key"])),
              401, "unauthorized")
        error(env.request("DELETE", f"/admin/client-keys/{k['id']}", headers=auth(admin)), 409, "conflict")
        error(env.request("DELETE", "/admin/client-keys/999", headers=auth(admin)), 404, "not_found")
        error(env.request("DELETE", "/admin/client-keys/x1", headers=auth(admin)), 404, "not_found")
        states = {x["id"]: x["state"] for x in json.loads(env.ctl("key", "list", "--json").stdout)}
        check(states[k["id"]] == "revoked", states)


def test_metrics_scope_scrapes_without_rate_limit_and_promtool_accepts_the_text():
    with Env(conf={"accounts_default": {"requests_per_minute": 1, "burst": 2}}) as env:
        scraper = key_for(env, "prometheus", "metrics")
        for _ in range(6):
            r = env.request("GET", "/metrics", headers=auth(scraper))
            check(r.status == 200 and r.header("ratelimit") is None, r)
        admin = key_for(env, "ops", "admin")
        statuses = [env.request("GET", "/metrics", headers=auth(admin)).status for _ in range(4)]
        check(statuses[:2] == [200, 200] and 429 in statuses, f"an admin key is metered: {statuses}")
        text = env.request("GET", "/metrics", headers=auth(scraper)).text()
        for name in ("enrichd_build_info{", "process_resident_memory_bytes ", "process_open_fds ",
                     "process_cpu_seconds_total ", "process_start_time_seconds ", "process_threads "):
            check(name in text, f"{name} missing from /metrics")
        rss = float(re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M).group(1))
        check(rss > 1e6, f"resident memory {rss}")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        print("    promtool check metrics: exit %d %s" % (p.returncode, (p.stdout + p.stderr).strip() or "(no problems)"))
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr)


def ready_conf(env):
    return {"providers": [provider(env, PDL, 2)],
            "waterfall": {g: [PDL] for g in ("person", "phone", "email", "company")},
            "rotation": {"strategy": "ordered"}}


def test_health_ready_counts_usable_keys_and_is_503_without_a_store_or_keys():
    with Env(conf=ready_conf, sim=True, env=keys_env(PDL, 2)) as env:
        r = env.request("GET", "/health/ready")
        check(r.status == 200 and r.json()["status"] == "ready" and
              r.json()["providers"] == {"pdl": {"keys": 2, "usable": 2}}, r)
        check("pdl-1" not in r.text() and "acme" not in r.text(), "key ids or accounts in /health/ready")
        # Both keys refused by the provider: not ready, 503 with Retry-After.
        k = key_for(env, "acme", "enrich")
        for i in (1, 2):
            env.sim.script(PDL, secret(PDL, i), [{"kind": "invalid_key"}])
        env.request("POST", "/enrich", json_body={"email": "a.b@acme.com"}, headers=auth(k))
        r = env.request("GET", "/health/ready")
        check(r.status == 503 and r.json()["status"] == "not_ready" and r.header("retry-after") and
              r.json()["providers"]["pdl"] == {"keys": 2, "usable": 0} and r.json()["store"] == "ok", r)
        admin = key_for(env, "ops", "admin")
        env.request("POST", "/admin/keys/pdl-1/revive", headers=auth(admin))
        check(env.request("GET", "/health/ready").status == 200, "ready again after a revive")
        if env.store_url.startswith("postgres"):
            return  # the store gone on PostgreSQL: the test below
        # The store takes no writes: not ready (and /health degraded), back when it does.
        with WriteLock(env.db_path):
            r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(env.request("GET", "/health/ready")),
                         timeout=15, what="/health/ready to say 503")
            check(r.json()["store"] == "unavailable" and r.json()["status"] == "not_ready", r.json())
        wait_for(lambda: env.request("GET", "/health/ready").status == 200, timeout=15,
                 what="/health/ready to come back")
        check(env.request("GET", "/health").json() == {"status": "ok", "version": r.json()["version"],
                                                       "store": "ok"}, "/health changed shape")


def test_json_log_lines_and_the_account_on_access_lines():
    with Env(conf={"log_format": "json"}) as env:
        k = key_for(env, "acme", "enrich")
        env.request("POST", "/enrich", json_body={"email": "a.b@acme.com"}, headers=auth(k))
        env.request("GET", "/health")
        env.request("GET", "/nope\"x")
        lines = wait_for(lambda: [l for l in env.log().splitlines() if '"mod":"access"' in l and
                                  "/enrich" in l], what="the access line")
        for line in env.log().splitlines():
            json.loads(line)  # every line is one JSON object
        acc = [json.loads(l) for l in env.log().splitlines() if '"mod":"access"' in l]
        enrich = next(a for a in acc if a["path"] == "/enrich")
        check(enrich["account"] == "acme" and enrich["status"] == 200 and enrich["method"] == "POST" and
              isinstance(enrich["ms"], float) and enrich["rid"], enrich)
        check(next(a for a in acc if a["path"] == "/health")["account"] == "-", acc)
        check(k not in env.log(), "a key in the log")
        # Back to text on reload; the account is there too.
        conf = dict(env.conf, log_format="text")
        env.reload(conf)
        env.request("POST", "/enrich", json_body={"email": "a.b@acme.com"}, headers=auth(k))
        env.wait_log(r'mod=access method=POST path="/enrich" status=200 ms=[0-9.]+ account=acme')


def test_audit_log_has_enrichctl_and_api_actions_without_secrets():
    with Env() as env:
        admin = key_for(env, "ops", "admin")                       # enrichctl: account + key
        env.ctl("account", "set-limits", "ops", "--burst", "500")  # enrichctl
        r = env.request("POST", "/admin/accounts/ops/keys", json_body={"scopes": ["enrich"]},
                        headers=dict(auth(admin), **{"X-Forwarded-For": "203.0.113.7"}))
        secret_key = r.json()["key"]
        env.request("PATCH", "/admin/accounts/ops", json_body={"records_per_day": 10}, headers=auth(admin))
        env.request("DELETE", f"/admin/client-keys/{r.json()['id']}", headers=auth(admin))
        # A refused call is no action: nothing is written for it.
        env.request("PATCH", "/admin/accounts/ops", json_body={"burst": 0}, headers=auth(admin))
        page = env.request("GET", "/admin/audit?limit=3", headers=auth(admin)).json()
        check([e["action"] for e in page["entries"]] ==
              ["client_key.revoke", "account.update", "client_key.create"], page)
        check(page["next_cursor"], "no next page")
        rest = env.request("GET", f"/admin/audit?cursor={page['next_cursor']}", headers=auth(admin)).json()
        check([e["action"] for e in rest["entries"]] == ["account.update", "client_key.create", "account.create"]
              and rest["next_cursor"] is None, rest)
        api = page["entries"][2]
        kid = next(k["id"] for k in json.loads(env.ctl("key", "list", "ops", "--json").stdout) if k["name"] is None
                   and "admin" in k["scopes"])
        check(api["who"] == f"ops (key {kid})" and api["from"] == "127.0.0.1 (X-Forwarded-For: 203.0.113.7)" and
              api["details"]["scopes"] == "enrich" and api["details"]["last4"] == secret_key[-4:], api)
        ctl = rest["entries"][0]
        check(ctl["who"].startswith("enrichctl (") and ctl["from"] == "local" and
              ctl["details"] == {"burst": 500}, ctl)
        check(page["entries"][1]["details"] == {"records_per_day": 10}, page["entries"][1])
        everything = json.dumps(page) + json.dumps(rest)
        check(secret_key not in everything and admin not in everything, "a key in the audit log")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", api["at"]), api["at"])
        error(env.request("GET", "/admin/audit?cursor=x", headers=auth(admin)), 400, "invalid_request")
        error(env.request("GET", "/admin/audit?limit=0", headers=auth(admin)), 400, "invalid_request")


def jobs_conf(env):
    return {"providers": [provider(env, PDL, 2)],
            "waterfall": {g: [PDL] for g in ("person", "phone", "email", "company")},
            "worker": {"concurrency": 2, "poll_ms": 50, "lease_s": 5, "heartbeat_s": 1}}


def test_jobs_listing_is_newest_first_paginated_and_stable_while_jobs_are_added():
    with Env(conf=jobs_conf, sim=True, env=keys_env(PDL, 2)) as env:
        one = key_for(env, "one", "enqueue")
        two = key_for(env, "two", "enqueue")
        admin = key_for(env, "ops", "admin")

        def submit(k):
            r = env.request("POST", "/enrich/enqueue", headers=auth(k),
                            json_body={"records": [{"email": "a.b@acme.com"}]})
            check(r.status == 202, r)
            return r.json()["job_id"]
        mine = [submit(one) for _ in range(5)]
        theirs = submit(two)
        r = env.request("GET", "/enrich/jobs", headers=auth(one))
        check([j["job_id"] for j in r.json()["jobs"]] == mine[::-1] and r.json()["next_cursor"] is None, r.json())
        check(all(j["account"] == "one" for j in r.json()["jobs"]), "another account's job listed")
        # Two at a time while new jobs arrive: every job that was there comes once, in order.
        seen, cursor = [], None
        while True:
            q = "/enrich/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = env.request("GET", q, headers=auth(one)).json()
            seen += [j["job_id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
            submit(one)
        check(seen == mine[::-1], f"pages repeated or skipped jobs: {seen}")
        # Admins see every account, or one with ?account=.
        r = env.request("GET", "/enrich/jobs?limit=100", headers=auth(admin)).json()
        check(theirs in [j["job_id"] for j in r["jobs"]] and len(r["jobs"]) == 6 + 2, r)
        r = env.request("GET", "/enrich/jobs?account=two", headers=auth(admin)).json()
        check([j["job_id"] for j in r["jobs"]] == [theirs], r)
        error(env.request("GET", "/enrich/jobs?account=two", headers=auth(one)), 403, "forbidden")
        error(env.request("GET", "/enrich/jobs?account=ghost", headers=auth(admin)), 404, "not_found")
        for q in ("limit=0", "limit=101", "cursor=12", "cursor=1.x", "cursor=.5", "sort=asc"):
            error(env.request("GET", "/enrich/jobs?" + q, headers=auth(one)), 400, "invalid_request")
        user = key_for(env, "three", "enrich")
        error(env.request("GET", "/enrich/jobs", headers=auth(user)), 403, "forbidden")


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + ("{" + labels + "}" if labels else "")) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_count_the_workers_calls_credits_meters_and_the_queue():
    with Env(conf=jobs_conf, sim=True, env=keys_env(PDL, 2)) as env:
        k = key_for(env, "acme", "enrich,enqueue")
        scraper = key_for(env, "prom", "metrics")
        env.sim.script(PDL, secret(PDL, 2), [{"kind": "invalid_key"}])
        r = env.request("POST", "/enrich/enqueue", headers=auth(k),
                        json_body={"records": [{"email": f"p{i}.x@acme.com"} for i in range(12)]})
        job = r.json()["job_id"]
        text = env.request("GET", "/metrics", headers=auth(scraper)).text()
        check(metric(text, "enrichd_job_rows", 'state="pending"') == 12, "12 pending rows")
        check(metric(text, "enrichd_jobs", 'status="queued"') == 1, "1 queued job")
        check(metric(text, "enrichd_job_oldest_pending_age_seconds") >= 0, "oldest pending age")
        # Only the worker calls providers: the responder's /metrics must show its calls.
        env.start_worker()
        wait_for(lambda: env.request("GET", f"/enrich/jobs/{job}", headers=auth(k)).json()["status"] == "completed",
                 timeout=30, what="the job to complete")
        admin = key_for(env, "ops", "admin")

        def pool():
            return {x["id"]: x for x in env.request("GET", "/admin/keys", headers=auth(admin)).json()["keys"]}
        # The worker writes its counters about once a second; every call it made shows
        # in the responder's /metrics once the store has them (and no call twice).
        def settled():
            keys = pool()
            text = env.request("GET", "/metrics", headers=auth(scraper)).text()
            hits = metric(text, "enrichd_upstream_calls_total", 'provider="pdl",key="pdl-1",outcome="hit"') or 0
            misses = metric(text, "enrichd_upstream_calls_total", 'provider="pdl",key="pdl-1",outcome="miss"') or 0
            # Both reads are snapshots of counters and meters the worker writes
            # separately: settled when they agree.
            left = metric(text, "enrichd_upstream_key_requests_left", 'provider="pdl",key="pdl-1"')
            credits = metric(text, "enrichd_upstream_key_credits_total", 'provider="pdl",key="pdl-1"')
            if (hits + misses >= 12 and hits + misses == keys["pdl-1"]["calls"] and hits == keys["pdl-1"]["hits"]
                    and left is not None and left == keys["pdl-1"]["requests_left"]
                    and credits == keys["pdl-1"]["credits"]):
                return keys, text, hits
            return None
        keys, text, hits = wait_for(settled, timeout=10, what="the worker's calls in /metrics")
        sim_calls = len([c for c in env.sim.calls(provider=PDL) if c["key"] == secret(PDL, 1)])
        check(keys["pdl-1"]["calls"] == sim_calls, f"pool {keys['pdl-1']['calls']} calls, the simulator saw {sim_calls}")
        check(metric(text, "enrichd_upstream_calls_total", 'provider="pdl",key="pdl-2",outcome="key_invalid"') == 1,
              "the invalid key's call")
        check(metric(text, "enrichd_upstream_key_state", 'provider="pdl",key="pdl-2",state="invalid"') == 1, "state")
        check(metric(text, "enrichd_account_credits_total", 'account="acme"') == hits, "credits of the account")
        check(metric(text, "enrichd_job_rows", 'state="pending"') == 0 and
              metric(text, "enrichd_jobs", 'status="completed"') == 1, "the queue after the job")
        check(metric(text, "enrichd_job_oldest_pending_age_seconds") == 0, "no pending job left")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr)
        # The dead key is an alert in the list.
        alerts = env.request("GET", "/admin/alerts", headers=auth(admin)).json()["alerts"]
        check(any(a["event"] == "key_state" and a["key"] == "pdl-2" and a["state"] == "invalid" for a in alerts),
              alerts)
        check(secret(PDL, 2) not in json.dumps(alerts), "a secret in the alerts")


def test_health_ready_is_503_while_the_postgresql_store_is_gone():
    from harness import pg_server
    with Env(conf=ready_conf, sim=True, env=keys_env(PDL, 2), store_kind="postgresql") as env:
        check(env.request("GET", "/health/ready").status == 200, "ready on PostgreSQL")
        db = env.store_url.split("/")[3].split("?")[0]

        def psql(sql):
            subprocess.run(["psql", pg_server(), "-qAt", "-c", sql], check=True, capture_output=True)
        # The database refuses connections and every session to it is ended: gone.
        psql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
        try:
            r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(env.request("GET", "/health/ready")),
                         timeout=20, what="/health/ready to say 503")
            check(r.json()["store"] == "unavailable" and r.header("retry-after"), r)
        finally:
            psql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
        wait_for(lambda: env.request("GET", "/health/ready").status == 200, timeout=20,
                 what="/health/ready back with the store")
