#!/usr/bin/python3
"""Tests for the provider simulator (tests/sim/providersim.py).

Starts the simulator on a free port, runs each check against it and prints
"PASS name" or "FAIL name: reason". Exits non-zero when any check fails.

    python3 tests/sim/test_providersim.py [-k substring] [-v]
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from urllib.parse import urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "providersim.py")

PORT = None
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(got, want, what):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def h(self, name):
        return self.headers.get(name.lower())


class Client:
    """A keep-alive client: one connection reused across requests."""

    def __init__(self, timeout=10):
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, headers=None, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=self.timeout)
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            r = self.conn.getresponse()
            raw = r.read()
        except Exception:
            self.close()
            raise
        headers = {k.lower(): v for k, v in r.getheaders()}
        if r.will_close:
            self.close()
        return Resp(r.status, headers, raw)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


C = Client()


def ctl(method, name, body=None, query=None):
    path = "/_sim/" + name + ("?" + urlencode(query) if query else "")
    r = C.request(method, path, body=body)
    check(r.status == 200, "control %s %s: %d %r" % (method, name, r.status, r.body))
    return r.json


def pdl_person(key="k", client=None, **params):
    return (client or C).request("GET", "/pdl/v5/person/enrich?" + urlencode(params),
                                 {"X-Api-Key": key} if key else {})


def lusha_person(key="k", **params):
    return C.request("GET", "/lusha/v2/person?" + urlencode(params),
                     {"api_key": key} if key else {})


def surfe_start(key, people):
    return C.request("POST", "/surfe/v2/people/enrich",
                     {"Authorization": "Bearer " + key},
                     {"include": {"email": True, "mobile": True, "linkedInUrl": True},
                      "people": people})


def surfe_poll(key, jid):
    return C.request("GET", "/surfe/v2/people/enrich/" + jid,
                     {"Authorization": "Bearer " + key})


# ---------------------------------------------------------------------------

@test
def pdl_hit():
    r = pdl_person(email="john.doe@acme.com", min_likelihood=6, titlecase="true")
    eq(r.status, 200, "status")
    b = r.json
    eq(b["status"], 200, "body status")
    eq(b["likelihood"], 8, "likelihood")
    d = b["data"]
    eq(d["first_name"], "John", "first_name")
    eq(d["last_name"], "Doe", "last_name")
    eq(d["job_company_name"], "Acme Inc", "company")
    eq(d["work_email"], "john.doe@acme.com", "work_email")
    eq(d["linkedin_url"], "https://www.linkedin.com/in/john-doe", "linkedin")
    check(d["mobile_phone"].startswith("+1 555 01"), "pdl phone block: %r" % d["mobile_phone"])
    check(d["job_title"] and d["job_title_levels"] and d["job_title_role"], "title fields")
    eq(r.h("x-call-credits-spent"), "1", "credits spent")
    check("minute" in json.loads(r.h("x-ratelimit-remaining")), "x-ratelimit-remaining")
    check(r.h("x-totallimit-remaining") is not None, "x-totallimit-remaining")
    # deterministic: the same answer again, and the same as /_sim/expected says
    eq(pdl_person(email="john.doe@acme.com", titlecase="true").body, r.body, "repeatable")
    exp = ctl("GET", "expected", query={"provider": "pdl", "email": "john.doe@acme.com"})
    check(exp["found"], "expected found")
    eq(exp["fields"]["title"], d["job_title"], "expected title")
    eq(exp["fields"]["phone"], d["mobile_phone"], "expected phone")
    # without titlecase PDL writes lower case
    lc = pdl_person(email="john.doe@acme.com").json["data"]
    eq(lc["first_name"], "john", "lower-case first_name")
    eq(lc["job_company_name"], "acme inc", "lower-case company")


@test
def pdl_miss():
    for email in ("miss.x@acme.com", "nobody@acme.com"):
        r = pdl_person(email=email)
        eq(r.status, 404, "status for " + email)
        eq(r.json["error"]["type"], "not_found", "error type")
        eq(r.h("x-call-credits-spent"), "0", "credits spent on a miss")
    # min_likelihood above the record's likelihood is a miss too
    eq(pdl_person(email="john.doe@acme.com", min_likelihood=9).status, 404,
       "min_likelihood 9")


@test
def pdl_company():
    r = C.request("GET", "/pdl/v5/company/enrich?website=acme.com", {"X-Api-Key": "k"})
    eq(r.status, 200, "status")
    b = r.json
    eq(b["display_name"], "Acme Inc", "display_name")
    check(b["size"] and b["industry"] and b["inferred_revenue"] and len(b["tags"]) == 3,
          "company fields: %r" % b)
    r = C.request("GET", "/pdl/v5/company/enrich?website=missing.io", {"X-Api-Key": "k"})
    eq(r.status, 404, "company miss")


@test
def lusha_hit():
    r = lusha_person(email="jane_roe@acme.com")
    eq(r.status, 200, "status")
    d = r.json["contact"]["data"]
    eq(d["firstName"], "Jane", "firstName")
    eq(d["company"]["name"], "Acme Inc", "company")
    check(d["phoneNumbers"][0]["number"].startswith("+1 555 02"), "lusha phone block")
    eq(r.json["contact"]["isCreditCharged"], True, "charged")
    for h in ("x-minute-requests-left", "x-hourly-requests-left", "x-daily-requests-left",
              "x-rate-limit-minute"):
        check(r.h(h) is not None, "missing meter " + h)


@test
def lusha_miss_styles():
    r = lusha_person(email="miss.jane@acme.com")
    eq(r.status, 404, "default miss status")
    eq(r.json["statusCode"], 404, "statusCode")
    ctl("POST", "script", {"provider": "lusha", "key": "L1",
                           "steps": [{"kind": "miss", "style": "empty"}, {"kind": "miss"}]})
    r = lusha_person(key="L1", email="jane@acme.com")
    eq(r.status, 200, "empty-style status")
    c = r.json["contact"]
    eq(c["data"], None, "data")
    eq(c["error"]["code"], "EMPTY_DATA", "error code")
    eq(c["isCreditCharged"], False, "not charged")
    r = lusha_person(key="L1", email="jane@acme.com")
    eq(r.status, 404, "scripted 404 miss")
    eq(lusha_person(key="L1", email="jane@acme.com").status, 200, "queue empty: default")
    ctl("POST", "config", {"lusha_miss_style": "empty"})
    r = C.request("GET", "/lusha/v2/company?domain=missing.com", {"api_key": "k"})
    eq((r.status, r.json), (200, {"data": None}), "company empty miss")


@test
def lusha_forbidden():
    ctl("POST", "script", {"provider": "lusha", "key": "L2", "steps": [{"kind": "forbidden"}]})
    r = lusha_person(key="L2", email="a.b@acme.com", revealPhones="true")
    eq(r.status, 403, "status")
    eq(r.json["statusCode"], 403, "statusCode")
    check(isinstance(r.json.get("errors"), list), "errors list")


@test
def missing_key_401():
    eq(pdl_person(key=None, email="a.b@c.com").status, 401, "pdl")
    r = lusha_person(key=None, email="a.b@c.com")
    eq((r.status, r.json["statusCode"]), (401, 401), "lusha")
    r = C.request("POST", "/surfe/v2/people/enrich", {}, {"people": [{"firstName": "A"}]})
    eq(r.status, 401, "surfe")
    r = C.request("GET", "/generic/person?email=a.b@c.com")
    eq(r.status, 401, "generic")
    eq(pdl_person(key=None, email="a.b@c.com").json["error"]["type"], "invalid_auth",
       "pdl shape")


@test
def scripted_429_then_hit():
    ctl("POST", "script", {"provider": "pdl", "key": "P1", "steps": [
        {"kind": "rate_limited", "reset_s": 30}, {"kind": "hit", "omit": ["phone"]}]})
    t = time.time()
    r = pdl_person(key="P1", email="a.b@acme.com")
    eq(r.status, 429, "first call")
    eq(r.json["error"]["type"], "rate_limit_error", "error type")
    eq(json.loads(r.h("x-ratelimit-remaining")), {"minute": 0}, "x-ratelimit-remaining")
    reset = int(r.h("x-ratelimit-reset"))
    check(t + 28 <= reset <= t + 32, "x-ratelimit-reset %d vs now %d" % (reset, t))
    eq(r.h("retry-after"), "30", "Retry-After")
    # another key is not affected
    eq(pdl_person(key="P2", email="a.b@acme.com").status, 200, "other key")
    r = pdl_person(key="P1", email="a.b@acme.com")
    eq(r.status, 200, "second call")
    eq(r.json["data"]["mobile_phone"], None, "omitted phone")
    eq(r.json["data"]["phone_numbers"], [], "omitted phone list")
    eq(pdl_person(key="P1", email="a.b@acme.com").json["data"]["mobile_phone"] is not None,
       True, "then default")
    # lusha: window named in the message and header; no reset info when reset_s is null
    ctl("POST", "script", {"provider": "lusha", "key": "L3", "steps": [
        {"kind": "rate_limited", "window": "hourly", "reset_s": None},
        {"kind": "rate_limited", "window": "daily", "reset_s": 60, "retry_after": False}]})
    r = lusha_person(key="L3", email="a.b@acme.com")
    eq(r.status, 429, "lusha 429")
    eq(r.json["message"], "Hourly rate limit exceeded", "message")
    eq(r.h("x-hourly-requests-left"), "0", "hourly left")
    eq(r.h("retry-after"), None, "no Retry-After")
    r = lusha_person(key="L3", email="a.b@acme.com")
    eq(r.json["message"], "Daily rate limit exceeded", "daily message")
    eq(r.h("x-daily-requests-left"), "0", "daily left")
    eq(r.h("retry-after"), None, "retry_after false")


@test
def scripted_repeat_last_and_errors():
    ctl("POST", "script", {"provider": "pdl", "key": "P3", "then": "repeat_last", "steps": [
        {"kind": "error", "status": 502}, {"kind": "garbage"}, {"kind": "quota"},
        {"kind": "invalid_key", "headers": {"X-Test": "yes"}}]})
    r = pdl_person(key="P3", email="a.b@acme.com")
    eq(r.status, 502, "error status")
    r = pdl_person(key="P3", email="a.b@acme.com")
    eq(r.status, 200, "garbage status")
    try:
        json.loads(r.body)
        raise Failure("garbage body parsed as JSON")
    except ValueError:
        pass
    r = pdl_person(key="P3", email="a.b@acme.com")
    eq((r.status, r.h("x-totallimit-remaining")), (402, "0"), "quota")
    for i in range(2):
        r = pdl_person(key="P3", email="a.b@acme.com")
        eq((r.status, r.h("x-test")), (401, "yes"), "invalid_key repeated %d" % i)


@test
def slow_step():
    ctl("POST", "script", {"provider": "generic", "key": "G1", "steps": [
        {"kind": "slow", "delay_ms": 300, "then_kind": "hit"}]})
    t = time.monotonic()
    r = C.request("GET", "/generic/person?email=a.b@acme.com", {"Authorization": "Bearer G1"})
    dt = time.monotonic() - t
    eq(r.status, 200, "status")
    check(0.28 <= dt < 2.0, "slow step took %.3f s" % dt)
    eq(r.json["data"]["first_name"], "A", "generic body")
    r = C.request("GET", "/generic/person?email=miss@acme.com", {"Authorization": "Bearer G1"})
    eq((r.status, r.json), (404, {"error": "not found"}), "generic miss")


@test
def global_delay():
    ctl("POST", "config", {"delay_ms": 150})
    t = time.monotonic()
    eq(pdl_person(email="a.b@acme.com").status, 200, "status")
    dt = time.monotonic() - t
    check(0.14 <= dt < 2.0, "delay %.3f s" % dt)
    t = time.monotonic()
    ctl("GET", "health")
    check(time.monotonic() - t < 0.1, "control API is not delayed")


@test
def rate_limit_window():
    ctl("POST", "limits", {"provider": "pdl", "key": "W1", "per_minute": 3})
    for i in range(3):
        r = pdl_person(key="W1", email="a.b@acme.com")
        eq(r.status, 200, "call %d" % (i + 1))
        eq(json.loads(r.h("x-ratelimit-remaining")), {"minute": 2 - i}, "remaining")
        eq(json.loads(r.h("x-ratelimit-limit")), {"minute": 3}, "limit")
    t = time.time()
    r = pdl_person(key="W1", email="a.b@acme.com")
    eq(r.status, 429, "4th call")
    ra = int(r.h("retry-after"))
    check(55 <= ra <= 60, "Retry-After %d" % ra)
    check(t + 55 <= int(r.h("x-ratelimit-reset")) <= t + 61, "x-ratelimit-reset")
    eq(json.loads(r.h("x-ratelimit-remaining")), {"minute": 0}, "remaining at 429")
    # shared account: two keys, one window
    ctl("POST", "limits", {"provider": "lusha", "account_keys": ["A1", "A2"],
                           "per_minute": 3})
    eq(lusha_person(key="A1", email="a.b@acme.com").status, 200, "A1 #1")
    eq(lusha_person(key="A2", email="a.b@acme.com").status, 200, "A2 #1")
    r = lusha_person(key="A1", email="a.b@acme.com")
    eq((r.status, r.h("x-minute-requests-left")), (200, "0"), "A1 #2")
    r = lusha_person(key="A2", email="a.b@acme.com")
    eq(r.status, 429, "A2 #2")
    eq(r.json["message"], "Minute rate limit exceeded", "lusha message")
    check(r.h("retry-after") is not None, "lusha Retry-After")
    st = ctl("GET", "stats")
    eq(st["by_key"]["A2"]["status"].get("429"), 1, "stats 429 count")
    # a short window recovers
    ctl("POST", "limits", {"provider": "generic", "key": "W2",
                           "windows": [{"name": "minute", "limit": 2, "seconds": 0.5}]})
    g = {"Authorization": "Bearer W2"}
    for want in (200, 200, 429):
        eq(C.request("GET", "/generic/person?email=a.b@c.com", g).status, want, "short window")
    deadline = time.monotonic() + 5
    while True:
        s = C.request("GET", "/generic/person?email=a.b@c.com", g).status
        if s == 200:
            break
        check(time.monotonic() < deadline, "window did not reopen")
        time.sleep(0.05)
    lims = ctl("GET", "limits")["limiters"]
    check(any(l["keys"] == ["A1", "A2"] and l["limited"] == 1 for l in lims), "limits state")


@test
def credits():
    ctl("POST", "limits", {"provider": "pdl", "key": "CR", "credits": 2})
    r = pdl_person(key="CR", email="a.b@acme.com")
    eq((r.status, r.h("x-totallimit-remaining")), (200, "1"), "first")
    eq(pdl_person(key="CR", email="miss@acme.com").status, 404, "miss is free")
    eq(pdl_person(key="CR", email="a.b@acme.com").status, 200, "second")
    r = pdl_person(key="CR", email="a.b@acme.com")
    eq((r.status, r.h("x-totallimit-remaining")), (402, "0"), "out of credits")


@test
def surfe_cycle():
    r = surfe_start("S1", [{"externalID": "1", "firstName": "Ann", "lastName": "Lee",
                            "companyDomain": "acme.com"},
                           {"externalID": "2", "firstName": "Nobody", "lastName": "X",
                            "companyName": "Acme"}])
    check(r.status in (200, 202), "start status %d" % r.status)
    jid = r.json["enrichmentID"]
    r = surfe_poll("S1", jid)
    eq((r.status, r.json["status"], r.json["people"]), (200, "IN_PROGRESS", []), "poll 1")
    r = surfe_poll("S1", jid)
    b = r.json
    eq(b["status"], "COMPLETED", "poll 2")
    p1, p2 = b["people"]
    eq((p1["externalID"], p1["status"], p1["firstName"], p1["companyName"]),
       ("1", "COMPLETED", "Ann", "Acme Inc"), "person 1")
    check(p1["mobilePhones"][0]["mobilePhone"].startswith("+1 555 03"), "surfe phone block")
    check(p1["emails"][0]["email"] == "ann.lee@acme.com", "surfe email")
    eq((p2["externalID"], p2["status"]), ("2", "NOT_FOUND"), "person 2")
    eq(surfe_poll("S1", "no-such-id").status, 404, "unknown id")
    # polls_before_complete: global 0, then per key via script
    ctl("POST", "config", {"polls_before_complete": 0})
    jid = surfe_start("S1", [{"linkedinUrl": "https://www.linkedin.com/in/ann-lee"}]).json[
        "enrichmentID"]
    eq(surfe_poll("S1", jid).json["status"], "COMPLETED", "immediate")
    ctl("POST", "script", {"provider": "surfe", "key": "S2", "polls_before_complete": 2,
                           "steps": [{"kind": "error", "status": 503, "on": "poll"},
                                     {"kind": "hit", "omit": ["phone"]},
                                     {"kind": "miss"}]})
    jid = surfe_start("S2", [{"firstName": "Ann", "lastName": "Lee",
                              "companyDomain": "acme.com"}]).json["enrichmentID"]
    eq(surfe_poll("S2", jid).status, 503, "scripted poll error")
    eq(surfe_poll("S2", jid).json["status"], "IN_PROGRESS", "poll a")
    eq(surfe_poll("S2", jid).json["status"], "IN_PROGRESS", "poll b")
    p = surfe_poll("S2", jid).json["people"][0]
    eq((p["status"], "mobilePhones" in p), ("COMPLETED", False), "omit phone")
    jid = surfe_start("S2", [{"firstName": "Ann", "lastName": "Lee",
                              "companyDomain": "acme.com"}]).json["enrichmentID"]
    for _ in range(2):
        surfe_poll("S2", jid)
    eq(surfe_poll("S2", jid).json["people"][0]["status"], "NOT_FOUND", "scripted miss")
    calls = ctl("GET", "calls", query={"provider": "surfe", "key": "S2"})["calls"]
    eq([c["kind"] for c in calls],
       ["pending", "error", "pending", "pending", "hit", "pending", "pending", "pending",
        "miss"], "surfe call kinds")
    eq(calls[0]["body"]["people"][0]["firstName"], "Ann", "logged body")


@test
def chunked_request_body():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    body = json.dumps({"people": [{"firstName": "Ann", "lastName": "Lee",
                                   "companyDomain": "acme.com"}]}).encode()
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half,
                                                      body[half:])
    s.sendall(b"POST /surfe/v2/people/enrich HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer CH\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    data = RawReader(s).response()
    s.close()
    check(data.startswith(b"HTTP/1.1 202"), "chunked start: %r" % data[:60])
    check(b"enrichmentID" in data, "chunked body answer")


class RawReader:
    """Reads whole HTTP responses (Content-Length framed) from a raw socket,
    keeping whatever arrives beyond the current one."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise Failure("connection closed mid-response")
        self.buf += d

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        n = 0
        for ln in head.split(b"\r\n"):
            if ln.lower().startswith(b"content-length:"):
                n = int(ln.split(b":")[1])
        while len(rest) < n:
            self._fill()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[n:]
        return head + b"\r\n\r\n" + rest[:n]


@test
def pipelining_in_order():
    ctl("POST", "script", {"provider": "pdl", "key": "PL", "steps": [
        {"kind": "slow", "delay_ms": 200, "then_kind": "miss"}, {"kind": "hit"}]})
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    req = (b"GET /pdl/v5/person/enrich?email=a.b%40acme.com HTTP/1.1\r\nHost: x\r\n"
           b"X-Api-Key: PL\r\n\r\n")
    s.sendall(req * 2)
    rd = RawReader(s)
    first = rd.response()
    second = rd.response()
    s.close()
    check(first.startswith(b"HTTP/1.1 404"), "first answer: %r" % first[:40])
    check(second.startswith(b"HTTP/1.1 200"), "second answer: %r" % second[:40])


@test
def drop():
    ctl("POST", "script", {"provider": "pdl", "key": "D1", "steps": [{"kind": "drop"}]})
    c = Client()
    try:
        pdl_person(key="D1", client=c, email="a.b@acme.com")
        raise Failure("a dropped call got an answer")
    except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
        pass
    finally:
        c.close()
    eq(pdl_person(key="D1", client=c, email="a.b@acme.com").status, 200, "next call")
    c.close()
    calls = ctl("GET", "calls", query={"key": "D1"})["calls"]
    eq([(x["status"], x["kind"]) for x in calls], [(0, "drop"), (200, "hit")], "log")


@test
def records():
    ctl("POST", "records", {"provider": "pdl", "match": {"email": "a@b.com"},
                            "fields": {"title": "CTO", "first_name": "Ada"}})
    ctl("POST", "records", {"provider": "pdl", "match": {"email": "c@d.com"},
                            "found": False})
    ctl("POST", "records", {"provider": "*", "match": {"domain": "bigco.com"},
                            "fields": {"company_name": "BigCo", "technologies": "Go, Rust"}})
    r = pdl_person(email="a@b.com", titlecase="true")
    eq(r.status, 200, "record hit")
    d = r.json["data"]
    eq((d["job_title"], d["first_name"], d["last_name"]), ("CTO", "Ada", None), "fields")
    eq(pdl_person(email="c@d.com").status, 404, "record miss")
    eq(lusha_person(email="a@b.com").json["contact"]["data"]["firstName"], "A",
       "pdl record does not apply to lusha")
    r = C.request("GET", "/lusha/v2/company?domain=bigco.com", {"api_key": "k"})
    eq(r.json["data"], {"name": "BigCo", "technologies": [{"name": "Go"}, {"name": "Rust"}]},
       "company record")
    eq(ctl("GET", "expected", query={"provider": "pdl", "email": "c@d.com"})["found"], False,
       "expected honours records")
    r = C.request("POST", "/_sim/records", body={"provider": "pdl", "match": {"x": "y"}})
    eq(r.status, 400, "bad record rejected")


@test
def call_log_filtering():
    ctl("DELETE", "calls")
    pdl_person(key="F1", email="a.b@acme.com")
    lusha_person(key="F1", email="a.b@acme.com")
    pdl_person(key="F2", email="miss@acme.com")
    allc = ctl("GET", "calls")["calls"]
    eq(len(allc), 3, "all calls")
    check(allc[0]["seq"] < allc[1]["seq"] < allc[2]["seq"], "arrival order")
    check(allc[0]["t_ms"] <= allc[1]["t_ms"] <= allc[2]["t_ms"], "t_ms monotonic")
    eq(set(allc[0]), {"seq", "t_ms", "provider", "method", "path", "query", "key", "body",
                      "status", "kind", "scripted"}, "call fields")
    eq(allc[0]["query"], {"email": "a.b@acme.com"}, "parsed query")
    eq([c["provider"] for c in ctl("GET", "calls", query={"provider": "pdl"})["calls"]],
       ["pdl", "pdl"], "by provider")
    eq([c["provider"] for c in ctl("GET", "calls", query={"key": "F1"})["calls"]],
       ["pdl", "lusha"], "by key")
    eq([c["status"] for c in ctl("GET", "calls", query={"provider": "pdl", "key": "F2"})[
        "calls"]], [404], "by provider and key")
    st = ctl("GET", "stats")
    eq(st["by_key"]["F1"]["calls"], 2, "stats by key")
    ctl("DELETE", "calls")
    eq(ctl("GET", "calls")["calls"], [], "cleared")
    eq(ctl("GET", "stats")["by_key"]["F1"]["calls"], 2, "stats survive DELETE /calls")


@test
def reset():
    ctl("POST", "script", {"provider": "pdl", "key": "R1", "steps": [{"kind": "quota"}]})
    ctl("POST", "limits", {"provider": "pdl", "key": "R2", "per_minute": 0})
    ctl("POST", "records", {"provider": "pdl", "match": {"email": "a.b@acme.com"},
                            "found": False})
    ctl("POST", "config", {"delay_ms": 50})
    pdl_person(key="R3", email="x.y@acme.com")
    ctl("POST", "reset")
    eq(pdl_person(key="R1", email="a.b@acme.com").status, 200, "script forgotten")
    eq(pdl_person(key="R2", email="a.b@acme.com").status, 200, "limit forgotten")
    eq(ctl("GET", "config")["delay_ms"], 0, "config reset")
    calls = ctl("GET", "calls")["calls"]
    eq([c["key"] for c in calls], ["R1", "R2"], "calls reset")
    eq(calls[0]["seq"], 1, "seq restarts")
    eq(ctl("GET", "stats")["total"], 2, "stats reset")


@test
def control_validation():
    for body in ({"provider": "nope", "key": "k", "steps": []},
                 {"provider": "pdl", "key": "k", "steps": [{"kind": "explode"}]},
                 {"provider": "pdl", "key": "k", "steps": [{"kind": "hit", "omit": ["x"]}]}):
        eq(C.request("POST", "/_sim/script", body=body).status, 400, "script %r" % body)
    eq(C.request("POST", "/_sim/config", body={"delay": 1}).status, 400, "config key")
    eq(C.request("GET", "/_sim/nothing").status, 404, "unknown endpoint")
    eq(C.request("GET", "/pdl/v5/unknown", {"X-Api-Key": "k"}).status, 404, "unknown path")
    eq(pdl_person(first_name="Ann").status, 400, "not enough to identify")


@test
def keep_alive_reuse():
    c = Client()
    for _ in range(20):
        eq(pdl_person(client=c, email="a.b@acme.com").status, 200, "status")
    check(c.conn is not None, "connection kept open")
    sock = c.conn.sock
    pdl_person(client=c, email="a.b@acme.com")
    check(c.conn.sock is sock, "same socket reused")
    c.close()


# ---------------------------------------------------------------------------

def start_sim(tmp):
    port_file = os.path.join(tmp, "sim.port")
    log = open(os.path.join(tmp, "sim.log"), "w")
    proc = subprocess.Popen([sys.executable, SIM, "--port", "0", "--port-file", port_file],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError("simulator exited early (%s)" % proc.returncode)
        try:
            with open(port_file) as fh:
                txt = fh.read().strip()
            if txt:
                return proc, int(txt)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("simulator did not write its port file in time")
        time.sleep(0.02)


def main():
    global PORT
    only = None
    verbose = "-v" in sys.argv
    if "-k" in sys.argv:
        only = sys.argv[sys.argv.index("-k") + 1]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="providersim-test.") as tmp:
        proc, PORT = start_sim(tmp)
        try:
            for fn in TESTS:
                if only and only not in fn.__name__:
                    continue
                try:
                    C.close()
                    ctl("POST", "reset")
                    fn()
                    print("PASS", fn.__name__, flush=True)
                except Exception as e:
                    failed += 1
                    print("FAIL %s: %s" % (fn.__name__, e), flush=True)
                    if verbose or not isinstance(e, Failure):
                        traceback.print_exc()
            C.close()
            # clean shutdown on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = None
            if rc == 0:
                print("PASS sigterm_exit", flush=True)
            else:
                failed += 1
                print("FAIL sigterm_exit: exit status %r" % rc, flush=True)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if failed:
                with open(os.path.join(tmp, "sim.log")) as fh:
                    out = fh.read()
                if out.strip():
                    print("--- simulator output ---\n" + out[-4000:])
    print("%s: %d failed" % ("FAIL" if failed else "OK", failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
