"""The operators' console (/console/) in a real headless Chromium against the real nginx,
enrichd, enrich-worker and the provider simulator.

Each view is looked at 1280x800 and 390x844 (the credit budgets in the Usage and Key
pool views too); the screenshots are saved under build/artifacts/console/ (their paths
are printed) for a person to look at."""

import csv
import io
import json

from browser import Browser
from harness import Env, check, deep_merge, wait_for
from providers import keys_env, provider, secret

PDL = "pdl"
WORKER = {"concurrency": 2, "claim_batch": 2, "lease_s": 5, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 3, "grace_s": 5}


def conf(env):
    return {"providers": [provider(env, PDL, 3)],
            "waterfall": {g: [PDL] for g in ("person", "phone", "email", "company")},
            "rotation": {"strategy": "ordered"}, "worker": WORKER}


def admin_key(env, account="ops"):
    env.ctl("account", "create", account, check_rc=False)
    return env.ctl("key", "create", account, "--scopes", "admin,enqueue,enrich", "--raw").stdout.strip()


def sign_in(b, key):
    b.open("/console/")
    b.wait(lambda: b.visible("#key"), what="the sign-in form")
    field = b.one("#key")
    field.clear()
    field.send_keys(key)
    b.one("#signin-form button[type=submit]").click()


def shoot_both(b, name, ready):
    """Screenshots of the current view at both sizes, each once ready() holds."""
    for size in ("desktop", "phone"):
        b.size(size)
        b.wait(ready, what=f"{name} at {size} size")
        w = b.js("return document.documentElement.scrollWidth")
        vw = b.js("return window.innerWidth")
        check(w <= vw + 1, f"{name} at {size} size is {w}px wide in a {vw}px window (sideways scroll)")
        b.screenshot(f"{name}-{size}")
    b.size("desktop")


def pool_row(b, key_id):
    return b.visible(f'tr[data-id="{key_id}"]')


def test_console_refuses_a_wrong_key_and_keeps_the_key_out_of_urls_and_cookies():
    with Env() as env:
        r = env.request("GET", "/console/")
        csp = r.header("content-security-policy") or ""
        check(r.status == 200 and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and
              "unsafe-inline" not in csp, r)
        check(r.header("x-content-type-options") == "nosniff", r.headers)
        check(env.request("GET", "/console").status == 301, "/console does not redirect")
        page = r.text()
        check("<script>" not in page and " style=" not in page and " onclick" not in page,
              "inline script or style in index.html")
        good = admin_key(env)
        env.ctl("account", "create", "acme")
        weak = env.ctl("key", "create", "acme", "--scopes", "enrich", "--raw").stdout.strip()
        with Browser(env.https_port) as b:
            sign_in(b, "enr_" + "0" * 40)
            err = b.wait(lambda: b.text("#signin-error"), what="the refusal")
            check("refused" in err, err)
            check(b.visible("#view-pool") is None and not b.one("#nav").is_displayed(),
                  "the console opened for a wrong key")
            check(b.js("return sessionStorage.length") == 0, "a refused key was stored")
            b.screenshot("signin-refused-desktop")
            sign_in(b, weak)
            err = b.wait(lambda: "admin scope" in b.text("#signin-error") and b.text("#signin-error"),
                         what="the scope refusal")
            sign_in(b, good)
            b.wait(lambda: b.visible("#view-pool"), what="the pool view after signing in")
            check(good not in b.driver.current_url, "the key in the URL")
            check(b.js("return document.cookie") == "" and not b.driver.get_cookies(), "a cookie was set")
            check(b.js("return sessionStorage.getItem('enrichd.adminKey')") == good,
                  "the key is not in session storage")
            check(b.js("return localStorage.length") == 0, "something went to local storage")
            b.size("phone")
            b.open("/console/")
            b.one("#signout").click()
            b.wait(lambda: b.visible("#key"), what="the sign-in form after signing out")
            b.screenshot("signin-phone")
            check(b.js("return sessionStorage.length") == 0, "the key stayed after signing out")
            # The key was revoked meanwhile: the next call is refused and the console says so.
            b.size("desktop")
            sign_in(b, good)
            b.wait(lambda: b.visible("#view-pool"), what="the pool view")
            kid = next(k["id"] for k in json.loads(env.ctl("key", "list", "ops", "--json").stdout))
            env.ctl("key", "revoke", str(kid))
            b.open("/console/#usage")
            err = b.wait(lambda: b.text("#signin-error"), what="the refusal of a revoked key")
            check("refused" in err, err)
            errors = [e for e in b.console_errors() if "Content Security Policy" in e]
            check(not errors, f"CSP violations: {errors}")


def test_console_pool_revive_usage_jobs_alerts_audit_in_a_real_browser():
    env_vars = keys_env(PDL, 3)
    with Env(conf=conf, sim=True, env=env_vars, worker=True) as env:
        key = admin_key(env)
        h = {"Authorization": "Bearer " + key}
        # One key rate-limited for ten minutes, one refused: a cooling and an invalid key.
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 600}])
        env.sim.script(PDL, secret(PDL, 2), [{"kind": "invalid_key"}])
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@acme.com"}, headers=h)
        check(r.status == 200, r)
        env.ctl("account", "create", "acme")
        env.ctl("account", "set-limits", "acme", "--burst", "50")
        with Browser(env.https_port) as b:
            sign_in(b, key)
            b.wait(lambda: pool_row(b, "pdl-3"), what="the pool table")
            states = {k: pool_row(b, k).text for k in ("pdl-1", "pdl-2", "pdl-3")}
            check("cooling" in states["pdl-1"] and "rate-limited" in states["pdl-1"], states)
            check("invalid" in states["pdl-2"] and "refused the key" in states["pdl-2"] and
                  "Revive" in states["pdl-2"], states)
            check("active" in states["pdl-3"] and "Revive" not in states["pdl-3"], states)
            shoot_both(b, "pool-cooling-and-invalid", lambda: pool_row(b, "pdl-2"))

            # Revive the invalid key: a confirmation first; cancelling changes nothing.
            b.one('button[data-revive="pdl-2"]').click()
            b.wait(lambda: b.visible("dialog#confirm"), what="the confirmation")
            check("pdl-2" in b.text("#confirm-title"), b.text("#confirm-title"))
            b.screenshot("pool-revive-confirm-desktop")
            b.one("#confirm-cancel").click()
            b.wait(lambda: not b.visible("dialog#confirm"), what="the dialog to close")
            keys = {k["id"]: k for k in env.request("GET", "/admin/keys", headers=h).json()["keys"]}
            check(keys["pdl-2"]["state"] == "invalid", "cancel revived the key")
            b.one('button[data-revive="pdl-2"]').click()
            b.wait(lambda: b.visible("dialog#confirm"), what="the confirmation")
            b.one("#confirm-ok").click()
            b.wait(lambda: pool_row(b, "pdl-2") and "active" in pool_row(b, "pdl-2").text,
                   what="pdl-2 to show active")
            keys = {k["id"]: k for k in env.request("GET", "/admin/keys", headers=h).json()["keys"]}
            check(keys["pdl-2"]["state"] == "active", keys["pdl-2"])
            b.screenshot("pool-revived-desktop")

            # A running job: progress moves on the page, then the CSV downloads.
            env.sim.config(delay_ms=150)
            records = [{"email": f"person{i}@acme.com"} for i in range(40)]
            r = env.request("POST", "/enrich/enqueue", headers=h,
                            json_body={"records": records, "enrich": ["first_name", "title"]})
            check(r.status == 202, r)
            job = r.json()["job_id"]
            b.open("/console/#jobs")

            def progress():
                row = b.visible(f'tr[data-id="{job}"]')
                return row and float(row.find_element("css selector", "progress").get_attribute("value"))
            first = b.wait(lambda: progress() is not None and (progress(), b.text(f'tr[data-id="{job}"]')),
                           what="the job row")
            later = b.wait(lambda: progress() > first[0] and progress() < 1000 and progress(), timeout=20,
                           what="the job's progress to move")
            check(later > first[0], (first, later))
            row_text = b.text(f'tr[data-id="{job}"]')
            check("running" in row_text and "/min" in row_text, row_text)
            shoot_both(b, "jobs-running", lambda: b.visible(f'tr[data-id="{job}"]'))
            b.wait(lambda: "completed" in b.text(f'tr[data-id="{job}"]'), timeout=30,
                   what="the job to complete")
            b.visible(f'tr[data-id="{job}"] button[data-download="csv"]').click()
            path = b.downloaded(job + ".csv")
            got = open(path, encoding="utf-8", newline="").read()
            rows = list(csv.DictReader(io.StringIO(got)))
            check(len(rows) == 40 and rows[0]["email"] == "person0@acme.com" and
                  all(r["_status"] in ("complete", "partial", "not_found") for r in rows), rows[:3])
            api_csv = env.request("GET", f"/enrich/jobs/{job}/results?format=csv", headers=h).text()
            check(got == api_csv, "the download differs from the API's CSV")
            b.screenshot("jobs-completed-desktop")

            # Usage: charts and totals per account.
            b.open("/console/#usage")
            b.wait(lambda: b.visible("#usage-totals"), what="the usage totals")
            totals = b.text("#usage-totals")
            check("ops" in totals, totals)
            check(len(b.css("#usage-body svg.chart rect")) > 0, "no bars in the charts")
            shoot_both(b, "usage", lambda: b.visible("#usage-totals") and
                       b.js("return document.querySelector('#usage-body svg.chart').viewBox.baseVal.width")
                       == (340 if b.js("return window.innerWidth") < 700 else 600))

            # Alerts: the invalid key was one.
            b.open("/console/#alerts")
            b.wait(lambda: "pdl-2" in b.text("#alerts-body"), what="the alert of the invalid key")
            shoot_both(b, "alerts", lambda: b.visible("#alerts-table"))

            # Audit: the revive made in the browser and the account made with enrichctl.
            b.open("/console/#audit")
            b.wait(lambda: "upstream_key.revive" in b.text("#audit-body"), what="the audit entry of the revive")
            text = b.text("#audit-body")
            check("account.create" in text and "enrichctl" in text, text)
            shoot_both(b, "audit", lambda: b.visible("#audit-table"))
            errors = [e for e in b.console_errors() if "Content Security Policy" in e]
            check(not errors, f"CSP violations: {errors}")


def test_console_shows_account_and_key_budgets():
    """Usage: an account's credits used and left of its day and month budgets; Key pool:
    a key's budget and the exhausted state its spent budget caused."""
    def budget_conf(env):
        c = conf(env)
        c["providers"][0]["keys"][0]["budget"] = {"credits": 2, "period": "day"}
        return c
    with Env(conf=budget_conf, sim=True, env=keys_env(PDL, 3)) as env:
        key = admin_key(env)
        h = {"Authorization": "Bearer " + key}
        env.ctl("account", "create", "acme")
        user = env.ctl("key", "create", "acme", "--scopes", "enrich", "--raw").stdout.strip()
        r = env.request("PATCH", "/admin/accounts/acme", headers=h,
                        json_body={"credits_per_day": 5, "credits_per_month": 100})
        check(r.status == 200, r)
        for i in range(3):
            r = env.request("POST", "/enrich", json_body={"email": f"b{i}.lee@acme.com",
                                                          "enrich": ["first_name", "title"]},
                            headers={"Authorization": "Bearer " + user})
            check(r.status == 200 and r.json()["_meta"]["credits_used"] == 1, r)
        keys = {k["id"]: k for k in env.request("GET", "/admin/keys", headers=h).json()["keys"]}
        check(keys["pdl-1"]["state"] == "exhausted" and keys["pdl-1"]["budget_left"] == 0, keys["pdl-1"])
        with Browser(env.https_port) as b:
            sign_in(b, key)
            b.wait(lambda: pool_row(b, "pdl-3"), what="the pool table")
            # The pool refreshes every 5 s: read a row's text inside wait (a stale row is retried).
            row = b.wait(lambda: pool_row(b, "pdl-1").text, what="pdl-1's row")
            check("exhausted" in row and "credit budget" in row and "is spent" in row, row)
            check("2\n0 of 2 left\nkey/day, spent" in row, row)
            other = b.wait(lambda: pool_row(b, "pdl-2").text, what="pdl-2's row")
            check("key/day" not in other and "active" in other, other)
            shoot_both(b, "pool-budget", lambda: pool_row(b, "pdl-1"))

            b.open("/console/#usage")
            b.wait(lambda: b.visible("#usage-budgets"), what="the budgets table")
            # Read each row in one script call: a refresh may replace the table meanwhile.
            def cells(row_id):
                return b.js("return [...document.querySelectorAll("
                            "'#usage-budgets tr[data-id=\"" + row_id + "\"] td')].map((t) => t.innerText)")[:6]
            b.wait(lambda: cells("acme-day"), what="acme's day budget")
            check(cells("acme-day") == ["acme", "per day", "5", "3", "0", "2"], cells("acme-day"))
            check(cells("acme-month") == ["acme", "per month", "100", "3", "0", "97"], cells("acme-month"))
            check(not b.css('#usage-budgets tr[data-id^="ops-"]'),
                  "an account without a budget is listed")
            shoot_both(b, "usage-budget", lambda: b.visible("#usage-budgets") and b.visible("#usage-totals"))
            errors = [e for e in b.console_errors() if "Content Security Policy" in e]
            check(not errors, f"CSP violations: {errors}")
