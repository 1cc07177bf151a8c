"""POST /enrich: validation, the waterfall, the cache, the deadline, fallbacks."""

import json
import threading
import time

from harness import Env, check, deep_merge
from providers import (calls_by_key, client_key, conf_with, enrich, keys_env, provider, secret)


def auth(k):
    return {"Authorization": "Bearer " + k}


def details(r):
    check(r.status == 400, r)
    e = r.json()["error"]
    check(e["code"] == "invalid_request", r)
    return {(d["field"], d["problem"]) for d in e["details"]}


def two_providers(extra=None):
    """person/phone/email from pdl then lusha, company from pdl (no local)."""
    def make(env):
        c = {"providers": [provider(env, "pdl", 1), provider(env, "lusha", 1)],
             "waterfall": {"person": ["pdl", "lusha"], "phone": ["pdl", "lusha"],
                           "email": ["pdl", "lusha"], "company": ["pdl"]},
             "rotation": {"strategy": "ordered"}}
        return deep_merge(c, extra or {})
    e = keys_env("pdl", 1)
    e.update(keys_env("lusha", 1))
    return make, e


def test_default_config_answers_real_derived_data():
    """No provider configured: the local provider derives what it honestly can."""
    with Env() as env:
        k = client_key(env)
        r = enrich(env, k, {"email": "  John.Doe@Example.CO.UK "}, expect=200)
        b = r.json()
        check(b["first_name"] == "John" and b["last_name"] == "Doe", b)
        check(b["business_email"] == "john.doe@example.co.uk" and b["personal_email"] is None, b)
        check(b["country"] == "United Kingdom", b)
        check(b["title"] is None and b["phone"] is None, "unknown fields are null")
        m = b["_meta"]
        check(m["status"] == "partial" and m["providers_tried"] == ["local"], m)
        check(m["sources"] == {"first_name": "local", "last_name": "local",
                               "business_email": "local", "country": "local"}, m)
        check(m["cached"] is False and m["mock"] is False and m["credits_used"] == 0, m)
        check(m["request_id"] == r.header("x-request-id") and isinstance(m["elapsed_ms"], int), m)
        check(set(b) == {"_meta"} | {"first_name", "last_name", "company_name", "title", "industry",
                                     "company_size", "location", "linkedin_url", "phone",
                                     "personal_email", "business_email", "city", "state", "country",
                                     "zip_code", "company_revenue", "technologies", "seniority",
                                     "department"}, sorted(b))
        b = enrich(env, k, {"email": "jane@gmail.com", "enrich": ["personal_email"]}, expect=200).json()
        check(b["personal_email"] == "jane@gmail.com" and b["_meta"]["status"] == "complete", b)
        check(set(b) == {"personal_email", "_meta"}, "only the requested fields")


def test_validation_errors_name_each_field():
    with Env(conf={"limits": {"field_max_bytes": 64}}) as env:
        k = client_key(env)
        cases = [
            ({"emial": "a@b.com"}, {("emial", "unknown member")}),
            ({"email": 5, "phone": ["x"]}, {("email", "must be a string"), ("phone", "must be a string")}),
            ({"email": "x" * 65 + "@b.com"}, {("email", "longer than 64 bytes")}),
            ({"email": "not-an-email"}, {("email", "not a valid e-mail address")}),
            ({"domain": "exa mple"}, None),
            ({"email": "a@b.com", "enrich": ["salary"]}, None),
            ({"email": "a@b.com", "enrich": "title"}, {("enrich", "must be an array of field names")}),
            ({}, {("body", "at least one identifier is required")}),
            ({"first_name": "  "}, {("body", "at least one identifier is required")}),
        ]
        for body, want in cases:
            got = details(enrich(env, k, body))
            if want is None:
                check(len(got) == 1, got)
            else:
                check(got == want, f"{body}: {got}")
        # Two bad identifiers are both reported.
        got = details(enrich(env, k, {"email": "bad@", "domain": "-x-.com"}))
        check({f for f, _ in got} == {"email", "domain"}, got)
        for raw, what in ((b'{"email":"a@b.com","email":"c@d.com"}', "duplicate"),
                          (b'{"email":', "not valid JSON"), (b'[1,2]', "must be a JSON object"),
                          (b'', "a JSON object is required"), (b'"\xff"', "not valid JSON")):
            r = env.request("POST", "/enrich", body=raw,
                            headers=dict(auth(k), **{"Content-Type": "application/json"}))
            check(r.status == 400 and what in r.text(), (raw, r))
        r = env.request("POST", "/enrich", body=b"email=a@b.com",
                        headers=dict(auth(k), **{"Content-Type": "application/x-www-form-urlencoded"}))
        check(r.status == 415 and r.json()["error"]["code"] == "unsupported_media_type", r)
        r = env.request("GET", "/enrich", headers=auth(k))
        check(r.status == 405 and r.header("allow") == "POST", r)
        # Validation failures never reach a provider and never crash anything.
        check(env.request("GET", "/health").status == 200)


def test_scope_and_toggle():
    with Env() as env:
        k = client_key(env, scopes="enqueue")
        r = enrich(env, k, {"email": "a@b.com"})
        check(r.status == 403, r)
        k2 = client_key(env, scopes="enrich")
        enrich(env, k2, {"email": "a@b.com"}, expect=200)
        env.reload(conf=deep_merge(env.conf, {"endpoints": {"enrich": {"enabled": False}}}))
        r = enrich(env, k2, {"email": "a@b.com"})
        check(r.status == 503 and r.json()["error"]["code"] == "endpoint_disabled", r)


def test_complete_partial_not_found_and_credits():
    make, e = two_providers()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        b = enrich(env, k, {"email": "john.doe@acme.com"}, expect=200).json()
        check(b["_meta"]["status"] == "complete", b)
        # A person lookup, then a company lookup for revenue and technologies.
        paths = [c["path"] for c in env.sim.calls(provider="pdl")]
        check(paths == ["/pdl/v5/person/enrich", "/pdl/v5/company/enrich"], paths)
        check(b["_meta"]["credits_used"] == 2 and b["_meta"]["providers_tried"] == ["pdl"], b)
        check(b["title"] and b["company_name"] == "Acme Inc" and b["phone"].startswith("+1 555 01"), b)
        check(b["technologies"] and b["company_revenue"], b)
        # /admin/usage writes what the responder counted in memory first.
        usage = env.request("GET", "/admin/usage?account=acme",
                            headers={"Authorization": "Bearer " + k}).json()["usage"][0]
        check(usage["credits"] == 2 and usage["records"] == 1, usage)
        # Partial: both providers lack the phone.
        for prov in ("pdl", "lusha"):
            env.sim.script(prov, secret(prov, 1), [{"kind": "hit", "omit": ["phone"]}])
        b = enrich(env, k, {"email": "jane.roe@acme.com", "enrich": ["title", "phone"]}, expect=200).json()
        check(b["_meta"]["status"] == "partial" and b["phone"] is None and b["title"], b)
        check(b["_meta"]["providers_tried"] == ["pdl", "lusha"], b)
        # Nobody there, and no such company either: not_found, nothing charged.  (A
        # person miss at a known company still gets the company's fields.)
        b = enrich(env, k, {"email": "nobody.here@missingco.com"}, expect=200).json()
        check(b["_meta"]["status"] == "not_found" and b["_meta"]["credits_used"] == 0, b)


def test_field_level_merge_across_two_providers():
    make, e = two_providers()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "hit", "omit": ["phone", "seniority"]}])
        b = enrich(env, k, {"email": "john.doe@acme.com",
                            "enrich": ["first_name", "title", "phone", "seniority"]}, expect=200).json()
        s = b["_meta"]["sources"]
        check(s == {"first_name": "pdl", "title": "pdl", "phone": "lusha", "seniority": "lusha"}, s)
        check(b["phone"].startswith("+1 555 02"), "the phone is lusha's")
        lusha_calls = env.sim.calls(provider="lusha")
        check(len(lusha_calls) == 1, lusha_calls)


def test_miss_falls_through_to_the_next_provider():
    make, e = two_providers()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "miss"}])
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title"]}, expect=200).json()
        check(b["_meta"]["sources"] == {"title": "lusha"} and b["_meta"]["status"] == "complete", b)
        check(b["_meta"]["providers_tried"] == ["pdl", "lusha"], b)


def test_deadline_answers_partial_while_a_provider_hangs():
    def make(env):
        return {"providers": [provider(env, "pdl", 1, timeout_ms=10000)],
                "waterfall": {"person": ["local", "pdl"]},
                "endpoints": {"enrich": {"deadline_ms": 600}}}
    with Env(conf=make, sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "slow", "delay_ms": 8000}])
        t0 = time.monotonic()
        r = enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["first_name", "title"]}, expect=200)
        elapsed = time.monotonic() - t0
        b = r.json()
        check(elapsed < 2.5, f"answered after {elapsed:.2f}s with a 600 ms deadline")
        check(b["_meta"]["status"] == "partial" and b["first_name"] == "John" and b["title"] is None, b)
        check(500 <= b["_meta"]["elapsed_ms"] <= 2500, b["_meta"])


def test_cache_hit_on_repeat_costs_nothing():
    with Env(conf=conf_with("pdl", 1), sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        first = enrich(env, k, {"email": "John.Doe@ACME.com", "enrich": ["title"]}, expect=200).json()
        check(first["_meta"]["cached"] is False and first["_meta"]["credits_used"] == 1, first)
        # The same lookup after normalisation, spelled differently.
        again = enrich(env, k, {"email": " john.doe@acme.com", "enrich": ["title", "phone"]},
                       expect=200).json()
        check(again["_meta"]["cached"] is True and again["_meta"]["credits_used"] == 0, again)
        check(again["title"] == first["title"], again)
        check(len(env.sim.calls(provider="pdl")) == 1, "a second upstream call")
        # Misses are cached too.
        enrich(env, k, {"email": "miss.x@acme.com", "enrich": ["title"]}, expect=200)
        enrich(env, k, {"email": "miss.x@acme.com", "enrich": ["title"]}, expect=200)
        check(len(env.sim.calls(provider="pdl")) == 2, "a cached miss was asked again")
        # Errors are not cached.
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "error", "status": 500}])
        enrich(env, k, {"email": "err.or@acme.com", "enrich": ["title"]}, expect=200)
        enrich(env, k, {"email": "err.or@acme.com", "enrich": ["title"]}, expect=200)
        check(len(env.sim.calls(provider="pdl")) == 4, "an error answer was cached")


def test_identical_concurrent_requests_make_one_upstream_call():
    with Env(conf=conf_with("pdl", 1, extra_conf={"threads": 32}), sim=True,
             env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        env.sim.config(delay_ms=400)
        results = []
        lock = threading.Lock()
        gate = threading.Barrier(20)

        def one():
            c = env.new_client()
            gate.wait()
            r = c.request("POST", "/enrich", json_body={"email": "same.person@acme.com",
                                                        "enrich": ["title"]}, headers=auth(k))
            c.close()
            with lock:
                results.append(r)

        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        check(len(results) == 20 and all(r.status == 200 for r in results), [r.status for r in results])
        titles = {r.json()["title"] for r in results}
        check(len(titles) == 1 and None not in titles, titles)
        check(len(env.sim.calls(provider="pdl")) == 1,
              f"{len(env.sim.calls(provider='pdl'))} upstream calls for 20 identical requests")
        credits = sum(r.json()["_meta"]["credits_used"] for r in results)
        check(credits == 1, f"credits charged {credits} times")


def test_mock_fallback_is_marked():
    with Env(conf=conf_with("pdl", 1, extra_conf={"endpoints": {"enrich": {"fallback": "mock"}}}),
             sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "invalid_key"}])
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title", "phone"]}, expect=200).json()
        check(b["_meta"]["mock"] is True and b["_meta"]["status"] == "complete", b)
        check(b["_meta"]["sources"] == {"title": "mock", "phone": "mock"}, b)
        check("mock" in b["_meta"]["providers_tried"], b)
        again = enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title", "phone"]}, expect=200).json()
        check(again["title"] == b["title"], "mock data is deterministic")


def test_no_usable_key_is_503_with_retry_after_and_listed():
    make, e = two_providers()
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 45}])
        env.sim.script("lusha", secret("lusha", 1), [{"kind": "rate_limited", "reset_s": 90}])
        r = enrich(env, k, {"email": "john.doe@acme.com"})
        check(r.status == 503 and r.json()["error"]["code"] == "unavailable", r)
        check(43 <= int(r.header("retry-after")) <= 46, r.header("retry-after"))
        # With one provider still available, the answer lists the skipped one.
        env.ctl("keys", "revive", "lusha-1")
        b = enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title"]}, expect=200).json()
        check(b["_meta"]["providers_skipped"] == ["pdl"] and b["_meta"]["sources"] == {"title": "lusha"}, b)


def test_enrich_metrics():
    with Env(conf=conf_with("pdl", 1), sim=True, env=keys_env("pdl", 1)) as env:
        k = client_key(env)
        enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title"]}, expect=200)
        enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title"]}, expect=200)
        m = env.request("GET", "/metrics", headers=auth(k)).text()
        for want in ('enrichd_enrich_requests_total{status="complete"} 2',
                     'enrichd_cache_lookups_total{result="hit"} 1',
                     'enrichd_cache_lookups_total{result="miss"} 1',
                     'enrichd_waterfall_depth_count 2', 'enrichd_waterfall_upstream_seconds_count 2',
                     'enrichd_enrich_duration_seconds_count 2'):
            check(want in m, f"missing {want}")
