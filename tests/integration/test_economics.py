"""Paying once: company answers shared by every person of a company, no provider asked
the same query twice in one request, company data whatever the person lookup found,
unanswerable lookups refused before they cost anything.  Every check counts the
simulator's calls."""

import subprocess
import threading
import time
import urllib.parse

from harness import Env, check, deep_merge, in_threads
from providers import client_key, enrich, keys_env, provider

ALL_FIELDS = None  # "enrich" omitted: every field


def auth(k):
    return {"Authorization": "Bearer " + k}


def pdl_lusha(waterfall, extra=None, npdl=2, nlusha=1):
    """pdl (npdl keys) and lusha (nlusha keys) behind the simulator, no cache
    surprises: every upstream call shows in the call log."""
    def make(env):
        c = {"providers": [provider(env, "pdl", npdl), provider(env, "lusha", nlusha)],
             "waterfall": waterfall,
             "rotation": {"strategy": "round_robin"}}
        return deep_merge(c, extra or {})
    e = keys_env("pdl", npdl)
    e.update(keys_env("lusha", nlusha))
    return make, e


def company_calls(env, prov="pdl"):
    return [c for c in env.sim.calls(provider=prov) if "/company" in c["path"]]


def person_calls(env, prov="pdl"):
    return [c for c in env.sim.calls(provider=prov) if "/person" in c["path"]]


def query_of(c):
    """A call's identity as the provider sees it: method, path, query and body."""
    q = c["query"]
    if isinstance(q, dict):
        q = tuple(sorted(q.items()))
    return (c["method"], c["path"], q, repr(c["body"]))


def test_company_lookup_is_shared_by_the_people_of_a_company():
    """Five people at one company: one company lookup, whether they come one after the
    other or all at once."""
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    want = ["first_name", "company_revenue", "technologies"]
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for i in range(5):
            b = enrich(env, k, {"email": f"person{i}.lee@initech.com", "enrich": want},
                       expect=200).json()
            check(b["company_revenue"] and b["technologies"], b)
        check(len(company_calls(env)) == 1, [c["query"] for c in company_calls(env)])
        check(len(person_calls(env)) == 5, len(person_calls(env)))
        # Concurrent: five people of another company at the same moment.
        env.sim.config(delay_ms=300)
        out = []

        def one(i):
            c = env.new_client()
            r = c.request("POST", "/enrich", json_body={"email": f"p{i}.x@globex.com",
                                                        "enrich": want}, headers=auth(k))
            out.append(r)
            c.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        check(all(r.status == 200 and r.json()["company_revenue"] for r in out),
              [r.status for r in out])
        glob = [c for c in company_calls(env) if "globex" in str(c["query"])]
        check(len(glob) == 1, [c["query"] for c in glob])


def test_company_key_is_the_registrable_domain_else_the_name():
    """mail.initech.com and initech.com are one company; a company name alone is keyed by
    its normalised form."""
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        want = ["company_revenue"]
        enrich(env, k, {"domain": "initech.com", "enrich": want}, expect=200)
        enrich(env, k, {"domain": "mail.initech.com", "enrich": want}, expect=200)
        enrich(env, k, {"email": "ann.lee@initech.com", "enrich": want}, expect=200)
        check(len(company_calls(env)) == 1, [c["query"] for c in company_calls(env)])
        check(company_calls(env)[0]["query"].get("website") == "initech.com",
              company_calls(env)[0])
        enrich(env, k, {"company_name": "Hooli  Corp", "enrich": want}, expect=200)
        enrich(env, k, {"company_name": "hooli corp", "enrich": want}, expect=200)
        check(len(company_calls(env)) == 2, [c["query"] for c in company_calls(env)])


def test_company_lookup_coalesced_across_processes():
    """Two responders on one store ask for the same company at the same moment: the
    first one's claim makes the other wait for its answer."""
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e, sim_delay_ms=400) as a:
        k = client_key(a)
        with Env(conf=make, env=e, share_sim=a, store_url=a.store_url) as b:
            out = []

            def one(env, i):
                c = env.new_client()
                r = c.request("POST", "/enrich", headers=auth(k), json_body={
                    "domain": "umbrella.com", "enrich": ["company_revenue", "industry"]})
                out.append(r)
                c.close()
            ts = [threading.Thread(target=one, args=(env, i)) for i in range(3)
                  for env in (a, b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            check(all(r.status == 200 and r.json()["company_revenue"] for r in out),
                  [(r.status, r.body[:200]) for r in out])
            check(len(company_calls(a)) == 1, [c["query"] for c in company_calls(a)])


def test_callers_waiting_on_another_process_claim_make_one_call():
    """A process that died holding a claim on a company lookup: the callers of another
    process wait for it to expire, then one of them makes the call and the others take
    its answer.  (The first waiter used to let go of its in-process flight while it
    waited on the claim, so every caller behind it made the call too.)"""
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]},
                        extra={"endpoints": {"enrich": {"deadline_ms": 8000}}})
    body = {"domain": "umbrella.com", "enrich": ["company_revenue", "industry"]}
    with Env(conf=make, sim=True, env=e) as a:
        k = client_key(a)
        enrich(a, k, body, expect=200)
        check(len(company_calls(a)) == 1, company_calls(a))
        # The answer leaves the store, and a claim on it by a process that is gone
        # takes its place (what a crash in the middle of the call leaves).
        until = int(time.time() * 1000) + 1500
        a.sql("INSERT INTO flights(key, owner, until_ms) SELECT key, 'gone:1:00000000', "
              f"{until} FROM cache")
        a.sql("DELETE FROM cache")
        check(a.sql("SELECT count(*) FROM flights").strip() == "1", "no claim planted")
        with Env(conf=make, env=e, share_sim=a, store_url=a.store_url) as b:
            out = []

            def one(_):
                c = b.new_client()
                out.append(c.request("POST", "/enrich", headers=auth(k), json_body=body))
                c.close()
            in_threads(one, 4)
            check(len(out) == 4 and all(r.status == 200 and r.json()["company_revenue"]
                                        for r in out),
                  [(r.status, r.body[:200]) for r in out])
            check(int(time.time() * 1000) >= until, "answered before the claim expired")
            check(len(company_calls(a)) == 2, [c["query"] for c in company_calls(a)])


def test_no_provider_gets_the_same_query_twice():
    """Group orders that differ used to send PDL the same person query twice."""
    make, e = pdl_lusha({"person": ["local", "pdl", "lusha"], "phone": ["local", "lusha", "pdl"],
                         "company": ["local", "pdl", "lusha"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for body in ({"linkedin_url": "https://www.linkedin.com/in/ann-lee"},
                     {"email": "bob@gmail.com"}, {"phone": "+1 555 0100"}):
            env.sim.clear_calls()
            b = enrich(env, k, body, expect=200).json()
            calls = env.sim.calls()
            pdl = [c for c in calls if c["provider"] == "pdl"]
            check(len(person_calls(env)) == 1, (body, [c["query"] for c in pdl]))
            ids = [query_of(c) for c in calls]
            check(len(ids) == len(set(ids)), (body, ids))
            # Never more credits than distinct paid queries answered.
            charged = sum(c["credits"] or 0 for c in calls)
            check(b["_meta"]["credits_used"] == charged and charged <= len(set(ids)),
                  (body, b["_meta"], charged))


def test_person_miss_keeps_the_company_groups():
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        b = enrich(env, k, {"email": "missing.person@initech.com"}, expect=200).json()
        check(b["title"] is None and b["seniority"] is None, b)
        check(b["company_revenue"] and b["technologies"] and b["industry"], b)
        check(b["_meta"]["sources"].get("company_revenue") == "pdl", b["_meta"])
        check(len(company_calls(env)) == 1, env.sim.calls())


def test_person_hit_feeds_the_company_lookup():
    """No domain or company sent: the company the person hit names is looked up."""
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        b = enrich(env, k, {"linkedin_url": "https://www.linkedin.com/in/cy-dee"},
                   expect=200).json()
        check(b["company_revenue"] and b["technologies"], b)
        cc = company_calls(env)
        check(len(cc) == 1 and cc[0]["query"].get("website"), cc)


def test_unidentifiable_requests_are_refused_before_any_call():
    make, e = pdl_lusha({"person": ["local", "pdl", "lusha"], "company": ["pdl", "lusha"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for body in ({"first_name": "John"}, {"first_name": "John", "last_name": "Doe"},
                     {"last_name": "Doe", "enrich": ["title"]}):
            r = enrich(env, k, body)
            check(r.status == 400, (body, r))
            err = r.json()["error"]
            check(err["code"] == "invalid_request" and err["details"], err)
        check(env.sim.calls() == [], env.sim.calls())
        # What a provider can search by still goes through.
        enrich(env, k, {"first_name": "John", "last_name": "Doe", "company_name": "Acme"},
               expect=200)
        enrich(env, k, {"company_name": "Acme", "enrich": ["industry"]}, expect=200)


def test_pdl_company_answers_are_titlecased():
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        b = enrich(env, k, {"domain": "initech.com", "enrich": ["company_name", "industry"]},
                   expect=200).json()
        cc = company_calls(env)
        check(len(cc) == 1 and cc[0]["query"].get("titlecase") == "true", cc)
        check(b["company_name"] == "Initech Inc" and b["industry"] != b["industry"].lower(), b)


def test_lusha_not_asked_for_what_it_cannot_add():
    """LinkedIn-only and free-mail inputs: once PDL filled every field Lusha's person
    lookup could still give, Lusha is not called."""
    make, e = pdl_lusha({"person": ["pdl", "lusha"], "phone": ["pdl", "lusha"],
                         "email": ["pdl", "lusha"], "company": ["pdl", "lusha"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        for body in ({"linkedin_url": "https://www.linkedin.com/in/dee-fox"},
                     {"email": "dee.fox@gmail.com"}):
            env.sim.clear_calls()
            b = enrich(env, k, body, expect=200).json()
            check(b["_meta"]["status"] == "complete", b)
            check(person_calls(env, "lusha") == [], env.sim.calls(provider="lusha"))


def test_savings_by_the_cache_and_by_coalescing_are_visible():
    make, e = pdl_lusha({"person": ["pdl"], "company": ["pdl"]})
    with Env(conf=make, sim=True, env=e) as env:
        k = client_key(env)
        want = ["first_name", "title"]
        enrich(env, k, {"email": "sam.hill@acme.com", "enrich": want}, expect=200)
        for _ in range(3):
            b = enrich(env, k, {"email": "sam.hill@acme.com", "enrich": want}, expect=200).json()
            check(b["_meta"]["cached"] is True and b["_meta"]["credits_used"] == 0, b)
        # Four identical requests at once: one call, three answers that waited for it.
        env.sim.config(delay_ms=300)
        out = []

        def one(_):
            c = env.new_client()
            out.append(c.request("POST", "/enrich", headers=auth(k),
                                 json_body={"email": "kim.ray@acme.com", "enrich": want}))
            c.close()
        in_threads(one, 4)
        check(all(r.status == 200 for r in out), [r.status for r in out])
        check(len(person_calls(env)) == 2, len(person_calls(env)))
        r = env.request("GET", "/admin/usage", headers=auth(k))
        check(r.status == 200, r)
        sv = {x["provider"]: x for x in r.json()["savings"]}
        check(sv["pdl"]["calls_avoided_by_cache"] == 3 and sv["pdl"]["credits_avoided_by_cache"] == 3,
              sv)
        check(sv["pdl"]["calls_avoided_by_coalescing"] == 3 and
              sv["pdl"]["credits_avoided_by_coalescing"] == 3, sv)
        m = env.request("GET", "/metrics", headers=auth(k)).text()
        check('enrichd_upstream_calls_avoided_total{provider="pdl",by="cache"} 3' in m, m[-2000:])
        check('enrichd_upstream_credits_avoided_total{provider="pdl",by="coalescing"} 3' in m,
              m[-2000:])
        # The counts are in the store: a restarted responder still shows them.
        env.stop_enrichd()
        env.start_enrichd()
        r = env.request("GET", "/admin/usage", headers=auth(k))
        sv = {x["provider"]: x for x in r.json()["savings"]}
        check(sv["pdl"]["calls_avoided_by_cache"] == 3, sv)
        # /metrics reads them from the store too: the restarted responder counted
        # nothing itself, and one more cache hit adds to the stored totals.
        enrich(env, k, {"email": "sam.hill@acme.com", "enrich": want}, expect=200)
        m = env.request("GET", "/metrics", headers=auth(k)).text()
        check('enrichd_upstream_calls_avoided_total{provider="pdl",by="cache"} 4' in m, m[-2000:])
        check('enrichd_upstream_credits_avoided_total{provider="pdl",by="cache"} 4' in m, m[-2000:])
        check('enrichd_upstream_calls_avoided_total{provider="pdl",by="coalescing"} 3' in m,
              m[-2000:])
        p = subprocess.run(["promtool", "check", "metrics"], input=m, capture_output=True, text=True)
        print("    promtool check metrics (with savings): exit %d %s" %
              (p.returncode, (p.stdout + p.stderr).strip() or "(no problems)"))
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr)
