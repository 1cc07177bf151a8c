"""POST /search/people and POST /search/companies through the real nginx, the real
responder and the provider simulator: validation, paging against the simulator's own
account of every page (/_sim/search_expected), the page cache, key rotation, credits,
fall-through, toggles and their reload, scopes, quotas, metrics, and batches made from a
search (POST /enrich/enqueue from_search)."""

import json

from harness import Env, check, deep_merge, wait_for
from providers import admin_keys, keys_env, provider, secret

GENERIC_PEOPLE_BODY = (
    '{"filters":{"domains":{domains},"names":{names},"titles":{titles},'
    '"seniorities":{seniorities},"departments":{departments},"countries":{countries},'
    '"industries":{industries},"sizes":{sizes},"company_countries":{company_countries}},'
    '"limit":{limit},"cursor":{cursor}}')
GENERIC_COMPANY_BODY = (
    '{"filters":{"domains":{domains},"names":{names},"industries":{industries},'
    '"sizes":{sizes},"countries":{countries}},"limit":{limit},"cursor":{cursor}}')


def generic_provider(env, n):
    p = provider(env, "generic", n)
    p.update({
        "request": {"method": "GET", "url": "{base_url}/person?email={email}",
                    "auth_header": "Authorization", "auth_prefix": "Bearer "},
        "fields": {"first_name": "data.first_name", "last_name": "data.last_name",
                   "title": "data.job.title", "phone": "data.phone"},
        "search_people": {
            "method": "POST", "url": "{base_url}/people/search", "body": GENERIC_PEOPLE_BODY,
            "max_limit": 100, "results": "results", "next_cursor": "paging.next",
            "total": "total", "credits_per_result": 1, "domain": "company.domain",
            "fields": {"first_name": "first_name", "last_name": "last_name",
                       "title": "job.title", "seniority": "job.seniority",
                       "department": "job.department", "company_name": "company.name",
                       "linkedin_url": "linkedin", "country": "location.country",
                       "city": "location.city", "state": "location.state",
                       "business_email": "email"}},
        "search_companies": {
            "method": "POST", "url": "{base_url}/companies/search", "body": GENERIC_COMPANY_BODY,
            "results": "results", "next_cursor": "paging.next", "total": "total",
            "domain": "domain",
            "fields": {"company_name": "name", "industry": "industry", "company_size": "size",
                       "company_revenue": "revenue", "technologies": "technologies",
                       "country": "location.country"}},
    })
    return p


def conf(kinds=("pdl", "surfe", "generic"), n=2, people=None, companies=None, extra=None):
    def make(env):
        provs = [generic_provider(env, n) if k == "generic" else provider(env, k, n)
                 for k in kinds]
        c = {"providers": provs,
             "waterfall": {g: ["pdl"] if "pdl" in kinds else ["local"]
                           for g in ("person", "phone", "email", "company")},
             "search": {"people": list(people if people is not None else kinds),
                        "companies": list(companies if companies is not None else kinds)},
             "rotation": {"strategy": "ordered"}}
        return deep_merge(c, extra or {})
    return make


def env_for(kinds=("pdl", "surfe", "generic"), n=2, worker=False, **kw):
    e = {}
    for k in kinds:
        e.update(keys_env(k, n))
    return Env(conf=conf(kinds, n, **kw), sim=True, env=e, worker=worker)


def key(env, scopes="search,enrich,enqueue,admin", account="acme"):
    env.ctl("account", "create", account, check_rc=False)
    return env.ctl("key", "create", account, "--scopes", scopes, "--raw").stdout.strip()


def auth(k):
    return {"Authorization": "Bearer " + k}


def search(env, k, kind, body, expect=200):
    r = env.request("POST", f"/search/{kind}", json_body=body, headers=auth(k))
    check(r.status == expect, f"want {expect}: {r!r}")
    return r


def expected(env, prov, kind, filters, limit=None, cursor=None, all_=False):
    body = {"provider": prov, "kind": kind, "filters": filters, "cursor": cursor, "all": all_}
    if limit is not None:
        body["limit"] = limit
    return env.sim._call("POST", "/_sim/search_expected", body)


def plain(results):
    """Results without _source, for comparison with the simulator's records."""
    return [{k: v for k, v in r.items() if k != "_source"} for r in results]


def search_calls(env, prov=None):
    return [c for c in env.sim.calls(provider=prov) if c["path"].endswith("/search")]


def test_filters_are_validated_with_details():
    with env_for(kinds=("pdl",)) as env:
        k = key(env)
        cases = [
            ({"titles": ["sales"], "colour": ["red"]}, "people", "colour", "unknown member"),
            ({"titles": "sales"}, "people", "titles", "array of strings"),
            ({"titles": [3]}, "people", "titles[0]", "string"),
            ({}, "people", "body", "at least one filter"),
            ({"titles": [], "countries": None}, "people", "body", "at least one filter"),
            ({"titles": ["sales"], "limit": 0}, "people", "limit", "1..100"),
            ({"titles": ["sales"], "limit": 101}, "people", "limit", "1..100"),
            ({"titles": ["sales"], "limit": "10"}, "people", "limit", "integer"),
            ({"cursor": "not-a-cursor"}, "people", "cursor", "not a cursor"),
            ({"seniorities": ["boss"]}, "people", "seniorities[0]", "not a seniority"),
            ({"countries": ["Atlantis"]}, "people", "countries[0]", "not a country"),
            ({"domains": ["not a domain"]}, "people", "domains[0]", "not a domain"),
            ({"sizes": ["12-40"]}, "companies", "sizes[0]", "not a size"),
            ({"titles": ["sales"]}, "companies", "titles", "unknown member"),
            ({"titles": ["x"], "people_per_company": 2}, "people", "people_per_company",
             "domains or names"),
        ]
        for body, kind, field, word in cases:
            r = search(env, k, kind, body, expect=400)
            err = r.json()["error"]
            check(err["code"] == "invalid_request", r)
            check(any(d["field"] == field and word in d["problem"] for d in err["details"]),
                  f"{body}: {err}")
        # Every problem at once.
        r = search(env, k, "people", {"titles": 1, "limit": -1, "x": 1}, expect=400)
        fields = {d["field"] for d in r.json()["error"]["details"]}
        check({"titles", "limit", "x"} <= fields, fields)
        # Not JSON, not an object, duplicate members, the wrong media type.
        for raw in (b"{", b"[1]", b'{"titles":["a"],"titles":["b"]}'):
            r = env.request("POST", "/search/people", body=raw,
                            headers={**auth(k), "Content-Type": "application/json"})
            check(r.status == 400 and r.json()["error"]["details"][0]["field"] == "body", r)
        r = env.request("POST", "/search/people", body=b"titles=a",
                        headers={**auth(k), "Content-Type": "text/plain"})
        check(r.status == 415, r)
        # A cursor altered by one character is refused, and costs no call.
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": 5})
        c = r.json()["next_cursor"]
        check(c, r.json())
        n = len(search_calls(env))
        bad = c[:10] + ("A" if c[10] != "A" else "B") + c[11:]
        r = search(env, k, "people", {"cursor": bad}, expect=400)
        check(r.json()["error"]["details"][0]["field"] == "cursor", r)
        # A people cursor on the company search.
        r = search(env, k, "companies", {"cursor": c}, expect=400)
        check("people search" in r.json()["error"]["details"][0]["problem"], r)
        # Other filters than the cursor's.
        r = search(env, k, "people", {"cursor": c, "domains": ["initech.com"]}, expect=400)
        check("other filters" in r.json()["error"]["details"][0]["problem"], r)
        check(len(search_calls(env)) == n, "a refused request made an upstream call")


def walk(env, k, kind, body, limit):
    """Every page of a search: [(results, meta)], following next_cursor to the end."""
    pages = []
    r = search(env, k, kind, dict(body, limit=limit))
    while True:
        j = r.json()
        pages.append((j["results"], j["_meta"]))
        check(len(pages) < 50, "too many pages")
        if j["next_cursor"] is None:
            return pages
        r = search(env, k, kind, {"cursor": j["next_cursor"]})


def test_paging_returns_the_simulators_pages_in_order_and_stops_at_the_end():
    # One provider per search, each compared with the simulator's own pages.
    for prov, kind, filters in (
            ("pdl", "people", {"domains": ["acme.com"]}),
            ("pdl", "companies", {"sizes": ["51-200", "201-500"]}),
            ("surfe", "people", {"domains": ["initech.com", "acme.com"],
                                 "seniorities": ["manager", "director", "senior", "entry"]}),
            ("surfe", "companies", {"industries": ["retail", "banking"]}),
            ("generic", "people", {"names": ["Acme Inc"], "countries": ["us"]}),
            ("generic", "companies", {"countries": ["Germany"]})):
        with env_for(kinds=(prov,)) as env:
            k = key(env)
            limit = 7
            pages = walk(env, k, kind, filters, limit)
            # What the provider holds for the same filters, page by page.
            sim_filters = {f: [x.lower() if f != "sizes" else x for x in v]
                           for f, v in filters.items()}
            everyone = expected(env, prov, kind, sim_filters, all_=True)
            check(everyone["status"] in (200, 404) and everyone["total"] > limit,
                  f"{prov} {kind}: the scenario needs several pages: {everyone}")
            got = [r for res, _ in pages for r in plain(res)]
            check(got == everyone["records"],
                  f"{prov} {kind}: the pages in order are not every match: "
                  f"{len(got)} vs {everyone['total']}\n{got[:2]}\n{everyone['records'][:2]}")
            check(all(len(res) == limit for res, _ in pages[:-1]) and
                  0 < len(pages[-1][0]) <= limit, [len(p[0]) for p in pages])
            # Disjoint: no record twice.
            keys = [json.dumps(r, sort_keys=True) for r in got]
            check(len(set(keys)) == len(keys), f"{prov} {kind}: a record on two pages")
            for res, meta in pages:
                check(all(r["_source"] == prov for r in res), res[:1])
                check(meta["source"] == prov and meta["providers_tried"] == [prov], meta)
                check(meta["status"] == "complete" and meta["total"] == everyone["total"], meta)
            # Exactly one upstream call per page, each asking for the limit.
            calls = search_calls(env, prov)
            check(len(calls) == len(pages), f"{prov}: {len(calls)} calls for {len(pages)} pages")
            # The first page is what the provider's own first page holds.
            first = expected(env, prov, kind, sim_filters, limit=limit)
            check(plain(pages[0][0]) == first["records"], f"{prov} {kind}: first page differs")


def test_repeated_search_is_answered_from_the_cache_with_no_calls():
    with env_for(kinds=("pdl",)) as env:
        k = key(env)
        body = {"domains": ["acme.com"], "titles": ["engineer", "Manager"], "limit": 3}
        a = search(env, k, "people", body).json()
        check(not a["_meta"]["cached"] and a["_meta"]["credits_used"] == len(a["results"]) > 0, a)
        n = len(env.sim.calls())
        # The same search written another way: equal filters, one cache entry.
        b = search(env, k, "people", {"limit": 3, "titles": ["manager ", "ENGINEER"],
                                      "domains": ["https://www.ACME.com/"]}).json()
        check(len(env.sim.calls()) == n, "a repeated search called the provider")
        check(b["_meta"]["cached"] and b["_meta"]["credits_used"] == 0, b["_meta"])
        check(b["results"] == a["results"] and b["next_cursor"] is not None, b)
        # The next page once, then again from the cache.
        c1 = search(env, k, "people", {"cursor": a["next_cursor"]}).json()
        check(len(env.sim.calls()) == n + 1 and not c1["_meta"]["cached"], c1["_meta"])
        c2 = search(env, k, "people", {"cursor": b["next_cursor"]}).json()
        check(len(env.sim.calls()) == n + 1 and c2["_meta"]["cached"], c2["_meta"])
        check(c2["results"] == c1["results"], "the cached page differs")
        # A different page size is a different page.
        search(env, k, "people", dict(body, limit=4))
        check(len(env.sim.calls()) == n + 2, "another limit must be asked")


def test_a_429_on_one_key_rotates_to_the_next():
    with env_for(kinds=("pdl",), n=3) as env:
        k = key(env)
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 30}])
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": 5}).json()
        check(len(r["results"]) == 5 and r["_meta"]["status"] == "complete", r["_meta"])
        calls = search_calls(env, "pdl")
        check([c["key"] for c in calls] == [secret("pdl", 1), secret("pdl", 2)],
              [c["key"] for c in calls])
        check([c["status"] for c in calls] == [429, 200], [c["status"] for c in calls])
        keys = admin_keys(env, k)
        check(keys["pdl-1"]["state"] == "cooling" and keys["pdl-2"]["state"] == "active", keys)
        # The next search goes straight to a usable key.
        env.sim.clear_calls()
        search(env, k, "people", {"domains": ["initech.com"], "limit": 5})
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 2)],
              [c["key"] for c in search_calls(env)])
        check("key pdl-1 (...0001) rate_limited until" in env.log(), "the move is logged")


def test_limit_caps_the_credits_spent():
    with env_for(kinds=("pdl", "surfe"), people=("pdl",), companies=("surfe",)) as env:
        k = key(env)
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": 7}).json()
        calls = search_calls(env, "pdl")
        check(len(calls) == 1 and calls[0]["body"]["size"] == 7, calls)
        check(calls[0]["credits"] == 7 and r["_meta"]["credits_used"] == 7, (calls, r["_meta"]))
        check(len(r["results"]) == 7, len(r["results"]))
        # The account's usage shows what was spent.
        wait_for(lambda: usage(env, k)["credits"] == 7, what="7 credits in /admin/usage")
        # A key with 4 credits left: the page PDL can pay for, and no more spent.
        env.sim.limits(provider="pdl", key=secret("pdl", 1), credits=4)
        r = search(env, k, "people", {"domains": ["initech.com"], "limit": 10}).json()
        check(r["_meta"]["credits_used"] == 4 and len(r["results"]) == 4, r["_meta"])
        # Surfe charges a search credit per ten results.
        r = search(env, k, "companies", {"industries": ["retail", "banking", "software"],
                                         "limit": 12}).json()
        sc = search_calls(env, "surfe")
        check(sc[-1]["body"]["limit"] == 12, sc[-1])
        check(r["_meta"]["credits_used"] == (len(r["results"]) + 9) // 10, r["_meta"])


def test_a_provider_that_cannot_answer_falls_through_to_the_next():
    with env_for(kinds=("pdl", "surfe")) as env:
        k = key(env)
        for i in (1, 2):
            env.sim.script("pdl", secret("pdl", i), [{"kind": "error", "status": 503}],
                           then="repeat_last")
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": 5}).json()
        m = r["_meta"]
        check(m["source"] == "surfe" and m["providers_tried"] == ["pdl", "surfe"], m)
        check(m["status"] == "incomplete" and
              m["errors"] == [{"provider": "pdl", "outcome": "transient"}], m)
        check(all(x["_source"] == "surfe" for x in r["results"]) and len(r["results"]) == 5, r)
        # The cursor pins the provider that answered: the next page is surfe's.
        env.sim.clear_calls()
        n = search(env, k, "people", {"cursor": r["next_cursor"]}).json()
        check([c["provider"] for c in search_calls(env)] == ["surfe"], search_calls(env))
        check(n["_meta"]["source"] == "surfe", n["_meta"])
        # Every key of pdl invalid: skipped, surfe answers.
        env.sim.script("surfe", secret("surfe", 1), [{"kind": "invalid_key"}])
        env.sim.script("surfe", secret("surfe", 2), [{"kind": "invalid_key"}])
        r = search(env, k, "people", {"domains": ["initech.com"], "limit": 5}, expect=502)
        check(r.json()["error"]["code"] == "upstream_failed", r)
        check("pdl: transient" in r.json()["error"]["message"], r)
        # Nobody can be asked now: 503 with Retry-After.
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 40}])
        env.sim.script("pdl", secret("pdl", 2), [{"kind": "rate_limited", "reset_s": 40}])
        env.request("POST", "/admin/keys/pdl-1/revive", headers=auth(k))
        env.request("POST", "/admin/keys/pdl-2/revive", headers=auth(k))
        r = search(env, k, "people", {"domains": ["globex.com"], "limit": 5}, expect=503)
        check(r.json()["error"]["code"] == "unavailable", r)
        ra = int(r.header("Retry-After"))
        check(30 <= ra <= 41, ra)
        check([c["status"] for c in search_calls(env, "pdl")][-2:] == [429, 429],
              search_calls(env, "pdl"))
        env.sim.clear_calls()
        r = search(env, k, "people", {"domains": ["umbrella.com"], "limit": 5}, expect=503)
        check(r.header("Retry-After") is not None, r)
        check(search_calls(env) == [], "calls to keys known to be unusable")


def test_no_configured_provider_and_filters_no_provider_can_send():
    with env_for(kinds=("pdl", "generic"), people=("pdl",), companies=()) as env:
        k = key(env)
        r = search(env, k, "companies", {"domains": ["acme.com"]}, expect=503)
        check("search.companies" in r.json()["error"]["message"], r)
        # PDL cannot cap people per company: nobody configured can run this.
        r = search(env, k, "people", {"domains": ["acme.com"], "people_per_company": 2},
                   expect=400)
        check("no configured provider" in r.json()["error"]["details"][0]["problem"], r)
        check(search_calls(env) == [], "a search nobody can run was sent")


def test_toggles_answer_503_and_come_back_on_reload():
    with env_for(kinds=("pdl",), n=2) as env:
        k = key(env)
        conf_off = deep_merge(env.conf, {"endpoints": {"search_people": {"enabled": False}}})
        env.reload(conf_off)
        r = search(env, k, "people", {"domains": ["acme.com"]}, expect=503)
        check(r.json()["error"]["code"] == "endpoint_disabled", r)
        # The other kind is on.
        search(env, k, "companies", {"industries": ["retail"], "limit": 2})
        check(search_calls(env, "pdl")[-1]["path"].endswith("/company/search"),
              search_calls(env, "pdl")[-1])
        env.reload(deep_merge(conf_off, {"endpoints": {"search_people": {"enabled": True}}}))
        search(env, k, "people", {"domains": ["acme.com"], "limit": 2})
        # rotation.endpoints.search_people = false: the first key only.
        env.reload(deep_merge(env.conf, {"rotation": {"endpoints": {"search_people": False}}}))
        env.sim.clear_calls()
        env.sim.script("pdl", secret("pdl", 1), [{"kind": "rate_limited", "reset_s": 30}])
        r = search(env, k, "people", {"domains": ["initech.com"], "limit": 2}, expect=503)
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 1)], search_calls(env))
        # ... while the company search still rotates to the second key.
        env.sim.clear_calls()
        search(env, k, "companies", {"industries": ["banking"], "limit": 2})
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 2)], search_calls(env))
        # Back on: rotation moves to key 2 again.
        env.reload(deep_merge(env.conf, {"rotation": {"endpoints": {"search_people": True}}}))
        env.sim.clear_calls()
        search(env, k, "people", {"domains": ["umbrella.com"], "limit": 2})
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 2)], search_calls(env))
        # A provider taken out of the list: its cursors are refused, no call made.
        c = search(env, k, "people", {"domains": ["acme.com"], "limit": 2}).json()["next_cursor"]
        env.reload(deep_merge(env.conf, {"search": {"people": []}}))
        env.sim.clear_calls()
        r = search(env, k, "people", {"cursor": c}, expect=400)
        check(r.json()["error"]["details"][0]["field"] == "cursor", r)
        check(search_calls(env) == [], "a call to a provider no longer listed")


def test_the_enrich_scope_alone_is_forbidden():
    with env_for(kinds=("pdl",)) as env:
        only = key(env, scopes="enrich,enqueue")
        for kind in ("people", "companies"):
            r = search(env, only, kind, {"domains": ["acme.com"]}, expect=403)
            check(r.json()["error"]["code"] == "forbidden", r)
        check(search_calls(env) == [], "a forbidden search called a provider")
        ok = key(env, scopes="search", account="beta")
        search(env, ok, "people", {"domains": ["acme.com"], "limit": 1})
        # enrichctl lists the scope.
        out = env.ctl("key", "list").stdout
        check("search" in out, out)


def test_the_admin_api_creates_keys_with_the_search_scope():
    with env_for(kinds=("pdl",)) as env:
        admin = key(env, scopes="admin")
        env.ctl("account", "create", "gamma")
        every = ["enrich", "enqueue", "admin", "metrics", "search"]
        r = env.request("POST", "/admin/accounts/gamma/keys", json_body={"scopes": every},
                        headers=auth(admin))
        check(r.status == 201 and r.json()["scopes"] == every, r)
        r = env.request("POST", "/admin/accounts/gamma/keys",
                        json_body={"scopes": ["search"], "name": "prospecting"},
                        headers=auth(admin))
        check(r.status == 201 and r.json()["scopes"] == ["search"], r)
        only_search = r.json()["key"]
        page = search(env, only_search, "people", {"domains": ["acme.com"], "limit": 1})
        check(len(page.json()["results"]) == 1, page)
        r = env.request("POST", "/enrich", json_body={"email": "jack.vance@acme.com"},
                        headers=auth(only_search))
        check(r.status == 403, f"a search-only key enriched: {r!r}")
        # The refusal names every scope there is.
        r = env.request("POST", "/admin/accounts/gamma/keys", json_body={"scopes": ["seek"]},
                        headers=auth(admin))
        check(r.status == 400 and "search" in r.json()["error"]["details"][0]["problem"], r)
        r = env.request("GET", "/admin/client-keys?account=gamma", headers=auth(admin))
        check(sorted(k["scopes"] for k in r.json()["keys"]) == sorted([every, ["search"]]), r)


def usage(env, k):
    r = env.request("GET", "/admin/usage?days=1", headers=auth(k))
    check(r.status == 200, r)
    rows = [u for u in r.json()["usage"] if u["account"] == "acme"]
    return rows[0] if rows else {"requests": 0, "records": 0, "credits": 0}


def test_a_page_counts_its_results_against_the_record_quota():
    with env_for(kinds=("pdl",), extra={"accounts_default": {"records_per_hour": 12}}) as env:
        k = key(env)
        few = {"domains": ["acme.com"], "seniorities": ["cxo"]}
        t = expected(env, "pdl", "people", few, all_=True)["total"]
        check(0 < t < 10, f"the scenario needs a search with fewer than 10 results: {t}")
        # A limit of 10 that finds t counts t, not 10.
        r = search(env, k, "people", dict(few, limit=10)).json()
        check(len(r["results"]) == t and r["next_cursor"] is None, r["_meta"])
        # So 12 - t more fit exactly ...
        r = search(env, k, "people", {"domains": ["initech.com"], "limit": 12 - t}).json()
        check(len(r["results"]) == 12 - t, len(r["results"]))
        # ... and then nothing: refused before any call, with what fits.
        env.sim.clear_calls()
        r = search(env, k, "people", {"domains": ["globex.com"], "limit": 1}, expect=429)
        check(r.json()["error"]["code"] == "quota_exceeded" and r.header("Retry-After"), r)
        check(r.json()["error"]["details"][0]["fits"] == 0, r.json())
        check(search_calls(env) == [], "a refused search called the provider")
        wait_for(lambda: usage(env, k)["records"] == 12, what="12 records in /admin/usage")


def test_metrics_count_searches_results_and_credits():
    with env_for(kinds=("pdl",)) as env:
        k = key(env)
        search(env, k, "people", {"domains": ["acme.com"], "limit": 4})
        search(env, k, "people", {"domains": ["acme.com"], "limit": 4})
        m = env.request("GET", "/metrics", headers=auth(k)).text()
        check('enrichd_search_requests_total{kind="people",status="complete"} 2' in m, m[-3000:])
        check('enrichd_search_provider_pages_total{kind="people",provider="pdl",outcome="answered"} 1'
              in m, m[-3000:])
        check('enrichd_search_provider_pages_total{kind="people",provider="pdl",outcome="cached"} 1'
              in m, m[-3000:])
        check('enrichd_search_results_total{kind="people",provider="pdl"} 8' in m, m[-3000:])
        check('enrichd_search_credits_total{kind="people",provider="pdl"} 4' in m, m[-3000:])


def job_status(env, k, job_id):
    r = env.request("GET", f"/enrich/jobs/{job_id}", headers=auth(k))
    check(r.status == 200, r)
    return r.json()


WORKER = {"concurrency": 4, "claim_batch": 4, "lease_s": 3, "heartbeat_s": 1, "poll_ms": 50}


def test_from_search_enqueues_the_people_of_the_page():
    with env_for(kinds=("pdl",), worker=True, extra={"worker": WORKER}) as env:
        k = key(env)
        page = search(env, k, "people", {"domains": ["acme.com"], "limit": 6}).json()
        people = [r["business_email"] for r in page["results"]]
        check(len(people) == 6, people)
        n = len(search_calls(env))
        r = env.request("POST", "/enrich/enqueue", headers=auth(k), json_body={
            "from_search": {"cursor": page["_meta"]["page_cursor"]},
            "enrich": ["first_name", "title", "phone"]})
        check(r.status == 202, r)
        job = r.json()
        check(job["total"] == 6 and job["rejected"] == 0, job)
        # The page came from the cache: the search was not paid twice.
        check(len(search_calls(env)) == n, "from_search searched again")
        wait_for(lambda: job_status(env, k, job["job_id"])["status"] == "completed", timeout=30,
                 what="the job to finish")
        res = env.request("GET", f"/enrich/jobs/{job['job_id']}/results?format=ndjson",
                          headers=auth(k))
        rows = [json.loads(x) for x in res.text().splitlines() if x.strip()]
        check([x["input"]["email"] for x in rows] == people, rows[:2])
        check(all(x["_status"] == "complete" and x["phone"] for x in rows), rows[:2])
        # max_records: this page and the ones after it, up to the cap.
        env.sim.clear_calls()
        r = env.request("POST", "/enrich/enqueue", headers=auth(k), json_body={
            "from_search": {"cursor": page["_meta"]["page_cursor"], "max_records": 15}})
        check(r.status == 202 and r.json()["total"] == 15, r)
        sizes = [c["body"]["size"] for c in search_calls(env)]
        check(sizes == [6, 3], f"the pages after the cached one, no bigger than needed: {sizes}")
        # The rows a search answered, posted back.
        r = env.request("POST", "/enrich/enqueue", headers=auth(k),
                        json_body={"from_search": {"rows": page["results"][:2]}})
        check(r.status == 202 and r.json()["total"] == 2, r)
        # Refusals: both forms, a bad cursor, a key without the search scope.
        for body, field in (({"from_search": {"rows": [], "cursor": "x"}}, "from_search"),
                            ({"from_search": {"cursor": "garbage"}}, "from_search.cursor"),
                            ({"from_search": {"rows": []}}, "from_search.rows"),
                            ({"from_search": {"cursor": page["_meta"]["page_cursor"],
                                              "max_records": 100000}}, "from_search.max_records"),
                            ({"from_search": {"rows": page["results"][:1]}, "records": []},
                             "records")):
            r = env.request("POST", "/enrich/enqueue", headers=auth(k), json_body=body)
            check(r.status == 400, r)
            check(any(d["field"] == field for d in r.json()["error"]["details"]), r.json())
        other = key(env, scopes="enrich,enqueue", account="acme")
        r = env.request("POST", "/enrich/enqueue", headers=auth(other), json_body={
            "from_search": {"cursor": page["_meta"]["page_cursor"]}})
        check(r.status == 403, r)
