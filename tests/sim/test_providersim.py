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
                      "status", "kind", "scripted", "items", "credits"}, "call fields")
    eq([(c["items"], c["credits"]) for c in allc], [(None, 1), (None, 1), (None, 0)],
       "items and credits of single calls")
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


# --- bulk calls ------------------------------------------------------------------------

def pdl_post(path, body, key="k"):
    return C.request("POST", "/pdl" + path, {"X-Api-Key": key} if key else {}, body)


def lusha_post(path, body, key="k"):
    return C.request("POST", "/lusha" + path, {"api_key": key} if key else {}, body)


def surfe_post(path, body, key="s"):
    return C.request("POST", "/surfe" + path, {"Authorization": "Bearer " + key}, body)


def generic_call(method, path, body=None, key="g"):
    return C.request(method, "/generic" + path, {"Authorization": "Bearer " + key}, body)


def last_call(method="POST", **q):
    calls = [c for c in ctl("GET", "calls", query=q)["calls"] if c["method"] == method]
    check(calls, "no %s call logged for %r" % (method, q))
    return calls[-1]


@test
def pdl_bulk_items_answer_as_single():
    ctl("DELETE", "calls")
    reqs = [{"params": {"email": "john.doe@acme.com"}, "metadata": {"id": "r1"}},
            {"params": {"email": "miss.x@acme.com"}, "metadata": {"id": "r2"}},
            {"params": {"first_name": "Ann"}},
            {"params": {"profile": ["linkedin.com/in/ann-lee"], "min_likelihood": 9}},
            {"params": {"profile": ["linkedin.com/in/ann-lee"]}, "metadata": {"row": 5}}]
    r = pdl_post("/v5/person/bulk", {"titlecase": True, "requests": reqs})
    eq(r.status, 200, "status")
    items = r.json
    check(isinstance(items, list) and len(items) == 5, "an array of 5: %r" % r.body[:200])
    eq([i["status"] for i in items], [200, 404, 400, 404, 200], "per-item statuses")
    eq(items[0]["metadata"], {"id": "r1"}, "metadata echoed")
    eq(items[4]["metadata"], {"row": 5}, "any metadata echoed")
    check("metadata" not in items[2], "no metadata when none was sent")
    eq(items[1]["error"]["type"], "not_found", "miss shape")
    eq(items[2]["error"]["type"], "invalid_request_error", "unidentifiable item")
    # each item is exactly the single endpoint's answer for the same parameters
    singles = [pdl_person(email="john.doe@acme.com", titlecase="true"),
               pdl_person(email="miss.x@acme.com", titlecase="true"),
               pdl_person(first_name="Ann", titlecase="true"),
               pdl_person(profile="linkedin.com/in/ann-lee", min_likelihood=9,
                          titlecase="true"),
               pdl_person(profile="linkedin.com/in/ann-lee", titlecase="true")]
    for i, (item, single) in enumerate(zip(items, singles)):
        item = {k: v for k, v in item.items() if k != "metadata"}
        eq((item, r.status), (single.json, 200), "item %d vs single (status %d)"
           % (i, single.status))
    eq(items[0]["data"]["first_name"], "John", "top-level titlecase applies")
    eq(r.h("x-call-credits-spent"), "2", "credits = found items")
    c = last_call(path="/pdl/v5/person/bulk")
    eq((c["items"], c["credits"], c["kind"], c["status"]), (5, 2, "hit", 200), "call log")
    st = ctl("GET", "stats")
    eq(st["by_provider"]["pdl"]["items"], 5, "stats count the bulk items (singles add 0)")


@test
def pdl_bulk_limits_and_bad_bodies():
    one = {"params": {"email": "a.b@acme.com"}}
    r = pdl_post("/v5/person/bulk", {"requests": [one] * 101})
    eq((r.status, r.json["error"]["type"]), (400, "invalid_request_error"), "101 requests")
    eq(last_call(path="/pdl/v5/person/bulk")["items"], 101, "refused call's items logged")
    eq(pdl_post("/v5/person/bulk", {"requests": []}).status, 400, "no requests")
    eq(pdl_post("/v5/person/bulk", {"params": {}}).status, 400, "no requests member")
    eq(pdl_post("/v5/person/bulk", "not json").status, 400, "not JSON")
    r = pdl_post("/v5/person/bulk", {"requests": [one] * 100})
    eq((r.status, len(r.json), r.h("x-call-credits-spent")), (200, 100, "100"), "100 requests")
    eq(C.request("GET", "/pdl/v5/person/bulk", {"X-Api-Key": "k"}).status, 405, "GET")
    eq(pdl_post("/v5/person/bulk", {"requests": [one]}, key=None).status, 401, "no key")


@test
def pdl_bulk_item_overrides_and_whole_call_script():
    reqs = [{"params": {"email": "a.b@acme.com"}, "metadata": {"id": "x"}},
            {"params": {"email": "c.d@acme.com"}, "metadata": {"id": "y"}},
            {"params": {"email": "miss.e@acme.com"}},
            {"params": {"email": "g.h@acme.com"}}]
    ctl("POST", "script", {"provider": "pdl", "key": "B1", "steps": [
        {"kind": "default", "items": {"y": "miss", "#2": "hit",
                                      "#3": {"kind": "error", "status": 503}}},
        {"kind": "rate_limited", "reset_s": 20},
        {"kind": "miss", "items": {"x": "hit"}}]})
    r = pdl_post("/v5/person/bulk", {"requests": reqs}, key="B1")
    eq(r.status, 200, "the call succeeds")
    eq([i["status"] for i in r.json], [200, 404, 200, 503], "per-item overrides")
    eq(r.h("x-call-credits-spent"), "2", "two found")
    eq(r.json[3]["error"]["type"], "error", "item error shape")
    r = pdl_post("/v5/person/bulk", {"requests": reqs}, key="B1")
    eq(r.status, 429, "a scripted 429 answers the whole call")
    check(isinstance(r.json, dict) and r.json["error"]["type"] == "rate_limit_error",
          "whole-call error body: %r" % r.body[:100])
    eq((r.h("retry-after"), r.h("x-call-credits-spent")), ("20", "0"), "429 headers")
    r = pdl_post("/v5/person/bulk", {"requests": reqs}, key="B1")
    eq([i["status"] for i in r.json], [200, 404, 404, 404], "call-level miss, item hit")
    calls = ctl("GET", "calls", query={"key": "B1"})["calls"]
    eq([(c["status"], c["items"], c["credits"], c["scripted"]) for c in calls],
       [(200, 4, 2, True), (429, 4, 0, True), (200, 4, 1, True)], "call log")
    bad = {"provider": "pdl", "key": "B2", "steps": [{"kind": "hit", "items": {"a": "boom"}}]}
    eq(C.request("POST", "/_sim/script", body=bad).status, 400, "bad item kind refused")


@test
def pdl_bulk_credits_run_out_mid_call():
    ctl("POST", "limits", {"provider": "pdl", "key": "BC", "credits": 3})
    reqs = [{"params": {"email": "p%d.q@acme.com" % i}} for i in range(5)]
    reqs.insert(1, {"params": {"email": "miss.z@acme.com"}})
    r = pdl_post("/v5/person/bulk", {"requests": reqs}, key="BC")
    eq(r.status, 200, "status")
    eq([i["status"] for i in r.json], [200, 404, 200, 200, 402, 402], "402 beyond credits")
    eq(r.json[4]["error"]["type"], "payment_required", "per-item 402 shape")
    eq((r.h("x-call-credits-spent"), r.h("x-totallimit-remaining")), ("3", "0"), "meters")
    lims = ctl("GET", "limits")["limiters"]
    eq([l["credits_left"] for l in lims if l["keys"] == ["BC"]], [0], "limiter credits")
    r = pdl_post("/v5/person/bulk", {"requests": reqs}, key="BC")
    eq(r.status, 402, "no credits left: the whole call is 402")


@test
def pdl_required_and_titlecase():
    r = pdl_post("/v5/person/bulk", {"required": "work_email AND (mobile_phone OR profiles)",
                                     "requests": [{"params": {"email": "a.b@acme.com"}}]})
    eq(r.json[0]["status"], 200, "required met")
    ctl("POST", "script", {"provider": "pdl", "key": "RQ",
                           "steps": [{"kind": "hit", "omit": ["phone"]}] * 2})
    r = pdl_post("/v5/person/bulk", {"requests": [
        {"params": {"email": "a.b@acme.com", "required": "mobile_phone"}},
        {"params": {"email": "a.b@acme.com", "required": "NOT phones"}}]}, key="RQ")
    eq([i["status"] for i in r.json], [404, 200], "required not met is a miss")
    eq(r.json[1]["data"]["first_name"], "a", "no titlecase: lower case")
    eq(pdl_person(email="a.b@acme.com", required="work_email AND").status, 400,
       "bad required on the single endpoint")
    r = pdl_post("/v5/person/bulk", {"requests": [
        {"params": {"email": "a.b@acme.com", "required": "shoe_size"}}]})
    eq((r.status, r.json[0]["status"]), (200, 400), "bad required on one item")


@test
def lusha_bulk_person_shapes():
    ctl("DELETE", "calls")
    contacts = [{"contactId": "c1", "email": "jane.roe@acme.com"},
                {"contactId": "c2", "fullName": "Ann Lee",
                 "companies": [{"name": "Old Co", "isCurrent": False},
                               {"domain": "initech.com", "isCurrent": True}]},
                {"contactId": "c3", "linkedinUrl": "https://www.linkedin.com/in/miss-x"},
                {"contactId": 4, "email": "bob.k@acme.com"}]
    r = lusha_post("/v2/person", {"contacts": contacts, "metadata": {"revealPhones": True}})
    eq(r.status, 200, "status")
    b = r.json
    eq(sorted(b["contacts"]), ["4", "c1", "c2", "c3"], "keyed by contactId")
    single = lusha_person(email="jane.roe@acme.com").json["contact"]
    c1 = b["contacts"]["c1"]
    cid = c1["data"].pop("companyId")
    eq(c1, single, "a hit is the single endpoint's contact")
    company = b["companies"][str(cid)]
    eq((company["name"], company["domain"], company["id"]), ("Acme Inc", "acme.com", cid),
       "the employer in the companies map")
    whole = C.request("GET", "/lusha/v2/company?domain=acme.com", {"api_key": "k"}).json
    eq({k: v for k, v in company.items() if k != "id"}, whole["data"],
       "company entry = company answer")
    c2 = b["contacts"]["c2"]["data"]
    eq((c2["firstName"], c2["company"]["domain"]), ("Ann", "initech.com"),
       "fullName split, current company used")
    eq(b["contacts"]["c3"], {"data": None, "error": {
        "code": "EMPTY_DATA", "message": "Could not find requested data"},
        "isCreditCharged": False}, "a miss")
    eq(sum(c["isCreditCharged"] for c in b["contacts"].values()), 3, "charged contacts")
    check(r.h("x-minute-requests-left") is not None, "meters")
    c = last_call(path="/lusha/v2/person")
    eq((c["method"], c["items"], c["credits"]), ("POST", 4, 3), "call log")


@test
def lusha_bulk_validation_and_scripts():
    one = {"contactId": "1", "email": "a.b@acme.com"}
    cases = [({"contacts": [dict(one, contactId=str(i)) for i in range(101)]}, "101"),
             ({"contacts": []}, "none"), ({}, "no contacts"),
             ({"contacts": [{"email": "a.b@acme.com"}]}, "no contactId"),
             ({"contacts": [one, one]}, "duplicate contactId"),
             ({"contacts": [{"contactId": "9", "fullName": "Ann Lee"}]}, "no company")]
    for body, what in cases:
        r = lusha_post("/v2/person", body)
        eq((r.status, r.json["statusCode"]), (400, 400), what)
        check(isinstance(r.json.get("errors"), list), what + ": errors list")
    contacts = [dict(one, contactId="k%d" % i, email="x%d.y@acme.com" % i) for i in range(4)]
    ctl("POST", "script", {"provider": "lusha", "key": "LB", "steps": [
        {"kind": "rate_limited", "window": "daily", "reset_s": None},
        {"kind": "default", "items": {"k1": {"kind": "error", "code": "GDPR_RESTRICTED"},
                                      "k2": "miss"}}]})
    r = lusha_post("/v2/person", {"contacts": contacts}, key="LB")
    eq((r.status, r.json["message"], r.h("x-daily-requests-left")),
       (429, "Daily rate limit exceeded", "0"), "whole-call 429")
    r = lusha_post("/v2/person", {"contacts": contacts}, key="LB")
    cs = r.json["contacts"]
    eq([cs["k%d" % i]["isCreditCharged"] for i in range(4)], [True, False, False, True],
       "item overrides")
    eq(cs["k1"]["error"]["code"], "GDPR_RESTRICTED", "item error code")
    eq(cs["k2"]["error"]["code"], "EMPTY_DATA", "item miss")
    ctl("POST", "limits", {"provider": "lusha", "key": "LC", "credits": 2})
    r = lusha_post("/v2/person", {"contacts": contacts}, key="LC")
    cs = r.json["contacts"]
    eq([cs["k%d" % i]["isCreditCharged"] for i in range(4)], [True, True, False, False],
       "credits run out")
    eq(cs["k3"]["error"]["code"], "INSUFFICIENT_CREDITS", "beyond credits")
    eq(lusha_post("/v2/person", {"contacts": contacts}, key="LC").status, 402, "then 402")
    ctl("POST", "script", {"provider": "lusha", "key": "LH", "steps": [
        {"kind": "hit", "fields": {"title": "CFO"}, "items": {"m1": "miss"}}]})
    misses = [dict(one, contactId="m%d" % i, email="miss%d@acme.com" % i) for i in range(3)]
    cs = lusha_post("/v2/person", {"contacts": misses}, key="LH").json["contacts"]
    eq([cs["m%d" % i]["isCreditCharged"] for i in range(3)], [True, False, True],
       "a call-level hit forces every item not named otherwise")
    eq({cs["m%d" % i]["data"]["jobTitle"]["title"] for i in (0, 2)}, {"CFO"},
       "with the step's fields")


@test
def lusha_bulk_company():
    comps = [{"id": "a", "domain": "acme.com"}, {"id": "b", "name": "Initech"},
             {"id": "c", "fqdn": "www.missing.io"}]
    r = lusha_post("/v2/company", {"companies": comps})
    eq(r.status, 200, "status")
    cs = r.json["companies"]
    whole = C.request("GET", "/lusha/v2/company?domain=acme.com", {"api_key": "k"}).json
    eq(cs["a"], {"data": whole["data"], "error": None, "isCreditCharged": True}, "hit")
    eq(cs["b"]["data"]["name"], "Initech", "by name")
    eq((cs["c"]["data"], cs["c"]["error"]["code"]), (None, "EMPTY_DATA"), "miss")
    eq(last_call(path="/lusha/v2/company")["credits"], 2, "credits")
    r = lusha_post("/v2/company", {"companies": [{"id": str(i), "domain": "a.com"}
                                                 for i in range(101)]})
    eq((r.status, r.json), (400, {"error": {"code": 400, "message":
                                            "companies must hold 1 to 100 companies"}}),
       "over 100, in this endpoint's error shape")
    r = lusha_post("/v2/company", {"companies": comps}, key=None)
    eq((r.status, r.json["error"]["code"]), (401, 401), "401 shape")
    ctl("POST", "script", {"provider": "lusha", "key": "LK",
                           "steps": [{"kind": "rate_limited", "window": "hourly"}]})
    r = lusha_post("/v2/company", {"companies": comps}, key="LK")
    eq((r.status, r.json["error"]["message"]), (429, "Hourly rate limit exceeded"), "429")
    eq(lusha_post("/v2/company", {"companies": [{"id": "z"}]}).status, 400, "no identifier")


@test
def surfe_bulk_enrichment():
    people = [{"externalID": "p1", "firstName": "Ann", "lastName": "Lee",
               "companyDomain": "acme.com"},
              {"externalID": "p2", "linkedinUrl": "https://www.linkedin.com/in/bo-li"},
              {"externalID": "p3", "firstName": "Nobody", "lastName": "X",
               "companyName": "Acme"},
              {"externalID": "p4", "firstName": "Cy", "lastName": "Dee",
               "companyDomain": "acme.com"}]
    ctl("POST", "config", {"polls_before_complete": 0})
    ctl("POST", "script", {"provider": "surfe", "key": "SB", "steps": [
        {"kind": "default", "items": {"p2": "error", "p4": "miss"}}]})
    r = surfe_start("SB", people)
    eq(r.status, 202, "start")
    c = last_call(key="SB")
    eq((c["items"], c["credits"]), (4, 1, ), "items and credits of the start")
    done = surfe_poll("SB", r.json["enrichmentID"]).json
    eq(done["status"], "COMPLETED", "job")
    eq([(p["externalID"], p["status"]) for p in done["people"]],
       [("p1", "COMPLETED"), ("p2", "FAILED"), ("p3", "NOT_FOUND"), ("p4", "NOT_FOUND")],
       "per-person statuses by externalID")
    r = C.request("POST", "/surfe/v2/people/enrich", {"Authorization": "Bearer SB"},
                  {"include": {"email": True}, "people": [{"externalID": "x"}] * 10001})
    eq((r.status, r.json["code"]), (400, "BAD_REQUEST"), "over 10,000 people")
    ctl("POST", "limits", {"provider": "surfe", "key": "SC", "credits": 3})
    eq(surfe_start("SC", people).status, 402, "fewer credits than people")
    eq(surfe_start("SC", people[:3]).status, 202, "enough credits")
    eq(ctl("GET", "limits")["limiters"][0]["credits_left"], 1, "two found, two spent")


# --- search ----------------------------------------------------------------------------

def expected(**kw):
    r = C.request("POST", "/_sim/search_expected", body=kw)
    check(r.status == 200, "search_expected: %d %r" % (r.status, r.body))
    return r.json


def pdl_domain_query(*domains, **more):
    must = [{"terms": {"job_company_website": list(domains)}}]
    for field, vals in more.items():
        must.append({"terms": {field: vals}})
    return {"query": {"bool": {"must": must}}}


@test
def pdl_person_search_pages():
    ctl("DELETE", "calls")
    allx = expected(provider="pdl", kind="people", filters={"domains": ["acme.com"]},
                    all=True)
    n = allx["total"]
    check(5 <= n <= 40 and len(allx["records"]) == n, "acme.com has %d people" % n)
    emails = [x["business_email"] for x in allx["records"]]
    eq(len(set(emails)), n, "distinct people")
    check(all(e.endswith("@acme.com") for e in emails), "all at acme.com")
    body = dict(pdl_domain_query("acme.com"), size=7, titlecase=True)
    got, pages, tok = [], 0, None
    while True:
        if tok:
            body["scroll_token"] = tok
        r = pdl_post("/v5/person/search", body)
        eq(r.status, 200, "page %d" % pages)
        b = r.json
        eq((b["status"], b["total"]), (200, n), "status and total")
        check(1 <= len(b["data"]) <= 7, "page size")
        eq(r.h("x-call-credits-spent"), str(len(b["data"])), "credits per record")
        want = expected(provider="pdl", kind="people", filters={"domains": ["acme.com"]},
                        limit=7, cursor=tok)
        eq([d["work_email"] for d in b["data"]],
           [x["business_email"] for x in want["records"]], "page = search_expected")
        eq(b.get("scroll_token"), want["next_cursor"], "token = search_expected")
        got.extend(d["work_email"] for d in b["data"])
        pages += 1
        tok = b.get("scroll_token")
        if not tok:
            break
        check(pages < 20, "paging does not end")
    eq(got, emails, "pages are disjoint, in order, and cover every match")
    eq(pages, (n + 6) // 7, "page count")
    calls = ctl("GET", "calls", query={"path": "/pdl/v5/person/search"})["calls"]
    eq(sum(c["items"] for c in calls), n, "call log counts the records")
    eq(sum(c["credits"] for c in calls), n, "credits")
    # a found person is the person the enrichment endpoint knows
    one = pdl_post("/v5/person/search", dict(pdl_domain_query("acme.com"), size=1,
                                             titlecase=True)).json["data"][0]
    single = pdl_person(email=one["work_email"], titlecase="true").json["data"]
    eq({k: one[k] for k in single}, single, "search record = enrichment record")
    # GET with the query as JSON text gives the same page
    r = C.request("GET", "/pdl/v5/person/search?" + urlencode(
        {"query": json.dumps(pdl_domain_query("acme.com")), "size": 7, "titlecase": "true"}),
        {"X-Api-Key": "k"})
    eq([d["work_email"] for d in r.json["data"]], emails[:7], "GET form")


@test
def pdl_person_search_filters_select_subsets():
    doms = ["acme.com", "initech.com", "globex.com"]
    allx = expected(provider="pdl", kind="people", filters={"domains": doms}, all=True)
    recs = allx["records"]
    seniors = {"manager", "director"}
    want = [x["business_email"] for x in recs if x["seniority"] in seniors]
    check(0 < len(want) < len(recs), "a real subset (%d of %d)" % (len(want), len(recs)))
    q = pdl_domain_query(*doms, job_title_levels=sorted(seniors))
    r = pdl_post("/v5/person/search", dict(q, size=100, titlecase=True))
    got = [d["work_email"] for d in r.json["data"]]
    eq(got, want, "seniority subset in the universe's order")
    eq(r.json["total"], len(want), "total")
    eq(pdl_post("/v5/person/search", dict(q, size=100, titlecase=True)).body, r.body,
       "deterministic")
    sql = ("SELECT * FROM person WHERE job_company_website IN ('acme.com', 'initech.com', "
           "'globex.com') AND job_title_levels IN ('manager', 'director')")
    r2 = pdl_post("/v5/person/search", {"sql": sql, "size": 100, "titlecase": True})
    eq([d["work_email"] for d in r2.json["data"]], want, "sql = query")
    # titles (contains), departments, countries, alternatives in a should group
    eng = [x for x in recs if "engineer" in x["title"].lower()]
    q = {"query": {"bool": {"must": [{"terms": {"job_company_website": doms}},
                                     {"bool": {"should": [
                                         {"match": {"job_title": "engineer"}},
                                         {"match": {"job_title": "ENGINEERING"}}]}}]}}}
    r = pdl_post("/v5/person/search", dict(q, size=100))
    eq([d["work_email"] for d in r.json["data"]], [x["business_email"] for x in eng],
       "title alternatives")
    us = [x["business_email"] for x in recs if x["country"] == "United States" and
          x["department"] == "engineering"]
    q = pdl_domain_query(*doms, location_country=["united states"],
                         job_title_role=["engineering"])
    check(us, "the three companies employ US engineers")
    got = pdl_post("/v5/person/search", dict(q, size=100))
    eq([d["work_email"] for d in got.json["data"]], us, "country and department")
    # reorder the domains: same universe, same order
    q1 = pdl_domain_query("globex.com", "acme.com")
    q2 = pdl_domain_query("acme.com", "globex.com")
    eq(pdl_post("/v5/person/search", dict(q1, size=50)).body,
       pdl_post("/v5/person/search", dict(q2, size=50)).body, "filter order does not matter")


@test
def pdl_search_without_company_filter_and_companies():
    # no company filter: the whole directory, still deterministic and paged
    q = {"query": {"bool": {"must": [{"term": {"job_title_levels": "cxo"}},
                                     {"term": {"location_country": "germany"}}]}}}
    r = pdl_post("/v5/person/search", dict(q, size=5, titlecase=True))
    eq(r.status, 200, "status")
    check(r.json["total"] > 5 and all(d["job_title_levels"] == ["cxo"] and
                                      d["location_country"] == "Germany"
                                      for d in r.json["data"]), "filters hold")
    # company search: industry + size
    allc = expected(provider="pdl", kind="companies",
                    filters={"industries": ["Retail"]}, all=True)["records"]
    check(len(allc) >= 5 and all(c["industry"] == "Retail" for c in allc), "retail set")
    q = {"query": {"bool": {"must": [{"term": {"industry": "retail"}}]}}, "size": 4,
         "titlecase": True}
    got, tok = [], None
    while True:
        if tok:
            q["scroll_token"] = tok
        r = pdl_post("/v5/company/search", q)
        eq(r.status, 200, "company page")
        got.extend(c["website"] for c in r.json["data"])
        tok = r.json.get("scroll_token")
        if not tok:
            break
        check(len(got) <= len(allc), "paging does not end")
    eq(got, [c["domain"] for c in allc], "company pages cover the set in order")
    first = r.json["data"][0]
    check({"name", "industry", "size", "inferred_revenue", "tags", "employee_count",
           "location"} <= set(first), "company record fields: %r" % sorted(first))
    small = [c["domain"] for c in allc if c["company_size"] in ("1-10", "11-50", "51-200")]
    sql = ("SELECT * FROM company WHERE industry = 'retail' AND "
           "size IN ('1-10', '11-50', '51-200')")
    check(0 < len(small) < len(allc), "small retail companies are a real subset")
    r = pdl_post("/v5/company/search", {"sql": sql, "size": 100})
    eq([c["website"] for c in r.json["data"]], small, "industry and size")
    r = pdl_post("/v5/company/search", {"query": {"terms": {"website": ["acme.com",
                                                                       "missing.io"]}},
                                        "size": 10, "titlecase": True})
    eq([c["display_name"] for c in r.json["data"]], ["Acme Inc"], "by domain; miss* absent")
    rng = {"query": {"bool": {"must": [{"term": {"industry": "retail"}},
                                       {"range": {"employee_count": {"gte": 1000}}}]}},
           "size": 100}
    r = pdl_post("/v5/company/search", rng)
    big = [c["domain"] for c in expected(provider="pdl", kind="companies", filters={
        "industries": ["Retail"], "employee_count": {"from": 1000}}, all=True)["records"]]
    check(0 < len(big) < len(allc), "a real subset by head count")
    eq([c["website"] for c in r.json["data"]], big, "range on the employee count")
    check(all(c["employee_count"] >= 1000 for c in r.json["data"]), "range holds")


@test
def pdl_search_validation():
    q = pdl_domain_query("acme.com")
    bad = [({}, "neither query nor sql"),
           (dict(q, sql="SELECT * FROM person WHERE job_title = 'x'"), "both"),
           (dict(q, size=0), "size 0"), (dict(q, size=101), "size 101"),
           (dict(q, size="many"), "size not a number"),
           (dict(q, scroll_token="garbage"), "bad token"),
           (dict(q, scroll_token="5$0123456789abcdef"), "token of another query"),
           (dict(q, scroll_token="5$0123456789abcdef", **{"from": 5}), "from + token"),
           (dict(q, dataset="resume,nonsense"), "bad dataset"),
           ({"query": {"bool": {"must_not": [{"term": {"job_title": "x"}}]}}}, "must_not"),
           ({"query": {"term": {"shoe_size": "12"}}}, "unknown field"),
           ({"query": {"bool": {"should": [{"term": {"job_title": "a"}},
                                           {"term": {"location_country": "b"}}]}}},
            "should over two fields"),
           ({"query": {"term": {"job_company_size": "huge"}}}, "bad size bucket"),
           ({"sql": "SELECT * FROM company WHERE name = 'x'"}, "sql on the wrong table"),
           ({"sql": "SELECT * FROM person WHERE job_title = 'x' OR job_title = 'y'"}, "OR"),
           ({"query": "{not json"}, "query not JSON")]
    for body, what in bad:
        r = pdl_post("/v5/person/search", body)
        eq((r.status, r.json["error"]["type"]), (400, "invalid_request_error"), what)
    r = pdl_post("/v5/person/search", pdl_domain_query("missing.io"))
    eq((r.status, r.json["error"]["type"], r.h("x-call-credits-spent")),
       (404, "not_found", "0"), "no match is 404, not charged")
    r = pdl_post("/v5/person/search", dict(pdl_domain_query("acme.com"), size=3))
    tok = r.json["scroll_token"]
    r = pdl_post("/v5/person/search", dict(pdl_domain_query("initech.com"), size=3,
                                           scroll_token=tok))
    eq(r.status, 400, "a token is bound to its query")
    r = pdl_post("/v5/person/search", dict(pdl_domain_query("acme.com"), size=3,
                                           **{"from": 3}))
    eq([d["work_email"] for d in r.json["data"]],
       [x["business_email"] for x in expected(provider="pdl", kind="people",
                                              filters={"domains": "acme.com"},
                                              all=True)["records"][3:6]], "legacy from")
    eq(pdl_post("/v5/person/search", dict(pdl_domain_query("acme.com")))
       .json["data"].__len__(), 1, "size defaults to 1")


@test
def search_credits_scripts_and_rate_limits():
    ctl("POST", "limits", {"provider": "pdl", "key": "SP", "credits": 4})
    q = dict(pdl_domain_query("acme.com"), size=10)
    r = pdl_post("/v5/person/search", q, key="SP")
    eq((r.status, len(r.json["data"]), r.h("x-call-credits-spent"),
        r.h("x-totallimit-remaining")), (200, 4, "4", "0"), "page cut to the credits left")
    check(r.json.get("scroll_token"), "and the cursor goes on from there")
    eq(pdl_post("/v5/person/search", q, key="SP").status, 402, "then 402")
    ctl("POST", "script", {"provider": "pdl", "key": "SQ", "steps": [
        {"kind": "rate_limited", "reset_s": 15}, {"kind": "miss"}, {"kind": "invalid_key"}]})
    r = pdl_post("/v5/person/search", q, key="SQ")
    eq((r.status, r.h("retry-after")), (429, "15"), "scripted 429")
    eq(pdl_post("/v5/person/search", q, key="SQ").status, 404, "scripted miss")
    eq(pdl_post("/v5/person/search", q, key="SQ").status, 401, "scripted 401")
    ctl("POST", "limits", {"provider": "surfe", "key": "SW", "per_minute": 1})
    body = {"companies": {"domains": ["acme.com"]}, "limit": 5}
    eq(surfe_post("/v2/people/search", body, key="SW").status, 200, "first")
    r = surfe_post("/v2/people/search", body, key="SW")
    eq((r.status, r.json["code"]), (429, "TOO_MANY_REQUESTS"), "window full")
    check(r.h("retry-after") is not None, "Retry-After")


@test
def surfe_people_search():
    ctl("DELETE", "calls")
    base = {"companies": {"domains": ["acme.com", "hooli.com"]},
            "people": {"seniorities": ["Manager", "senior", "C-Level"]}}
    allx = expected(provider="surfe", kind="people", request=dict(base), all=True)
    n = allx["total"]
    check(n > 3 and all(x["seniority"] in ("manager", "senior", "cxo")
                        for x in allx["records"]), "subset by seniority (%d)" % n)
    got, tok, pages = [], None, 0
    while True:
        body = dict(base, limit=3) if tok is None else {
            "pageToken": tok, "limit": 3, "people": {"seniorities": ["entry"]}}
        r = surfe_post("/v2/people/search", body)
        eq(r.status, 200, "page")
        b = r.json
        eq(b["total"], n, "total")
        got.extend((p["firstName"], p["lastName"], p["companyDomain"]) for p in b["people"])
        pages += 1
        tok = b.get("nextPageToken")
        if not tok:
            break
        check(pages < 30, "paging does not end")
    eq(got, [(x["first_name"], x["last_name"], x["domain"]) for x in allx["records"]],
       "disjoint pages, filters of the first page reused")
    calls = ctl("GET", "calls", query={"path": "/surfe/v2/people/search"})["calls"]
    eq([c["credits"] for c in calls], [1] * pages, "a page of 1..10 costs 1 credit")
    p = b["people"][0]
    check({"firstName", "lastName", "jobTitle", "seniorities", "departments", "companyName",
           "companyDomain", "country", "linkedInUrl"} <= set(p), "person fields %r" % p)
    r = surfe_post("/v2/people/search", dict(base, limit=25))
    eq([c["credits"] for c in ctl("GET", "calls", query={
        "path": "/surfe/v2/people/search"})["calls"]][-1], (min(25, n) + 9) // 10,
       "credits = ceil(results / 10)")
    # peoplePerCompany: only with a domain/name-only search
    r = surfe_post("/v2/people/search", {"companies": {"domains": ["acme.com", "hooli.com"]},
                                         "peoplePerCompany": 2, "limit": 50})
    eq([p["companyDomain"] for p in r.json["people"]],
       ["acme.com", "acme.com", "hooli.com", "hooli.com"], "two per company")
    r2 = surfe_post("/v2/people/search", dict(base, peoplePerCompany=1, limit=200))
    eq(len(r2.json["people"]), n, "ignored beyond domain/name filters")
    # countries: lower-case ISO codes, or names
    us = expected(provider="surfe", kind="people",
                  request={"companies": {"domains": ["acme.com"]},
                           "people": {"countries": ["us"]}}, all=True)["records"]
    check(all(x["country"] == "United States" for x in us), "us = United States")
    eq(us, expected(provider="surfe", kind="people",
                    request={"companies": {"domains": ["acme.com"]},
                             "people": {"countries": ["United States"]}}, all=True)["records"],
       "name = code")
    r = surfe_post("/v2/people/search", {"companies": {"domains": ["missing.io"]}})
    eq((r.status, r.json["people"], "nextPageToken" in r.json), (200, [], False), "no match")
    r = surfe_post("/v2/people/search", dict(base, limit=50,
                                             organizationIDMappings={"acme.com": "ORG-1"}))
    eq({(p["companyDomain"], p.get("externalID")) for p in r.json["people"]},
       {("acme.com", "ORG-1"), ("hooli.com", None)}, "organizationIDMappings")
    for body, what in [({}, "no filter"), ({"limit": 201, **base}, "limit 201"),
                       ({"limit": 0, **base}, "limit 0"),
                       ({"companies": {"keywords": ["ai"]}}, "unsupported filter"),
                       ({"people": {"jobTitles": "CTO"}}, "not a list"),
                       ({"pageToken": "nonsense"}, "bad token"),
                       (dict(base, peoplePerCompany=0), "peoplePerCompany 0"),
                       ({"companies": {"employeeCount": {"from": "x"}}}, "bad range")]:
        r = surfe_post("/v2/people/search", body)
        eq((r.status, r.json.get("code")), (400, "BAD_REQUEST"), what)


@test
def surfe_company_search():
    body = {"filters": {"industries": ["Computer Software"],
                        "employeeCount": {"from": 51, "to": 5000}}, "limit": 4}
    allx = expected(provider="surfe", kind="companies", request=dict(body), all=True)
    check(allx["total"] > 0, "some companies")
    check(all(x["industry"] == "Computer Software" and
              x["company_size"] in ("51-200", "201-500", "501-1000", "1001-5000")
              for x in allx["records"]), "industry and head count")
    got, tok = [], None
    while True:
        r = surfe_post("/v2/companies/search", body if tok is None
                       else {"pageToken": tok, "limit": 4})
        eq(r.status, 200, "page")
        got.extend(c["domain"] for c in r.json["companies"])
        check(all(51 <= c["employeeCount"] <= 5000 for c in r.json["companies"]),
              "employee counts in range")
        tok = r.json.get("nextPageToken")
        if not tok:
            break
        check(len(got) <= allx["total"], "paging does not end")
    eq(got, [x["domain"] for x in allx["records"]], "pages cover the set")
    c = r.json["companies"][0]
    check({"name", "domain", "industry", "employeeCount", "revenue", "hqCountry"} <= set(c),
          "company fields %r" % c)
    r = surfe_post("/v2/companies/search", {"pageToken": tok or "x", "limit": 4})
    eq(r.status, 400, "a people token or garbage is refused")
    ppl_tok = surfe_post("/v2/people/search", {"companies": {"domains": ["acme.com"]},
                                               "limit": 1}).json["nextPageToken"]
    eq(surfe_post("/v2/companies/search", {"pageToken": ppl_tok}).status, 400,
       "a people token does not page companies")
    eq(surfe_post("/v2/companies/search", {"filters": {}}).status, 400, "no filter")


@test
def generic_search():
    body = {"filters": {"domains": ["initech.com"], "departments": ["engineering"]},
            "limit": 2}
    allx = expected(provider="generic", kind="people", request=dict(body), all=True)
    got, cur = [], None
    while True:
        r = generic_call("POST", "/people/search", dict(body, cursor=cur))
        eq(r.status, 200, "page")
        got.extend(x["email"] for x in r.json["results"])
        cur = r.json["paging"]["next"]
        if cur is None:
            break
        check(len(got) <= allx["total"], "paging does not end")
    eq(got, [x["business_email"] for x in allx["records"]], "POST pages")
    r = generic_call("GET", "/people/search?" + urlencode(
        {"domain": "initech.com", "department": "engineering", "limit": 100}))
    eq([x["email"] for x in r.json["results"]], got, "GET = POST")
    x = r.json["results"][0]
    check(x["job"]["department"] == "engineering" and x["company"]["domain"] == "initech.com",
          "result shape %r" % x)
    r = generic_call("GET", "/companies/search?industry=retail,financial%20services&"
                     "country=us&limit=100")
    check(r.status == 200 and all(c["industry"] in ("Retail", "Financial Services") and
                                  c["location"]["country"] == "United States"
                                  for c in r.json["results"]), "companies")
    for method, path, b in [("POST", "/people/search", {"filters": {}}),
                            ("POST", "/people/search", {"filters": {"titles": ["x"]},
                                                        "limit": 101}),
                            ("GET", "/people/search?shoe=1", None),
                            ("GET", "/companies/search?title=cto", None)]:
        r = generic_call(method, path, b)
        eq((r.status, "error" in r.json), (400, True), "%s %s" % (method, path))


@test
def search_expected_control():
    r = C.request("POST", "/_sim/search_expected", body={"provider": "lusha", "filters": {}})
    eq(r.status, 400, "lusha has no search here")
    r = C.request("POST", "/_sim/search_expected",
                  body={"provider": "pdl", "filters": {"shoe": ["x"]}})
    eq(r.status, 400, "unknown filter key")
    got = expected(provider="pdl", kind="people", request={"size": 500,
                                                             **pdl_domain_query("acme.com")})
    eq((got["status"], got["records"]), (400, []), "the provider would refuse it")
    r = C.request("GET", "/_sim/search_expected?" + urlencode(
        {"provider": "surfe", "kind": "companies",
         "filters": json.dumps({"countries": ["de"]}), "limit": 3}))
    eq(r.status, 200, "GET form")
    check(len(r.json["records"]) == 3 and r.json["next_cursor"], "a page with a cursor")
    # records make the universe: a person marked not found disappears
    first = expected(provider="pdl", kind="people", filters={"domains": "acme.com"},
                     all=True)["records"]
    ctl("POST", "records", {"provider": "pdl", "match": {"email": first[0]["business_email"]},
                            "found": False})
    after = expected(provider="pdl", kind="people", filters={"domains": "acme.com"},
                     all=True)["records"]
    eq(after, first[1:], "records apply to search")


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
