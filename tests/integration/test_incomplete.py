"""A failure is never a miss: when a provider could not be asked or failed, POST /enrich
says `incomplete` (nothing found) or `partial` (something found) with `_meta.errors`,
and a batch row is retried instead of being finished as not found."""

from harness import Env, check, deep_merge, wait_for
from providers import client_key, enrich, keys_env, provider, secret

PERSON = ["first_name", "title"]


def one_provider(extra=None, **pextra):
    """pdl alone for every group, one key, a breaker that never opens (each case is
    about one call, not about the key cooling)."""
    def make(env):
        c = {"providers": [provider(env, "pdl", 1, **pextra)],
             "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
             "rotation": {"strategy": "ordered", "breaker_threshold": 1000}}
        return deep_merge(c, extra or {})
    return make


def meta(r):
    check(r.status == 200, r)
    return r.json()["_meta"]


def test_each_kind_of_provider_failure_is_incomplete_not_not_found():
    with Env(conf=one_provider(timeout_ms=500), sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        cases = (
            ("garbage body", {"kind": "garbage"}, "transient"),
            ("HTTP 500", {"kind": "error", "status": 500}, "transient"),
            ("HTTP 503", {"kind": "error", "status": 503}, "transient"),
            # Twice: libcurl sends a request once more on a fresh connection when a
            # reused one closes before any answer, and that one is dropped too.
            ("connection dropped", [{"kind": "drop"}, {"kind": "drop"}], "transient"),
            ("oversized body", {"kind": "garbage", "status": 200, "body": "x" * (5 << 20)}, "transient"),
            ("slow past the call's timeout", {"kind": "slow", "delay_ms": 3000}, "timeout"),
            ("request refused", {"kind": "bad_request"}, "rejected"),
        )
        for i, (what, step, outcome) in enumerate(cases):
            env.sim.script("pdl", secret("pdl", 1), step if isinstance(step, list) else [step])
            b = enrich(env, k, {"email": f"john.doe{i}@acme.com", "enrich": PERSON}, expect=200).json()
            m = b["_meta"]
            check(m["status"] == "incomplete", (what, m))
            check(m["errors"] == [{"provider": "pdl", "outcome": outcome}], (what, m))
            check(b["first_name"] is None and b["title"] is None, (what, b))
        # The same lookups once the provider answers: found, so nothing bad was cached.
        b = enrich(env, k, {"email": "john.doe0@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "complete" and "errors" not in b["_meta"], b)
        # A real miss stays not_found, with no errors.
        m = meta(enrich(env, k, {"email": "nobody.here@acme.com", "enrich": PERSON}))
        check(m["status"] == "not_found" and "errors" not in m, m)
        mx = env.request("GET", "/metrics", headers={"Authorization": "Bearer " + k}).text()
        check('enrichd_enrich_requests_total{status="incomplete"} 7' in mx, mx[:2000])


def test_partial_and_complete_list_the_provider_that_failed():
    def make(env):
        return {"providers": [provider(env, "pdl", 1), provider(env, "lusha", 1)],
                "waterfall": {"person": ["pdl", "lusha"], "phone": ["pdl", "lusha"],
                              "email": ["pdl", "lusha"], "company": ["pdl"]},
                "rotation": {"strategy": "ordered", "breaker_threshold": 1000}}
    e = keys_env("pdl", 1)
    e.update(keys_env("lusha", 1))
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "error", "status": 500}])
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "complete" and b["title"], b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "transient"}], b)
        # Twice: a reused connection that closes unanswered is tried once more.
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "drop"}, {"kind": "drop"}])
        env.sim.script("lusha", secret("lusha", 1), [{"kind": "hit", "omit": ["phone"]}])
        b = enrich(env, k, {"email": "jane.roe@acme.com", "enrich": ["title", "phone"]}, expect=200).json()
        check(b["_meta"]["status"] == "partial" and b["phone"] is None and b["title"], b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "transient"}], b)
        # One provider cooling, the other a real miss: nobody could say "no such person"
        # for sure, so it is incomplete, not not_found (and not 503: lusha was asked).
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 45}])
        enrich(env, k, {"email": "first.call@acme.com", "enrich": PERSON}, expect=200)
        b = enrich(env, k, {"email": "nobody.at.all@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "incomplete", b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "no_usable_key"}], b)
        check(b["_meta"]["providers_skipped"] == ["pdl"], b)


def test_deadline_answers_partial_or_incomplete_never_not_found():
    def make(env):
        return {"providers": [provider(env, "pdl", 1, timeout_ms=10000)],
                "waterfall": {"person": ["local", "pdl"], "company": ["pdl"]},
                "endpoints": {"enrich": {"deadline_ms": 600}}}
    with Env(conf=make, sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "slow", "delay_ms": 8000}] * 2)
        # local finds the name: partial, and the provider that ran out of time is named.
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "partial" and b["first_name"] == "John", b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "deadline"}], b)
        # Nothing local can find: incomplete, not not_found.
        b = enrich(env, k, {"domain": "acme.com", "enrich": ["industry"]}, expect=200).json()
        check(b["_meta"]["status"] == "incomplete" and b["industry"] is None, b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "deadline"}], b)


def test_a_call_the_deadline_cut_short_does_not_count_against_the_key():
    """A request that waited before its call (a queue under load, a slower provider
    first) has less time than the provider's own timeout; when that runs out, the key did
    nothing wrong.  With a breaker that opens on one transient, counting it would cool
    the only key and turn the next request into a 503."""
    def make(env):
        return {"providers": [provider(env, "pdl", 1, timeout_ms=10000)],
                "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
                "rotation": {"breaker_threshold": 1},
                "endpoints": {"enrich": {"deadline_ms": 400}}}
    with Env(conf=make, sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "slow", "delay_ms": 5000}])
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "incomplete", b)
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "deadline"}], b)

        def counted():
            mx = env.request("GET", "/metrics", headers={"Authorization": "Bearer " + k}).text()
            line = 'enrichd_upstream_calls_total{provider="pdl",key="pdl-1",outcome="transient"} 1'
            return mx if line in mx else None
        # The call ends at the deadline; once it is counted, its outcome has been applied.
        mx = wait_for(counted, timeout=10, what="the cut call counted")
        check('enrichd_upstream_key_state{provider="pdl",key="pdl-1",state="active"} 1' in mx,
              [l for l in mx.splitlines() if "key_state" in l])
        # The key is still asked: an answer, not 503 for want of a key.
        b = enrich(env, k, {"email": "jane.roe@acme.com", "enrich": PERSON}, expect=200).json()
        check(b["_meta"]["status"] == "complete" and b["title"], b)
        check(len(env.sim.calls(provider="pdl")) == 2, env.sim.calls(provider="pdl"))


WORKER = {"concurrency": 2, "claim_batch": 2, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50,
          "backoff_base_ms": 100, "backoff_max_ms": 400, "max_attempts": 3, "grace_s": 5}


def _job(env, k, records):
    r = env.request("POST", "/enrich/enqueue", json_body={"records": records, "enrich": ["title"]},
                    headers={"Authorization": "Bearer " + k})
    check(r.status == 202, r)
    return r.json()["job_id"]


def _done(env, k, job):
    def st():
        s = env.request("GET", f"/enrich/jobs/{job}", headers={"Authorization": "Bearer " + k}).json()
        return s if s["status"] in ("completed", "failed", "cancelled") else None
    return wait_for(st, timeout=60, what=f"job {job}")


def _rows(env, k, job):
    import json
    r = env.request("GET", f"/enrich/jobs/{job}/results?format=ndjson",
                    headers={"Authorization": "Bearer " + k})
    check(r.status == 200, r)
    return {x["input"]["email"]: x for x in map(json.loads, r.text().splitlines())}


def test_batch_row_whose_provider_fails_then_answers_ends_found():
    with Env(conf=one_provider({"worker": WORKER}), sim=True, env=keys_env("pdl", 1),
             worker=True) as env:
        k = client_key(env)
        # Two failures of different kinds, then the provider answers.
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "garbage"}, {"kind": "error", "status": 500}])
        job = _job(env, k, [{"email": "john.doe@acme.com"}])
        s = _done(env, k, job)
        check(s["done"] == 1 and s["found"] == 1 and s["not_found"] == 0 and s["failed"] == 0, s)
        row = _rows(env, k, job)["john.doe@acme.com"]
        check(row["_status"] == "complete" and row["title"] and row["_error"] is None, row)
        calls = env.sim.calls(provider="pdl")
        check([c["kind"] for c in calls] == ["garbage", "error", "hit"], calls)


def test_batch_row_that_keeps_failing_is_incomplete_and_retryable():
    with Env(conf=one_provider({"worker": WORKER}), sim=True, env=keys_env("pdl", 1),
             worker=True) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "drop"}] * 3)
        job = _job(env, k, [{"email": "john.doe@acme.com"}])
        s = _done(env, k, job)
        check(s["failed"] == 1 and s["done"] == 0 and s["not_found"] == 0, s)
        check({"code": "upstream_failed", "count": 1} in s["errors"], s)
        row = _rows(env, k, job)["john.doe@acme.com"]
        check(row["_status"] == "incomplete" and row["title"] is None, row)
        check(row["_error"] == "pdl: transient (3 attempts)", row)
        check(len(env.sim.calls(provider="pdl")) == 3, "one call per attempt")
        # Retryable: the provider answers now, and the row is found.
        r = env.request("POST", f"/enrich/jobs/{job}/retry", headers={"Authorization": "Bearer " + k})
        check(r.status == 200 and r.json()["requeued"] == 1, r)
        s = _done(env, k, job)
        check(s["failed"] == 0 and s["found"] == 1, s)
