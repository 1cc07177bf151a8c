"""Connections to providers over TLS: calls to a provider that speaks HTTP/2 share a
connection (many streams on one), a cap on connections keeps calls on the streams a
provider allows, a provider's "http2 = off" keeps HTTP/1.1 (a connection a call in
flight), and its certificate is checked against the provider's ca_file.  The provider
is bench/fastup with its own certificate for 127.0.0.1."""

import json
import os
import subprocess
import tempfile

from harness import ENRICHD, Env, FastUp, check
from providers import client_key
from test_engine import HIGH, body, many, raise_nofile


def tls_provider(up, ca_file, **extra):
    p = {"name": "pdl", "kind": "pdl", "base_url": up.url(), "timeout_ms": 10000,
         "ca_file": ca_file, "keys": [{"id": "pdl-1", "secret": "env:PDL_KEY_1"}]}
    p.update(extra)
    return p


def run_calls(n, delay_ms, tag, h2=True, ca="own", max_streams=None, upstream=None,
              warm=False, **pextra):
    """n concurrent POST /enrich against the TLS stand-in (which allows max_streams
    streams a connection), after one call alone when warm (its connection has then
    said how many streams it allows); (answers, connections the stand-in accepted,
    answers it gave)."""
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="enrichd-h2-")
    up = FastUp(tmp, delay_ms, tls=True, h2=h2, max_streams=max_streams)
    ca_file = up.cert
    if ca == "other":
        other = FastUp(tmp, 1, tls=True)
        ca_file = other.cert
        other.close()
    try:
        conf = {"threads": 4, "listen_backlog": 4096, "accounts_default": HIGH,
                "providers": [tls_provider(up, ca_file, **pextra)], "upstream": upstream or {},
                "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
                "endpoints": {"enrich": {"deadline_ms": 20000}}}
        with Env(conf=lambda env: conf, env={"PDL_KEY_1": "pdl-secret-0001"}) as env:
            k = client_key(env)
            if warm:
                first = many(env.https_port, k, [body(0, tag + "warm")], timeout=60)
                check(first[0][0] == 200, first[0][:2])
            answers = many(env.https_port, k, [body(i, tag) for i in range(n)], timeout=60)
    finally:
        up.close()
    return answers, up.connections, up.answers


def statuses(answers):
    out = {}
    for a in answers:
        out[a[0]] = out.get(a[0], 0) + 1
    return out


def test_calls_to_an_http2_provider_share_one_connection():
    # One call first: until a new connection's SETTINGS are read, libcurl counts 100
    # streams on it, and calls of a burst beyond them open connections of their own
    # (the README says how to cap that).  Then 300 calls in flight at once share it.
    n = 300
    answers, conns, _ = run_calls(n, 500, "h2", warm=True)
    check(statuses(answers) == {200: n}, (statuses(answers), [a[1] for a in answers][:3]))
    for a in answers[:20]:
        b = json.loads(a[2])
        check(b["_meta"]["status"] == "complete" and b["title"] == "engineering manager", b)
    check(conns == 1, conns)
    print(f"    {n} concurrent calls over HTTP/2: {conns} connection(s) to the provider")


def test_a_host_cap_keeps_calls_on_the_streams_a_provider_allows():
    # The provider allows 100 streams a connection and 1,000 calls wait on it at once:
    # past the streams it allows, each call would open a connection of its own; with
    # max_host_connections the calls wait for a free stream instead.
    n = 1000
    answers, conns, served = run_calls(n, 300, "cap", max_streams=100,
                                       upstream={"max_host_connections": 16})
    check(statuses(answers) == {200: n}, (statuses(answers), [a[1] for a in answers][:3]))
    check(served == n, served)
    check(conns is not None and 1 <= conns <= 16, conns)
    print(f"    {n} calls, provider allows 100 streams, max_host_connections 16: "
          f"{conns} connections")


def test_http2_off_keeps_http1_a_connection_per_call_in_flight():
    n = 100
    answers, conns, _ = run_calls(n, 500, "h1", http2="off")
    check(statuses(answers) == {200: n}, (statuses(answers), [a[1] for a in answers][:3]))
    # HTTP/1.1 carries one call at a time: as many connections as calls waited at once.
    check(conns is not None and conns >= n * 0.9, conns)
    print(f"    {n} concurrent calls with http2 = off: {conns} connections to the provider")


def test_a_provider_certificate_the_ca_file_did_not_sign_is_refused():
    answers, conns, served = run_calls(3, 1, "ca", ca="other")
    # The TLS check failed before any request went: the provider answered nothing, and
    # each answer says the call failed (a transient failure, not a miss).
    for status, hdrs, raw in answers:
        b = json.loads(raw)
        check(status == 200 and b["_meta"]["status"] == "incomplete", (status, b))
        check(b["_meta"]["errors"] == [{"provider": "pdl", "outcome": "transient"}], b)
        check(b["title"] is None and b["_meta"]["credits_used"] == 0, b)
    check(conns is not None and conns >= 1, conns)
    check(served == 0, served)


def test_an_unreadable_ca_file_is_a_configuration_error():
    tmp = tempfile.mkdtemp(prefix="enrichd-h2-")
    conf = os.path.join(tmp, "enrichd.conf")
    with open(conf, "w") as f:
        f.write('providers = ( { name = "pdl"; kind = "pdl"; ca_file = "no-such.pem";\n'
                '  keys = ( { id = "pdl-1"; secret = "env:PDL_KEY_1"; } ); } );\n'
                'waterfall = { person = [ "pdl" ]; };\n')
    r = subprocess.run([ENRICHD, "-t", "-c", conf], capture_output=True, text=True,
                       env=dict(os.environ, PDL_KEY_1="pdl-secret-0001"))
    check(r.returncode != 0, (r.returncode, r.stdout, r.stderr))
    out = r.stdout + r.stderr
    check("ca_file" in out and "no-such.pem" in out and "cannot be read" in out, out)
