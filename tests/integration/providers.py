"""Helpers for scenarios that call providers through the simulator."""

import json
import time

from harness import check


def keys_env(prefix, n):
    """Environment variables holding n test secrets: PREFIX_1..n = 'prefix-secret-i'."""
    return {f"{prefix.upper()}_KEY_{i}": f"{prefix}-secret-{i:04d}" for i in range(1, n + 1)}


def secret(prefix, i):
    return f"{prefix}-secret-{i:04d}"


def provider(env, kind, n, name=None, accounts=None, **extra):
    """A provider block for n keys of kind pointing at the simulator."""
    name = name or kind
    keys = []
    for i in range(1, n + 1):
        k = {"id": f"{name}-{i}", "secret": f"env:{name.upper()}_KEY_{i}"}
        if accounts:
            k["account"] = accounts[i - 1]
        keys.append(k)
    p = {"name": name, "kind": kind, "base_url": env.sim.url(kind), "timeout_ms": 3000,
         "keys": keys}
    p.update(extra)
    return p


def conf_with(kind, n, waterfall=None, rotation=None, accounts=None, extra_conf=None, **pextra):
    """A conf callable for Env(conf=...): one provider of kind with n keys, used
    for every field group (no local provider, so upstream calls are exact)."""
    def make(env):
        groups = waterfall or {g: [kind] for g in ("person", "phone", "email", "company")}
        c = {"providers": [provider(env, kind, n, accounts=accounts, **pextra)],
             "waterfall": groups,
             "rotation": rotation or {"strategy": "ordered"}}
        if extra_conf:
            c.update(extra_conf)
        return c
    return make


def client_key(env, scopes="enrich,enqueue,admin", account="acme"):
    env.ctl("account", "create", account, check_rc=False)
    return env.ctl("key", "create", account, "--scopes", scopes, "--raw").stdout.strip()


def enrich(env, key, body, expect=None):
    r = env.request("POST", "/enrich", json_body=body, headers={"Authorization": "Bearer " + key})
    if expect is not None:
        check(r.status == expect, f"want {expect}: {r!r}")
    return r


def admin_keys(env, key):
    r = env.request("GET", "/admin/keys", headers={"Authorization": "Bearer " + key})
    check(r.status == 200, r)
    return {k["id"]: k for k in r.json()["keys"]}


def calls_by_key(env, provider_kind):
    out = {}
    for c in env.sim.calls(provider=provider_kind):
        out[c["key"]] = out.get(c["key"], 0) + 1
    return out


def iso_to_epoch(s):
    return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
