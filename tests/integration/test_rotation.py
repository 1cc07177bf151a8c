"""Smart key rotation through the real responder, the real HTTP client and the
provider simulator: every scenario asserts the upstream calls and the key states."""

import http.server
import json
import os
import subprocess
import threading
import time

import fcgi
from harness import ENRICHD, Env, check, deep_merge, wait_for
from providers import (admin_keys, calls_by_key, client_key, conf_with, enrich, iso_to_epoch,
                       keys_env, secret)

PDL = "pdl"


def env_for(n, kind=PDL, **kw):
    return Env(conf=conf_with(kind, n, **kw), sim=True, env=keys_env(kind, n))


def person(i=0):
    return {"email": f"john.doe{i}@acme.com", "enrich": ["first_name", "title"]}


def test_scenario_1_first_key_works_one_call():
    with env_for(3) as env:
        k = client_key(env)
        r = enrich(env, k, person(), expect=200)
        body = r.json()
        check(body["_meta"]["status"] == "complete" and body["_meta"]["sources"]["title"] == "pdl", body)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 1}, calls_by_key(env, PDL))
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "active" and keys["pdl-1"]["calls"] == 1 and
              keys["pdl-1"]["hits"] == 1, keys["pdl-1"])


def test_scenario_2_first_key_429_second_works():
    with env_for(3) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 30}])
        t0 = time.time()
        r = enrich(env, k, person(), expect=200)
        check(r.json()["_meta"]["status"] == "complete", r)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 1, secret(PDL, 2): 1}, calls_by_key(env, PDL))
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "cooling", keys["pdl-1"])
        until = iso_to_epoch(keys["pdl-1"]["until"])
        check(t0 + 28 <= until <= time.time() + 31, f"deadline {until - t0:.1f}s after the call, want 30")
        check(keys["pdl-2"]["state"] == "active", keys["pdl-2"])
        # The next request goes straight to a usable key.
        env.sim.clear_calls()
        enrich(env, k, person(1), expect=200)
        check(secret(PDL, 1) not in calls_by_key(env, PDL), calls_by_key(env, PDL))
        check("key pdl-1 (...0001) rate_limited until" in env.log() and "trying pdl-2 (...0002)" in env.log(),
              "the log names keys by id and last four characters")
        check(secret(PDL, 1) not in env.log(), "a secret in the log")


def test_scenario_3_four_dead_keys_fifth_works():
    with env_for(5) as env:
        k = client_key(env)
        for i, kind in ((1, "rate_limited"), (2, "invalid_key"), (3, "rate_limited"), (4, "invalid_key")):
            env.sim.script(PDL, secret(PDL, i), [{"kind": kind}])
        r = enrich(env, k, person(), expect=200)
        check(r.json()["_meta"]["status"] == "complete", r)
        calls = env.sim.calls(provider=PDL)
        check([c["key"] for c in calls] == [secret(PDL, i) for i in range(1, 6)], [c["key"] for c in calls])
        keys = admin_keys(env, k)
        check([keys[f"pdl-{i}"]["state"] for i in range(1, 6)] ==
              ["cooling", "invalid", "cooling", "invalid", "active"], keys)
        check(keys["pdl-2"].get("until") is None, "an invalid key has no deadline")


def test_scenario_4_all_keys_dead_then_no_calls_until_comeback():
    with env_for(3) as env:
        k = client_key(env)
        for i, reset in ((1, 40), (2, 20), (3, 60)):
            env.sim.script(PDL, secret(PDL, i), [{"kind": "rate_limited", "reset_s": reset}])
        t0 = time.time()
        r = enrich(env, k, person(), expect=503)
        check(r.json()["error"]["code"] == "unavailable", r)
        ra = int(r.header("retry-after"))
        check(18 <= ra <= 21, f"Retry-After {ra}: the earliest key (20 s) comes back first")
        check(calls_by_key(env, PDL) == {secret(PDL, i): 1 for i in (1, 2, 3)}, calls_by_key(env, PDL))
        # Until then, no upstream call at all.
        for i in range(3):
            r = enrich(env, k, person(10 + i), expect=503)
            check(abs(int(r.header("retry-after")) - (20 - (time.time() - t0))) <= 2, r)
        check(len(env.sim.calls(provider=PDL)) == 3, "calls made while every key was cooling")
        check("provider pdl has no usable key" in env.log(), "a warning names the dry pool")


def test_scenario_5_not_found_is_an_answer():
    with env_for(3) as env:
        k = client_key(env)
        # Nobody there, at a company nobody knows either: the person lookup and the
        # company lookup both miss, each once, on the first key.
        r = enrich(env, k, {"email": "miss.someone@missacme.com"}, expect=200)
        body = r.json()
        check(body["_meta"]["status"] == "not_found", body)
        check(all(body[f] is None for f in body if f != "_meta"), body)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 2}, "a miss must not rotate")
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "active" and keys["pdl-1"]["misses"] == 2, keys["pdl-1"])


def test_402_parks_key_until_reset_and_admin_revives():
    with env_for(2) as env:
        k = client_key(env)
        reset = int(time.time()) + 7200
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "quota", "headers": {"x-ratelimit-reset": str(reset)}}])
        enrich(env, k, person(), expect=200)
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "exhausted", keys["pdl-1"])
        check(abs(iso_to_epoch(keys["pdl-1"]["until"]) - reset) <= 1, keys["pdl-1"])
        r = env.request("POST", "/admin/keys/pdl-1/revive", headers={"Authorization": "Bearer " + k})
        check(r.status == 200 and r.json()["state"] == "active", r)
        r = env.request("POST", "/admin/keys/nope/revive", headers={"Authorization": "Bearer " + k})
        check(r.status == 404, r)
        env.sim.clear_calls()
        enrich(env, k, person(2), expect=200)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 1}, "the revived key is used again")


def test_402_without_reset_waits_for_an_admin():
    with env_for(2) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "quota"}])
        enrich(env, k, person(), expect=200)
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "exhausted" and keys["pdl-1"].get("until") is None, keys["pdl-1"])
        p = env.ctl("keys", "list", "--json")
        listed = {x["id"]: x for x in json.loads(p.stdout)}
        check(listed["pdl-1"]["state"] == "exhausted" and listed["pdl-1"]["last4"] == "0001", listed)
        p = env.ctl("keys", "revive", "pdl-1")
        check("revived key pdl-1 (...0001)" in p.stdout, p.stdout)
        check(admin_keys(env, k)["pdl-1"]["state"] == "active")


def test_lusha_403_does_not_retire_the_key():
    with env_for(2, kind="lusha") as env:
        k = client_key(env)
        env.sim.script("lusha", secret("lusha", 1), [{"kind": "forbidden"}])
        r = enrich(env, k, person(), expect=200)
        check(r.json()["_meta"]["status"] == "complete", r)
        keys = admin_keys(env, k)
        check(keys["lusha-1"]["state"] == "active", keys["lusha-1"])
        env.sim.clear_calls()
        enrich(env, k, person(1), expect=200)
        check(calls_by_key(env, "lusha") == {secret("lusha", 1): 1}, "the 403 key stays first in line")


def test_cooled_key_comes_back_after_its_deadline():
    with env_for(2) as env:
        k = client_key(env)
        # Long enough that a slow (sanitizer) build still sees it cooling.
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 3}])
        enrich(env, k, person(), expect=200)
        key = admin_keys(env, k)["pdl-1"]
        check(key["state"] == "cooling", key)
        wait_for(lambda: admin_keys(env, k)["pdl-1"]["state"] == "active", timeout=10,
                 what="the key to come back")
        env.sim.clear_calls()
        enrich(env, k, person(1), expect=200)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 1}, calls_by_key(env, PDL))


def test_round_robin_spreads_calls_evenly():
    with env_for(5, rotation={"strategy": "round_robin"}) as env:
        k = client_key(env)
        for i in range(100):
            enrich(env, k, person(i), expect=200)
        counts = calls_by_key(env, PDL)
        check(sorted(counts.values()) == [20] * 5, counts)


def test_least_used_prefers_the_quietest_key():
    with env_for(3, rotation={"strategy": "least_used"}) as env:
        k = client_key(env)
        for i in range(9):
            enrich(env, k, person(i), expect=200)
        check(sorted(calls_by_key(env, PDL).values()) == [3, 3, 3], calls_by_key(env, PDL))


def test_keys_of_one_upstream_account_cool_together():
    with env_for(3, accounts=["acme", "acme", "other"]) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 30}])
        enrich(env, k, person(), expect=200)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 1, secret(PDL, 3): 1},
              f"pdl-2 shares pdl-1's account: {calls_by_key(env, PDL)}")
        keys = admin_keys(env, k)
        check(keys["pdl-2"]["state"] == "cooling" and keys["pdl-2"]["until"] == keys["pdl-1"]["until"], keys)


def test_deadlines_only_move_later():
    with env_for(2, accounts=["acme", "acme"]) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 60}])
        env.sim.script(PDL, secret(PDL, 2), [{"kind": "rate_limited", "reset_s": 5}])
        enrich(env, k, person(), expect=503)  # pdl-1 cools both; nothing else to try
        first = admin_keys(env, k)["pdl-2"]["until"]
        # Revive pdl-2 only, then a shorter signal on it must not shorten pdl-1's deadline.
        env.ctl("keys", "revive", "pdl-2")
        enrich(env, k, person(1), expect=503)
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["until"] == first, f"pdl-1 deadline moved earlier: {keys}")


def test_rotation_off_uses_only_the_first_key():
    with env_for(3, rotation={"strategy": "round_robin", "endpoints": {"enrich": False}}) as env:
        k = client_key(env)
        for i in range(6):
            enrich(env, k, person(i), expect=200)
        check(calls_by_key(env, PDL) == {secret(PDL, 1): 6}, calls_by_key(env, PDL))
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 30}])
        enrich(env, k, person(99), expect=503)
        check(set(calls_by_key(env, PDL)) == {secret(PDL, 1)}, "rotation off must not try pdl-2")
        # Rolling rotation back on is a reload away.
        env.reload(conf=deep_merge(env.conf, {"rotation": {"endpoints": {"enrich": True}}}))
        r = enrich(env, k, person(100), expect=200)
        check(r.json()["_meta"]["status"] == "complete", r)


def test_key_state_is_shared_between_two_responders():
    with env_for(2) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 60}])
        enrich(env, k, person(), expect=200)
        # A second responder process on its own socket, same store and configuration.
        conf2 = deep_merge(env.conf, {"listen": os.path.join(env.tmp, "second.sock"),
                                      "log_file": os.path.join(env.tmp, "second.log")})
        path2 = os.path.join(env.tmp, "second.conf")
        from harness import render_conf
        with open(path2, "w") as f:
            f.write(render_conf(conf2))
        p = subprocess.Popen([ENRICHD, "-c", path2], env=env.environ())
        try:
            wait_for(lambda: os.path.exists(conf2["listen"]), what="second responder")
            env.sim.clear_calls()
            body = json.dumps(person(5)).encode()
            status, _, out = fcgi.request(conf2["listen"], "POST", "/enrich", body, {
                "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": "Bearer " + k})
            check(status == 200 and b'"complete"' in out, (status, out))
            check(calls_by_key(env, PDL) == {secret(PDL, 2): 1},
                  f"the second process skipped the cooling key: {calls_by_key(env, PDL)}")
        finally:
            p.terminate()
            p.wait(30)


def test_transients_trip_the_breaker_and_rotate():
    with env_for(2, extra_conf={"rotation": {"strategy": "ordered", "breaker_threshold": 2}}) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "error", "status": 503}], then="repeat_last")
        r = enrich(env, k, person(), expect=200)
        check(r.json()["_meta"]["status"] == "complete", r)
        check(admin_keys(env, k)["pdl-1"]["state"] == "active", "one transient does not cool")
        enrich(env, k, person(1), expect=200)
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "cooling" and keys["pdl-1"]["errors"] == 2, keys["pdl-1"])
        env.sim.clear_calls()
        enrich(env, k, person(2), expect=200)
        check(calls_by_key(env, PDL) == {secret(PDL, 2): 1}, "the broken key is skipped")


def test_pacing_keeps_under_the_provider_limit():
    with env_for(1, requests_per_minute=600) as env:  # one call per 100 ms
        k = client_key(env)
        for i in range(6):
            enrich(env, k, person(i), expect=200)
        t = [c["t_ms"] for c in env.sim.calls(provider=PDL)]
        gaps = [b - a for a, b in zip(t, t[1:])]
        # Slots are 100 ms apart when the calls leave enrichd.  One call's arrival at
        # the simulator may lag its slot (connection set-up, a busy machine), which
        # shortens the next gap, but pacing never lets call k leave before slot k:
        # from the second call on, call k arrives at least (k - 1) slots later.  The
        # first call carries the connection set-up, so it is the reference for none.
        late = [t[k] - t[1] - (k - 1) * 100 for k in range(2, len(t))]
        check(len(t) == 6 and t[-1] - t[0] >= 480 and min(late) >= -10,
              f"paced calls ahead of their slots: gaps {gaps}, lateness {late}")


class _Receiver(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("Content-Length", "0"))
        _Receiver.got.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_alert_webhook_when_a_key_dies():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/alerts"
    try:
        with env_for(1, extra_conf={"alerts": {"webhook_url": url}}) as env:
            k = client_key(env)
            env.sim.script(PDL, secret(PDL, 1), [{"kind": "invalid_key"}])
            enrich(env, k, person(), expect=503)
            wait_for(lambda: len(_Receiver.got) >= 2, what="two alerts")
            events = {a["event"]: a for a in _Receiver.got}
            check(events["key_state"]["key"] == "pdl-1" and events["key_state"]["state"] == "invalid",
                  events)
            check(events["pool_dry"]["provider"] == "pdl", events)
            check(secret(PDL, 1) not in json.dumps(_Receiver.got), "a secret in an alert")
            check("key pdl-1 (...0001) of provider pdl is invalid" in env.log(), "warning line")
    finally:
        srv.shutdown()


def test_key_metrics_and_admin_listing_hide_secrets():
    with env_for(2) as env:
        k = client_key(env)
        enrich(env, k, person(), expect=200)
        m = env.request("GET", "/metrics", headers={"Authorization": "Bearer " + k}).text()
        check('enrichd_upstream_calls_total{provider="pdl",key="pdl-1",outcome="hit"} 1' in m, m[-3000:])
        check('enrichd_upstream_key_state{provider="pdl",key="pdl-1",state="active"} 1' in m, m[-3000:])
        check("enrichd_upstream_call_duration_seconds_count" in m, "latency histogram")
        keys = env.request("GET", "/admin/keys", headers={"Authorization": "Bearer " + k}).text()
        check(secret(PDL, 1) not in keys and secret(PDL, 1) not in m, "a secret leaked")
        check(set(json.loads(keys)["keys"][0]) >= {"id", "provider", "account", "state", "last4",
                                                  "calls", "hits", "misses", "errors", "credits",
                                                  "last_used"}, keys)
