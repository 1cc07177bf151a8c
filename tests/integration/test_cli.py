"""The command lines: enrichd's and enrichctl's options, help and version, and
enrichctl's tables (header row, aligned, 100 columns, ellipsis, --json whole),
usage totals and the key pool's reasons, on the real binaries and store."""

import json
import re
import subprocess
import time

from harness import ENRICHCTL, ENRICHD, BATCH, Env, check, wait_for
from providers import client_key, conf_with, enrich, keys_env, secret

PDL = "pdl"
WIDTH = 100


def run(*args, env=None):
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60)


def lines_of(text):
    return [l for l in text.split("\n") if l]


def check_table(text, header):
    """The table's first line is its header (these column names, in order), every
    line fits WIDTH columns, has no trailing space, and columns line up: each header
    name starts where its column starts on every row (left-aligned columns)."""
    lines = lines_of(text)
    check(lines and lines[0].split() == header, f"header {lines[:1]} is not {header}")
    for l in lines:
        check(len(l) <= WIDTH, f"{len(l)} columns: {l!r}")
        check(l == l.rstrip(), f"trailing space: {l!r}")
    return lines


def column(lines, name):
    """Start offset of a header name; a left-aligned column's cells start there."""
    return lines[0].index(name)


def test_enrichd_help_version_and_long_options():
    for args in (("--help",), ("-h",)):
        p = run(ENRICHD, *args)
        check(p.returncode == 0 and p.stderr == "", (args, p))
        check(p.stdout.startswith("usage: enrichd [-c FILE] [-t | -p | -V | -h]"), p.stdout)
        for opt in ("-c, --config FILE", "-t, --test", "-p, --print-nginx", "-V, --version",
                    "-h, --help"):
            check(opt in p.stdout, f"{opt} not in the usage: {p.stdout}")
    for args in (("--version",), ("-V",)):
        p = run(ENRICHD, *args)
        check(p.returncode == 0 and re.fullmatch(r"enrichd \d+\.\d+\.\d+\n", p.stdout), (args, p))
    p = run(ENRICHD, "--bogus")
    check(p.returncode == 2 and "usage: enrichd" in p.stderr and p.stdout == "", p)
    with Env(start=False) as env:
        p = run(ENRICHD, "--test", "--config", env.conf_path)
        check(p.returncode == 0 and "configuration ok" in p.stdout, p)
        p = run(ENRICHD, "--print-nginx", "--config", env.conf_path)
        check(p.returncode == 0 and re.search(r"^[A-Z_]+=", p.stdout, re.M), p)
        check(p.stdout == run(ENRICHD, "-p", "-c", env.conf_path).stdout, "-p and --print-nginx differ")


def test_enrichctl_and_enrich_batch_help_and_version():
    for prog, name in ((ENRICHCTL, "enrichctl"), (BATCH, "enrich-batch")):
        for args in (("--help",), ("-h",)):
            p = run(prog, *args)
            # No "unrecognized option" first: --help is an option of its own.
            check(p.returncode == 0 and p.stderr == "" and p.stdout.startswith(f"usage: {name} "),
                  (prog, args, p))
        for args in (("--version",), ("-V",)):
            p = run(prog, *args)
            check(p.returncode == 0 and re.fullmatch(name + r" \d+\.\d+\.\d+\n", p.stdout), p)
        p = run(prog, "--no-such-option")
        check(p.returncode == 2 and "usage:" in p.stderr, p)
    p = run(ENRICHCTL, "--help")
    check("-c, --config FILE" in p.stdout and "--json" in p.stdout, p.stdout)


def test_enrichctl_tables_fit_and_json_keeps_everything():
    long_name = "northwind-traders-international-holdings-" + "x" * 22   # 64 bytes
    with Env(start=False) as env:
        env.ctl("migrate")
        env.ctl("--config", env.conf_path, "account", "create", "acme")   # long option works
        env.ctl("account", "create", long_name)
        env.ctl("account", "set-limits", "acme", "--burst", "60")
        env.ctl("key", "create", "acme", "--name", "the laptop of the sales team in Lisbon, 2nd floor",
                "--raw")
        env.ctl("key", "create", long_name, "--scopes", "enrich,enqueue,admin", "--raw")

        p = env.ctl("account", "list")
        lines = check_table(p.stdout.split("\n* ")[0],
                            ["ID", "ACCOUNT", "REQUESTS/MIN", "BURST", "RECORDS/HOUR", "RECORDS/DAY",
                             "CREATED"])
        check(len(lines) == 3, lines)
        acme = next(l for l in lines if " acme " in l)
        long_row = next(l for l in lines if "northwind" in l)
        check(long_name not in p.stdout and "\u2026" in long_row, f"long name not cut: {long_row!r}")
        check(re.search(r" 60\* ", acme) and "* set for the account" in p.stdout, p.stdout)
        check(acme.index("acme") == column(lines, "ACCOUNT") == long_row.index("northwind"), lines)
        j = json.loads(env.ctl("account", "list", "--json").stdout)
        check({a["name"] for a in j} == {"acme", long_name}, j)

        p = env.ctl("key", "list")
        lines = check_table(p.stdout, ["ID", "ACCOUNT", "NAME", "KEY", "SCOPES", "CREATED", "EXPIRES",
                                       "STATE"])
        check(len(lines) == 3 and all(l.endswith(" active") for l in lines[1:]), lines)
        check(all(l[column(lines, "KEY"):].startswith("...") for l in lines[1:]), lines)
        j = json.loads(env.ctl("key", "list", "--json").stdout)
        check(any(k["name"] == "the laptop of the sales team in Lisbon, 2nd floor" for k in j) and
              any(k["account"] == long_name for k in j), j)
        ids = sorted(k["id"] for k in j)
        env.ctl("key", "revoke", str(ids[0]))
        check(env.ctl("key", "list").stdout.split("\n")[1].endswith(" revoked"),
              env.ctl("key", "list").stdout)

        p = env.ctl("account", "show", "acme")
        check(p.stdout.split("\n")[0].split()[:2] == ["ID", "ACCOUNT"] and "\nID " in p.stdout and
              "the laptop" in p.stdout, p.stdout)
        check(env.ctl("usage").stdout.startswith("no usage recorded since "), env.ctl("usage").stdout)
        p = env.ctl("keys", "list")
        check(p.stdout.startswith("no upstream keys: the configuration ") and
              "has no provider with keys" in p.stdout, p.stdout)


def test_key_pool_says_why_and_until_when_and_usage_has_totals():
    with Env(conf=conf_with(PDL, 4), sim=True, env=keys_env(PDL, 4)) as env:
        k = client_key(env)
        env.sim.script(PDL, secret(PDL, 1), [{"kind": "rate_limited", "reset_s": 120}])
        env.sim.script(PDL, secret(PDL, 2), [{"kind": "invalid_key"}])
        env.sim.script(PDL, secret(PDL, 3), [{"kind": "quota"}])
        t0 = time.time()
        enrich(env, k, {"email": "john.doe@acme.com", "enrich": ["title"]}, expect=200)
        for i in range(3):
            enrich(env, k, {"email": f"jane.roe{i}@acme.com", "enrich": ["title"]}, expect=200)

        # The responder writes its call counters to the store every second or so.
        wait_for(lambda: {x["id"]: x["calls"] for x in json.loads(env.ctl("keys", "list", "--json").stdout)}
                 .get("pdl-4") == 4, what="pdl-4's calls in the store")
        p = env.ctl("keys", "list")
        table, _, notes = p.stdout.partition("\n\n")
        lines = check_table(table, ["ID", "PROVIDER", "ACCOUNT", "KEY", "STATE", "BACK", "CALLS", "HITS",
                                    "MISSES", "ERRORS", "CREDITS"])
        rows = {l.split()[0]: l for l in lines[1:]}
        check(set(rows) == {"pdl-1", "pdl-2", "pdl-3", "pdl-4"}, rows)
        state = column(lines, "STATE")
        check([rows[f"pdl-{i}"][state:].split()[0] for i in range(1, 5)] ==
              ["cooling", "invalid", "exhausted", "active"], rows)
        back = rows["pdl-1"][column(lines, "BACK"):].split()
        check(back[0] == "in" and re.fullmatch(r"1m[45]\ds|2m00s", back[1]), rows["pdl-1"])
        check(rows["pdl-2"][column(lines, "BACK"):].startswith("revive"), rows["pdl-2"])
        check(re.search(r"\s4\s+4\s+0\s+0\s+4$", rows["pdl-4"]), rows["pdl-4"])
        # One note per key out of service: why, until when, how it comes back.
        for l in notes.split("\n"):
            check(len(l) <= WIDTH, f"{len(l)} columns: {l!r}")
        flat = re.sub(r"\n  ", " ", notes)
        m = re.search(r"^pdl-1: cooling until (\S+) \(in (\S+)\): the provider rate-limited it", flat, re.M)
        check(m, notes)
        until = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        check(t0 + 115 <= until <= time.time() + 121, f"until {m.group(1)}")
        check(re.search(r"^pdl-2: invalid: the provider refused the key .*enrichctl keys revive pdl-2$",
                        flat, re.M), notes)
        check(re.search(r"^pdl-3: exhausted: out of credits .*no reset time.*enrichctl keys revive pdl-3$",
                        flat, re.M), notes)
        check("pdl-4" not in notes, notes)
        j = {x["id"]: x for x in json.loads(env.ctl("keys", "list", "--json").stdout)}
        check(j["pdl-1"]["state"] == "cooling" and j["pdl-1"]["until"] == m.group(1), j["pdl-1"])
        p = env.ctl("keys", "revive", "pdl-9", check_rc=False)
        check(p.returncode == 1 and "enrichctl keys list" in p.stderr, p.stderr)

        # Usage: a row per account and day, then the total.
        other = client_key(env, account="globex")
        enrich(env, other, {"email": "amy.poe@globex.com", "enrich": ["title"]}, expect=200)
        # Usage counted in memory reaches the store within a second or so.
        wait_for(lambda: sum(u["requests"] for u in json.loads(env.ctl("usage", "--json").stdout)) == 5,
                 what="the usage in the store")
        p = env.ctl("usage")
        lines = check_table(p.stdout, ["DAY", "ACCOUNT", "REQUESTS", "RECORDS", "CREDITS", "REJECTIONS"])
        data = [l.split() for l in lines[1:]]
        days = [d for d in data if d[0] != "total"]
        totals = {d[2]: d[3:] for d in data if d[0] == "total"}
        check(totals.keys() == {"acme", "globex", "(all)"}, data)
        check(totals["acme"][0] == "4" and totals["globex"][0] == "1" and totals["(all)"][0] == "5", totals)
        check(sum(int(d[2]) for d in days) == 5, days)
        j = json.loads(env.ctl("usage", "--json").stdout)
        check(sum(u["requests"] for u in j) == 5 and sum(u["credits"] for u in j) == int(totals["(all)"][2]),
              j)
        p = env.ctl("usage", "acme", "--days", "3")
        check(lines_of(p.stdout)[-1].split()[:4] == ["total", "3d", "acme", "4"], p.stdout)
