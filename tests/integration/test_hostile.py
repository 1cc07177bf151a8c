"""Hostile input against the batch, job and admin routes: every answer is the one JSON
error shape with the right code, nothing crashes, and the service keeps answering."""

from harness import Env, check
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
