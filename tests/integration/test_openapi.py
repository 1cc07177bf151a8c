"""docs/openapi.json: served at /openapi.json, lists every route the responder has, and
the response check the harness runs on every answer refuses what the document does not
describe (so a passing suite means the document matches the product)."""

import json
import os
import re

import openapi
from harness import ROOT, Env, check


def routes_in_code():
    """(method, pattern) of every route in cgi/routes.c."""
    src = open(os.path.join(ROOT, "cgi", "routes.c")).read()
    table = src[src.index("static const struct route routes[] = {"):]
    table = table[:table.index("};")]
    out = set()
    for m in re.finditer(r'(?:ROUTE|ROUTE_Q|ADMIN|ADMIN_Q)\(\s*"([A-Z]+)",\s*"([^"]+)"|\{\s*"([A-Z]+)",\s*"([^"]+)"',
                         table):
        method = m.group(1) or m.group(3)
        out.add((method, m.group(2) or m.group(4)))
    return out


def test_every_route_is_documented_and_nothing_else():
    doc = openapi.document()
    code = routes_in_code()
    check(len(code) >= 15, f"routes not found in cgi/routes.c: {code}")
    documented = set()
    for p, item in doc["paths"].items():
        for m, op in item.items():
            if m in ("get", "post", "put", "patch", "delete") and "nginx" not in op["summary"]:
                documented.add((m.upper(), p))
    check(code == documented, f"only in code: {sorted(code - documented)}; "
                              f"only in the document: {sorted(documented - code)}")
    for p, item in doc["paths"].items():
        for m, op in item.items():
            if m in ("options", "parameters") or not op.get("security"):
                continue
            check(set(op["x-scopes"]) <= {"enrich", "enqueue", "admin", "metrics", "search"}, op)
            for c in ("401", "403", "429"):
                check(c in op["responses"], f"{m} {p} does not document {c}")


def test_openapi_json_is_served_by_nginx():
    with Env() as env:
        r = env.request("GET", "/openapi.json")
        check(r.status == 200 and r.header("content-type").startswith("application/json"), r)
        check(r.json() == openapi.document(), "served document differs from docs/openapi.json")
        check(r.json()["openapi"] == "3.1.0", r.json().get("openapi"))
        version = open(os.path.join(ROOT, "VERSION")).read().strip()
        check(r.json()["info"]["version"] == version,
              f"info.version {r.json()['info']['version']} is not the product's {version}")


def test_the_check_refuses_what_the_document_does_not_say():
    openapi.document()
    hdr = [("x-request-id", "abc"), ("content-type", "application/json")]
    ok = json.dumps({"status": "ok", "version": "1", "store": "ok"}).encode()
    openapi.check("GET", "/health", 200, hdr, ok)
    openapi.check("HEAD", "/health", 200, hdr, b"")

    def refused(method, url, status, headers, body, why):
        try:
            openapi.check(method, url, status, headers, body)
        except openapi.Mismatch as e:
            check(why in str(e), f"refused for another reason: {e}")
            return
        raise AssertionError(f"{method} {url} {status} was accepted: {body!r}")

    refused("GET", "/health", 201, hdr, ok, "status not documented")
    refused("GET", "/health", 200, hdr, b'{"status":"fine"}', "body at")
    refused("GET", "/health", 200, [("content-type", "application/json")], ok,
            "required header X-Request-Id missing")
    refused("GET", "/health", 200, [("x-request-id", "abc"), ("content-type", "text/html")], ok,
            "content type")
    refused("POST", "/enrich", 429, hdr, json.dumps({"error": {"code": "rate_limited",
                                                                "message": "x"}}).encode(),
            "required header Retry-After missing")
    refused("GET", "/no/such/route", 200, hdr, ok, "status not documented")
    refused("DELETE", "/health", 200, hdr, ok, "status not documented")
    refused("GET", "/enrich/jobs/job_0123", 200, hdr, json.dumps({"job_id": "x"}).encode(),
            "body at")
    err = json.dumps({"error": {"code": "not_a_code", "message": "x"}}).encode()
    refused("GET", "/no/such/route", 404, hdr, err, "body at error/code")
    # What Client.request records is checked when the test ends: an undescribed
    # response recorded now is a problem drain() reports (run.py fails the test).
    openapi.record("GET", "/health", 418, hdr, ok)
    openapi.record("GET", "/health", 200, hdr, ok)
    problems = openapi.drain()
    check(len(problems) == 1 and "418" in problems[0], problems)
    before = openapi.validated()
    openapi.check("GET", "/no/such/route", 404, hdr,
                  json.dumps({"error": {"code": "not_found", "message": "x"}}).encode())
    check(openapi.validated() == before + 1, "validated responses are not counted")
