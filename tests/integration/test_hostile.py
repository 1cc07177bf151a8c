"""Hostile input against the batch, job and admin routes: every answer is the one JSON
error shape with the right code, nothing crashes, and the service keeps answering."""

import os
import subprocess

import fcgi
from harness import ENRICHD, Env, check
from providers import client_key


def auth(k, **more):
    h = {"Authorization": "Bearer " + k}
    h.update(more)
    return h


def error(r, status, code):
    """r is the JSON error of that status and code; returns the error object."""
    check(r.status == status, f"want {status}: {r!r}")
    check((r.header("content-type") or "").startswith("application/json"), r)
    b = r.json()
    check(set(b) == {"error"}, b)
    e = b["error"]
    check(e["code"] == code and isinstance(e["message"], str) and e["message"], e)
    check(e["request_id"] == r.header("x-request-id"), e)
    if status == 400:
        check(isinstance(e.get("details"), list) and e["details"], e)
        for d in e["details"]:
            check(isinstance(d.get("field"), str) and isinstance(d.get("problem"), str), d)
    return e


def still_serving(env, k):
    check(env.request("GET", "/health").status == 200, "health after hostile input")
    r = env.request("POST", "/enrich", json_body={"email": "john.doe@example.com"}, headers=auth(k))
    check(r.status == 200, f"the service stopped answering: {r!r}")


def test_deep_nesting_is_refused_and_the_responder_survives():
    with Env(conf={"limits": {"body_max_bytes": 1 << 20}}) as env:
        k = client_key(env, scopes="enrich,enqueue")
        deep = "[" * 2000 + "]" * 2000
        for path, body in (("/enrich/enqueue", '{"records": [' + deep + ']}'),
                           ("/enrich/enqueue", '{"records": [{"email": ' + deep + '}]}'),
                           ("/enrich/enqueue", '{"enrich": ' + "{\"a\":" * 3000 + "1" + "}" * 3000 + '}'),
                           ("/enrich", '{"email": "a@b.com", "enrich": ' + deep + '}')):
            for _ in range(3):
                r = env.request("POST", path, body=body.encode(),
                                headers=auth(k, **{"Content-Type": "application/json"}))
                e = error(r, 400, "invalid_request")
                check({"field": "body", "problem": "nested deeper than 32 levels"} in e["details"], e)
        still_serving(env, k)
        check(env.enrichd.poll() is None, "enrichd exited")


def _fcgi(env, params):
    base = {"REQUEST_METHOD": "GET", "QUERY_STRING": "", "CONTENT_LENGTH": "0",
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_ID": "hostile0path0test"}
    base.update(params)
    c = fcgi.Conn(env.socket)
    try:
        c.begin(base)
        c.end_stdin()
        return c.read_response()
    finally:
        c.close()


def test_routes_match_exactly_the_path_nginx_matched():
    """nginx guards `location = /metrics`; a path that only becomes /metrics after
    enrichd cuts it at '?' (sent as %3F) must not reach the metrics route."""
    with Env() as env:
        k = client_key(env, scopes="enrich,enqueue,admin")
        a = "Bearer " + k
        # Straight to enrichd's socket with the parameters nginx sends for /metrics%3F.
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/metrics?", "REQUEST_URI": "/metrics%3F",
                                  "HTTP_AUTHORIZATION": a})
        check(st == 404 and b'"code":"not_found"' in body, (st, body[:300]))
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/metrics?x=1", "REQUEST_URI": "/metrics%3Fx=1",
                                  "HTTP_AUTHORIZATION": a})
        check(st == 404, (st, body[:300]))
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/metrics", "REQUEST_URI": "/metrics",
                                  "HTTP_AUTHORIZATION": a})
        check(st == 200 and b"enrichd_http_requests_total" in body, (st, body[:300]))
        # The query is QUERY_STRING's, never what follows a '?' in the path.
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/admin/usage?days=abc", "QUERY_STRING": "",
                                  "HTTP_AUTHORIZATION": a})
        check(st == 404, (st, body[:300]))
        # Through nginx: the encoded '?' is part of the path, so nothing matches.
        for path in ("/metrics%3F", "/metrics%3Fformat=x", "/health%3F", "/enrich%3F"):
            error(env.request("GET", path, headers={"Authorization": a}), 404, "not_found")
        check(env.request("GET", "/metrics", headers={"Authorization": a}).status == 200)
        # A path over the cap is not cut down to one that matches.
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/health" + "/" * 3000})
        check(st == 404, (st, body[:300]))
        st, h, body = _fcgi(env, {"DOCUMENT_URI": "/enrich/jobs/" + "a" * 2100,
                                  "HTTP_AUTHORIZATION": a})
        check(st == 404, (st, body[:300]))


def test_cgi_routes_on_path_info():
    """A CGI server mounts the program under a script path: PATH_INFO is the route,
    REQUEST_URI (raw, with the script path and the query) is only a fallback."""
    with Env(start=False) as env:
        base = dict(os.environ, GATEWAY_INTERFACE="CGI/1.1", ENRICHD_CONF=env.conf_path,
                    REQUEST_METHOD="GET", QUERY_STRING="")
        for extra, want in (({"PATH_INFO": "/health", "REQUEST_URI": "/cgi-bin/enrichd/health"}, 200),
                            ({"PATH_INFO": "/health?", "REQUEST_URI": "/cgi-bin/enrichd/health%3F"}, 404),
                            ({"REQUEST_URI": "/health?x=1"}, 200),
                            ({"REQUEST_URI": "/health%3F"}, 404)):
            p = subprocess.run([ENRICHD], env=dict(base, **extra), capture_output=True,
                               stdin=subprocess.DEVNULL)
            out = p.stdout.decode()
            check(out.startswith(f"Status: {want} "), (extra, out[:300]))
