"""Search under the credit budgets: a page's worst case (limit x the provider's credits
per record) is reserved on the client account's budget and on the upstream key's before
the call and settled with what the page cost; a budget that cannot take the page is 429
budget_exceeded with Retry-After (and how much still fits) and no call; an upstream key
whose budget is spent is parked and rotation moves on; a page from the cache needs no
budget and counts as savings.  Counted at the simulator."""

import json
import time

from harness import Env, check, wait_for
from providers import admin_keys, keys_env, secret
from test_search import auth, conf, env_for, expected, key, search, search_calls


def seconds_to_utc_midnight():
    return 86400 - time.time() % 86400


def account_budget(env):
    st = json.loads(env.ctl("account", "budget", "acme", "--json").stdout)
    return st["budgets"][0]


def test_a_search_reserves_its_worst_case_on_the_account_budget_and_settles_its_cost():
    with env_for(kinds=("pdl",)) as env:
        k = key(env)
        env.ctl("account", "set-budget", "acme", "--credits-per-day", "12")
        # A search that asks for 10 and finds fewer pays for what it found: the
        # budget keeps the rest.
        few = {"domains": ["initech.com"], "titles": ["data scientist"]}
        n = expected(env, "pdl", "people", few, limit=10)["total"]
        check(0 < n < 10, f"the scenario needs a search with 1..9 matches: {n}")
        r = search(env, k, "people", dict(few, limit=10)).json()
        check(len(r["results"]) == n and r["_meta"]["credits_used"] == n, r["_meta"])
        day = account_budget(env)
        check(day["spent"] == n and day["held"] == 0 and day["left"] == 12 - n, day)
        # The worst case of a page that does not fit is refused before any call.
        env.sim.clear_calls()
        left = 12 - n
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": left + 1}, expect=429)
        err = r.json()["error"]
        check(err["code"] == "budget_exceeded", err)
        check(err["details"] == [{"field": "limit", "problem": "over the credit budget",
                                  "fits": left}], err)
        ra = int(r.header("retry-after"))
        check(abs(ra - seconds_to_utc_midnight()) <= 5, (ra, seconds_to_utc_midnight()))
        check(search_calls(env) == [], f"a refused search called: {search_calls(env)}")
        # What fits goes through and spends the budget exactly.
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": left}).json()
        check(r["_meta"]["credits_used"] == left and len(search_calls(env)) == 1, r["_meta"])
        day = account_budget(env)
        check(day["spent"] == 12 and day["left"] == 0 and day["held"] == 0, day)
        # A page from the cache costs nothing and is not refused.
        env.sim.clear_calls()
        r = search(env, k, "people", dict(few, limit=10)).json()
        check(r["_meta"]["cached"] is True and r["_meta"]["credits_used"] == 0, r["_meta"])
        check(search_calls(env) == [], search_calls(env))
        # from_search walks pages under the same budget: nothing left, nothing bought.
        r = env.request("POST", "/enrich/enqueue", headers=auth(k), json_body={
            "from_search": {"cursor": search(env, k, "people", dict(few, limit=10)).json()
                            ["_meta"]["page_cursor"]}})
        check(r.status == 202, r)
        r = env.request("POST", "/search/companies", headers=auth(k),
                        json_body={"domains": ["acme.com"], "limit": 1})
        check(r.status == 429 and r.json()["error"]["code"] == "budget_exceeded", r)
        check(search_calls(env) == [], search_calls(env))
        env.wait_log(r"account acme's daily budget of 12 credits is spent")


def keyed_env(budget):
    """PDL with two keys, the first with a daily budget of `budget` credits."""
    make = conf(kinds=("pdl",), n=2)

    def with_budget(env):
        c = make(env)
        c["providers"][0]["keys"][0]["budget"] = {"credits": budget, "period": "day"}
        return c
    return Env(conf=with_budget, sim=True, env=keys_env("pdl", 2))


def test_a_key_whose_budget_cannot_take_a_page_is_passed_over_and_parked_when_spent():
    with keyed_env(6) as env:
        k = key(env)
        r = search(env, k, "people", {"domains": ["acme.com"], "limit": 5}).json()
        check(r["_meta"]["credits_used"] == 5, r["_meta"])
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 1)], search_calls(env))
        # 1 credit left on pdl-1: a page of 5 goes to pdl-2, pdl-1 stays usable.
        env.sim.clear_calls()
        r = search(env, k, "people", {"domains": ["initech.com"], "limit": 5}).json()
        check(r["_meta"]["status"] == "complete", r["_meta"])
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 2)], search_calls(env))
        check(admin_keys(env, k)["pdl-1"]["state"] == "active", admin_keys(env, k)["pdl-1"])
        # A page of 1 fits the last credit, then the key's budget is spent.
        env.sim.clear_calls()
        search(env, k, "people", {"domains": ["umbrella.com"], "limit": 1})
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 1)], search_calls(env))
        env.sim.clear_calls()
        r = search(env, k, "people", {"domains": ["globex.com"], "limit": 1}).json()
        check([c["key"] for c in search_calls(env)] == [secret("pdl", 2)], search_calls(env))
        check(admin_keys(env, k)["pdl-1"]["state"] == "exhausted", admin_keys(env, k)["pdl-1"])
        env.wait_log(r"key pdl-1's daily budget of 6 credits is spent")
        b = json.loads(env.ctl("keys", "budgets", "--json").stdout)
        check([(x["budget"], x["spent"], x["held"], x["left"]) for x in b] ==
              [("key:pdl-1", 6, 0, 0)], b)


def test_a_cached_search_page_counts_as_savings():
    with env_for(kinds=("pdl",)) as env:
        k = key(env)
        body = {"domains": ["acme.com"], "limit": 4}
        search(env, k, "people", body)
        for _ in range(2):
            r = search(env, k, "people", body).json()
            check(r["_meta"]["cached"] is True, r["_meta"])

        def saved():
            r = env.request("GET", "/admin/usage?days=1", headers=auth(k))
            sv = {x["provider"]: x for x in r.json()["savings"]}
            return sv.get("pdl")
        s = wait_for(lambda: (lambda v: v if v and v["calls_avoided_by_cache"] == 2 else None)(
            saved()), what="two calls avoided")
        check(s["credits_avoided_by_cache"] == 8, s)
