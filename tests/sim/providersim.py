#!/usr/bin/python3
"""providersim: a stand-in for the upstream enrichment providers.

One process serves every provider kind that enrichd speaks (see docs/providers.md),
each under its own path prefix:

    /pdl/v5/person/enrich        /pdl/v5/company/enrich          (X-Api-Key)
    /lusha/v2/person             /lusha/v2/company               (api_key)
    /surfe/v2/people/enrich      /surfe/v2/people/enrich/<id>    (Authorization: Bearer)
    /generic/person                                              (Authorization: Bearer)

plus a JSON control API under /_sim/ (scripts, rate limits, explicit records, call log,
statistics). See tests/sim/README.md for the full description.

Answers come from a deterministic "database" derived from the lookup itself, so a
test can predict them; GET /_sim/expected tells what the database holds for an input.

Standard library only. The HTTP/1.1 server is a small asyncio Protocol: keep-alive,
pipelining (answers in order), Content-Length and chunked request bodies. Delays are
timers on the event loop, so thousands of connections can wait at once.
"""

import argparse
import asyncio
import collections
import functools
import gc
import hashlib
import json
import math
import os
import re
import signal
import sys
import time
import traceback
from sys import intern
from typing import NamedTuple
from urllib.parse import parse_qsl

PROVIDERS = ("pdl", "lusha", "surfe", "generic")

# enrichd's field names (lib/fields.h); scripts and records use these.
FIELDS = (
    "first_name", "last_name", "company_name", "title", "industry", "company_size",
    "location", "linkedin_url", "phone", "personal_email", "business_email", "city",
    "state", "country", "zip_code", "company_revenue", "technologies", "seniority",
    "department",
)
FIELD_SET = frozenset(FIELDS)

STEP_KINDS = frozenset((
    "hit", "miss", "invalid_key", "quota", "forbidden", "bad_request", "rate_limited",
    "error", "garbage", "drop", "slow",
))

MISS_PREFIXES = ("miss", "nobody")

# The third group of a generated phone number names the provider that gave it.
PHONE_BLOCK = {"pdl": "01", "lusha": "02", "surfe": "03", "generic": "04"}

# ---------------------------------------------------------------------------
# The fixed tables the database draws from (by a stable hash of the input).
# ---------------------------------------------------------------------------

TITLES = (
    # title, seniority, department
    ("Chief Technology Officer", "cxo", "engineering"),
    ("VP of Sales", "vp", "sales"),
    ("Director of Marketing", "director", "marketing"),
    ("Engineering Manager", "manager", "engineering"),
    ("Senior Software Engineer", "senior", "engineering"),
    ("Account Executive", "senior", "sales"),
    ("Product Manager", "manager", "product"),
    ("Financial Analyst", "entry", "finance"),
    ("Head of Operations", "director", "operations"),
    ("Customer Success Manager", "manager", "customer_success"),
    ("Data Scientist", "senior", "engineering"),
    ("Technical Recruiter", "entry", "human_resources"),
)

LOCATIONS = (
    # city, state, country, zip
    ("San Francisco", "California", "United States", "94105"),
    ("New York", "New York", "United States", "10001"),
    ("Austin", "Texas", "United States", "73301"),
    ("Seattle", "Washington", "United States", "98101"),
    ("Boston", "Massachusetts", "United States", "02108"),
    ("Chicago", "Illinois", "United States", "60601"),
    ("London", "England", "United Kingdom", "EC1A 1BB"),
    ("Berlin", "Berlin", "Germany", "10115"),
    ("Toronto", "Ontario", "Canada", "M5H 2N2"),
    ("Paris", "Ile-de-France", "France", "75001"),
)

INDUSTRIES = (
    "Computer Software", "Information Technology and Services", "Financial Services",
    "Marketing and Advertising", "Hospital & Health Care", "Retail",
    "Telecommunications", "Logistics and Supply Chain",
)

SIZES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000",
         "10001+")

REVENUES = ("$1M-$10M", "$10M-$25M", "$25M-$50M", "$50M-$100M", "$100M-$250M",
            "$250M-$500M", "$500M-$1B", "$1B-$10B")

TECHNOLOGIES = ("Salesforce", "HubSpot", "Google Analytics", "AWS", "Slack", "Zendesk",
                "Stripe", "Segment", "Snowflake", "Intercom", "Shopify", "Marketo")

FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie")
LAST_NAMES = ("Smith", "Johnson", "Lee", "Garcia", "Miller", "Davis", "Lopez", "Wilson")

# Employers for lookups that do not name one (LinkedIn URL only, personal email, phone).
EMPLOYER_DOMAINS = ("globex.com", "initech.com", "umbrella.com", "hooli.com",
                    "vandelay.com", "soylent.com")

FREE_MAIL = frozenset((
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com",
    "live.com", "icloud.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
))

COMPANY_SUFFIXES = (" incorporated", " inc.", " inc", " llc", " ltd.", " ltd",
                    " corporation", " corp.", " corp", " gmbh", " co.")


def stable_hash(*parts):
    """A hash that is the same in every run (unlike hash())."""
    h = hashlib.md5("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def pick(table, seed, salt):
    return table[stable_hash(salt, seed) % len(table)]


class Ident(NamedTuple):
    """What a lookup identifies, normalised (empty string = not given)."""
    email: str = ""
    linkedin: str = ""      # the profile slug, lower case
    first: str = ""         # lower case
    last: str = ""          # lower case
    company: str = ""       # as given (trimmed)
    domain: str = ""        # lower case, no scheme, no www.
    phone: str = ""         # as given (trimmed)


def li_slug(url):
    """The profile slug of a LinkedIn URL ("john-doe" for .../in/john-doe/)."""
    u = url.strip().lower().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if not u:
        return ""
    i = u.find("/in/")
    if i >= 0:
        return u[i + 4:].split("/", 1)[0]
    return u.rsplit("/", 1)[-1]


def norm_domain(d):
    d = d.strip().lower()
    if not d:
        return ""
    for pfx in ("https://", "http://"):
        if d.startswith(pfx):
            d = d[len(pfx):]
    d = d.split("/", 1)[0]
    if d.startswith("www."):
        d = d[4:]
    return d


def digits(s):
    return "".join(c for c in s if c.isdigit())


def make_ident(email="", linkedin="", first="", last="", company="", domain="", phone=""):
    return Ident(email.strip().lower(), li_slug(linkedin), first.strip().lower(),
                 last.strip().lower(), company.strip(), norm_domain(domain), phone.strip())


def company_slug_domain(name):
    n = name.strip().lower()
    for suf in COMPANY_SUFFIXES:
        if n.endswith(suf):
            n = n[: -len(suf)]
            break
    s = "".join(c for c in n if c.isalnum())
    return (s or "company") + ".com"


def label_of(domain):
    return domain.split(".", 1)[0]


def cap_words(s):
    return " ".join(w[:1].upper() + w[1:] for w in s.split())


def name_tokens(s, sep):
    toks = []
    for t in re.split(sep, s):
        t = "".join(c for c in t if c.isalpha())
        if t:
            toks.append(t)
    return toks


@functools.lru_cache(maxsize=8192)
def company_attrs(domain):
    seed = domain
    # three distinct technologies: 5 and len(TECHNOLOGIES) are coprime
    start = stable_hash("tech", seed) % len(TECHNOLOGIES)
    techs = [TECHNOLOGIES[(start + 5 * i) % len(TECHNOLOGIES)] for i in range(3)]
    return {
        "industry": pick(INDUSTRIES, seed, "industry"),
        "company_size": pick(SIZES, seed, "size"),
        "company_revenue": pick(REVENUES, seed, "revenue"),
        "technologies": ", ".join(techs),
    }


@functools.lru_cache(maxsize=20000)
def derive_company(domain, name):
    """(found, fields) for a company lookup by domain (preferred) or name."""
    if domain:
        if label_of(domain).startswith("miss"):
            return False, None
        cname = cap_words(label_of(domain)) + " Inc"
    elif name:
        if name.lower().startswith("miss"):
            return False, None
        domain = company_slug_domain(name)
        cname = name
    else:
        return False, None
    f = {"company_name": cname}
    f.update(company_attrs(domain))
    f["_domain"] = domain
    return True, f


def ident_has_person_key(ident):
    return bool(ident.email or ident.linkedin or ident.phone
                or ((ident.first or ident.last) and (ident.company or ident.domain)))


@functools.lru_cache(maxsize=20000)
def derive_person(ident, prov):
    """(found, fields) for a person lookup. fields uses enrichd names plus _domain."""
    given_phone = ""
    if ident.email:
        local, _, dom = ident.email.partition("@")
        local = local.split("+", 1)[0]
        if local.startswith(MISS_PREFIXES):
            return False, None
        toks = name_tokens(local, r"[._\-]+")
        first = toks[0].capitalize() if toks else pick(FIRST_NAMES, local, "first")
        last = toks[-1].capitalize() if len(toks) > 1 else pick(LAST_NAMES, local, "last")
        seed = (first + "|" + last).lower()
        if dom in FREE_MAIL or not dom:
            cdomain = pick(EMPLOYER_DOMAINS, seed, "employer")
            personal = ident.email
            business = (first + "." + last + "@" + cdomain).lower()
        else:
            cdomain = dom
            business = ident.email
            personal = (first + "." + last + "@gmail.com").lower()
        cname = cap_words(label_of(cdomain)) + " Inc"
        linkedin = "https://www.linkedin.com/in/" + (first + "-" + last).lower()
    elif ident.linkedin:
        slug = ident.linkedin
        if slug.startswith(MISS_PREFIXES):
            return False, None
        toks = [t for t in slug.split("-") if t.isalpha()]
        first = toks[0].capitalize() if toks else pick(FIRST_NAMES, slug, "first")
        last = toks[-1].capitalize() if len(toks) > 1 else pick(LAST_NAMES, slug, "last")
        seed = (first + "|" + last).lower()
        cdomain, cname = _employer(ident, seed)
        linkedin = "https://www.linkedin.com/in/" + slug
        business = (first + "." + last + "@" + cdomain).lower()
        personal = (first + "." + last + "@gmail.com").lower()
    elif (ident.first or ident.last) and (ident.company or ident.domain):
        if (ident.first or ident.last).startswith(MISS_PREFIXES):
            return False, None
        first = cap_words(ident.first) if ident.first else pick(FIRST_NAMES, ident.last, "first")
        last = cap_words(ident.last) if ident.last else pick(LAST_NAMES, ident.first, "last")
        seed = (first + "|" + last).lower()
        cdomain, cname = _employer(ident, seed)
        lf = "".join(c for c in first.lower() if c.isalpha())
        ll = "".join(c for c in last.lower() if c.isalpha())
        linkedin = "https://www.linkedin.com/in/" + lf + "-" + ll
        business = lf + "." + ll + "@" + cdomain
        personal = lf + "." + ll + "@gmail.com"
    elif ident.phone:
        seed = digits(ident.phone) or ident.phone
        first = pick(FIRST_NAMES, seed, "first")
        last = pick(LAST_NAMES, seed, "last")
        cdomain, cname = _employer(ident, seed)
        linkedin = "https://www.linkedin.com/in/" + (first + "-" + last).lower()
        business = (first + "." + last + "@" + cdomain).lower()
        personal = (first + "." + last + "@gmail.com").lower()
        given_phone = ident.phone
    else:
        return False, None

    title, seniority, department = pick(TITLES, seed, "title")
    city, state, country, zipc = pick(LOCATIONS, seed, "location")
    phone = given_phone or "+1 555 %s%02d" % (PHONE_BLOCK.get(prov, "09"),
                                               stable_hash("phone", seed) % 100)
    f = {
        "first_name": first,
        "last_name": last,
        "title": title,
        "seniority": seniority,
        "department": department,
        "company_name": cname,
    }
    f.update(company_attrs(cdomain))
    f.update({
        "linkedin_url": linkedin,
        "location": city + ", " + state + ", " + country,
        "city": city,
        "state": state,
        "country": country,
        "zip_code": zipc,
        "phone": phone,
        "business_email": business,
        "personal_email": personal,
        "_domain": cdomain,
    })
    return True, f


def _employer(ident, seed):
    if ident.domain:
        d = ident.domain
        return d, (ident.company or cap_words(label_of(d)) + " Inc")
    if ident.company:
        return company_slug_domain(ident.company), ident.company
    d = pick(EMPLOYER_DOMAINS, seed, "employer")
    return d, cap_words(label_of(d)) + " Inc"


# ---------------------------------------------------------------------------
# Rendering a record (enrichd field names) in each provider's shape.
# ---------------------------------------------------------------------------

def _tech_list(f):
    t = f.get("technologies")
    if t is None:
        return None
    if isinstance(t, list):
        return [str(x) for x in t]
    return [x.strip() for x in str(t).split(",") if x.strip()]


def render_pdl_person(f, likelihood, titlecase):
    def lc(k):
        v = f.get(k)
        if v is None or titlecase or not isinstance(v, str):
            return v
        return v.lower()
    g = f.get
    full = None
    if g("first_name") or g("last_name"):
        full = " ".join(x for x in (lc("first_name"), lc("last_name")) if x)
    data = {
        "full_name": full,
        "first_name": lc("first_name"),
        "last_name": lc("last_name"),
        "job_title": lc("title"),
        "job_title_role": g("department"),
        "job_title_levels": [g("seniority")] if g("seniority") else [],
        "linkedin_url": g("linkedin_url"),
        "location_name": lc("location"),
        "location_locality": lc("city"),
        "location_region": lc("state"),
        "location_country": lc("country"),
        "location_postal_code": g("zip_code"),
        "mobile_phone": g("phone"),
        "phone_numbers": [g("phone")] if g("phone") else [],
        "work_email": g("business_email"),
        "personal_emails": [g("personal_email")] if g("personal_email") else [],
        "job_company_name": lc("company_name"),
        "job_company_industry": lc("industry"),
        "job_company_size": g("company_size"),
        "job_company_website": g("_domain"),
    }
    return {"status": 200, "likelihood": likelihood, "data": data}


def render_pdl_company(f, likelihood, titlecase):
    name = f.get("company_name")
    ind = f.get("industry")
    return {
        "status": 200,
        "likelihood": likelihood,
        "name": name if (titlecase or name is None) else name.lower(),
        "display_name": name,
        "website": f.get("_domain"),
        "industry": ind if (titlecase or ind is None) else ind.lower(),
        "size": f.get("company_size"),
        "inferred_revenue": f.get("company_revenue"),
        "tags": _tech_list(f) or [],
    }


def _put(d, k, v):
    if v is not None:
        d[k] = v


def render_lusha_person(f):
    g = f.get
    data = {}
    _put(data, "firstName", g("first_name"))
    _put(data, "lastName", g("last_name"))
    if g("first_name") or g("last_name"):
        data["fullName"] = " ".join(x for x in (g("first_name"), g("last_name")) if x)
    jt = {}
    _put(jt, "title", g("title"))
    _put(jt, "seniority", g("seniority"))
    if g("department"):
        jt["departments"] = [g("department")]
    if jt:
        data["jobTitle"] = jt
    if g("linkedin_url"):
        data["socialLinks"] = {"linkedin": g("linkedin_url")}
    loc = {}
    _put(loc, "city", g("city"))
    _put(loc, "state", g("state"))
    _put(loc, "country", g("country"))
    _put(loc, "postalCode", g("zip_code"))
    _put(loc, "rawLocation", g("location"))
    if loc:
        data["location"] = loc
    if g("phone"):
        data["phoneNumbers"] = [{"number": g("phone"), "phoneType": "mobile",
                                 "doNotCall": False}]
    emails = []
    if g("business_email"):
        emails.append({"email": g("business_email"), "emailType": "work",
                       "emailConfidence": "A+"})
    if g("personal_email"):
        emails.append({"email": g("personal_email"), "emailType": "personal",
                       "emailConfidence": "A"})
    if emails:
        data["emailAddresses"] = emails
    comp = {}
    _put(comp, "name", g("company_name"))
    _put(comp, "domain", g("_domain"))
    _put(comp, "mainIndustry", g("industry"))
    _put(comp, "employees", g("company_size"))
    if comp:
        data["company"] = comp
    return {"contact": {"data": data, "error": None, "isCreditCharged": True}}


def render_lusha_company(f):
    g = f.get
    data = {}
    _put(data, "name", g("company_name"))
    _put(data, "domain", g("_domain"))
    _put(data, "mainIndustry", g("industry"))
    _put(data, "employees", g("company_size"))
    _put(data, "revenueRange", g("company_revenue"))
    techs = _tech_list(f)
    if techs is not None:
        data["technologies"] = [{"name": t} for t in techs]
    return {"data": data}


def render_surfe_person(f, external_id):
    g = f.get
    p = {"externalID": external_id, "status": "COMPLETED"}
    _put(p, "firstName", g("first_name"))
    _put(p, "lastName", g("last_name"))
    _put(p, "jobTitle", g("title"))
    if g("seniority"):
        p["seniorities"] = [g("seniority")]
    if g("department"):
        p["departments"] = [g("department")]
    _put(p, "linkedInUrl", g("linkedin_url"))
    _put(p, "location", g("location"))
    _put(p, "country", g("country"))
    if g("phone"):
        p["mobilePhones"] = [{"mobilePhone": g("phone"), "confidenceScore": 0.9}]
    if g("business_email"):
        p["emails"] = [{"email": g("business_email"), "validationStatus": "VALID"}]
    _put(p, "companyName", g("company_name"))
    _put(p, "companyDomain", g("_domain"))
    return p


def render_generic_person(f):
    g = f.get
    data = {}
    _put(data, "first_name", g("first_name"))
    _put(data, "last_name", g("last_name"))
    if g("title") is not None:
        data["job"] = {"title": g("title")}
    _put(data, "phone", g("phone"))
    return {"data": data}


# ---------------------------------------------------------------------------
# Error bodies in each provider's shape.
# ---------------------------------------------------------------------------

PDL_ERR_TYPE = {400: "invalid_request_error", 401: "invalid_auth", 402: "payment_required",
                403: "invalid_auth", 404: "not_found", 405: "invalid_request_error",
                429: "rate_limit_error"}
SURFE_ERR_CODE = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "PAYMENT_REQUIRED",
                  403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                  429: "TOO_MANY_REQUESTS"}
DEFAULT_MSG = {
    400: "Invalid request parameters",
    401: "Invalid API key",
    402: "Insufficient credits",
    403: "This request is not allowed on your plan",
    404: "Not found",
    405: "Method not allowed",
    429: "Rate limit exceeded",
}

LUSHA_WINDOW_MSG = {"minute": "Minute rate limit exceeded",
                    "hourly": "Hourly rate limit exceeded",
                    "daily": "Daily rate limit exceeded",
                    "second": "Rate limit exceeded"}


def error_obj(prov, status, message=None, errors=None):
    msg = message or DEFAULT_MSG.get(status) or ("Server error" if status >= 500
                                                 else "Error")
    if prov == "pdl":
        et = PDL_ERR_TYPE.get(status, "error" if status >= 500 else "invalid_request_error")
        return {"status": status, "error": {"type": et, "message": msg}}
    if prov == "lusha":
        if status == 401 and not message:
            msg = "Unauthorized"
        o = {"statusCode": status, "message": msg}
        if status in (400, 403):
            o["errors"] = errors or [msg]
        return o
    if prov == "surfe":
        code = SURFE_ERR_CODE.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
        return {"code": code, "message": msg}
    if status == 404 and not message:
        msg = "not found"
    return {"error": msg}


def dumps(o):
    return json.dumps(o, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------
# HTTP plumbing.
# ---------------------------------------------------------------------------

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}
STATUS_LINES = {}


def status_line(code):
    s = STATUS_LINES.get(code)
    if s is None:
        s = "HTTP/1.1 %d %s\r\n" % (code, REASONS.get(code, "Status"))
        STATUS_LINES[code] = s
    return s


MAX_HEAD = 64 * 1024
# Rendered default answers by (provider, endpoint, query): repeated lookups skip the
# derivation and the JSON encoding. Emptied whenever config or records change.
ANSWER_CACHE_MAX = 20_000
MAX_BODY = 8 * 1024 * 1024


class Request:
    __slots__ = ("method", "target", "path", "query", "version", "headers", "body",
                 "keep_alive")


class Reply:
    __slots__ = ("status", "body", "headers", "ctype", "delay", "drop")

    def __init__(self, status, body=b"", headers=None, ctype="application/json",
                 delay=0.0, drop=False):
        self.status = status
        self.body = body
        self.headers = headers      # list of (name, value) or None
        self.ctype = ctype
        self.delay = delay
        self.drop = drop


class BadRequest(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests are answered strictly in order: while an
    answer is pending (delayed), later pipelined requests wait in the buffer."""

    __slots__ = ("sim", "loop", "transport", "buf", "busy", "closed", "head",
                 "sent_continue", "eof")

    def __init__(self, sim):
        self.sim = sim
        self.loop = sim.loop
        self.transport = None
        self.buf = bytearray()
        self.busy = False
        self.closed = False
        self.head = None
        self.sent_continue = False
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport
        self.sim.conn_opened()

    def connection_lost(self, exc):
        if not self.closed:
            self.closed = True
            self.sim.conn_closed()

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._pump()

    def eof_received(self):
        # The client closed its side: answer what is already here, then close.
        self.eof = True
        if not self.busy:
            self._pump()
        return True

    def _close(self):
        if not self.closed:
            self.closed = True
            self.sim.conn_closed()
            self.transport.close()

    def _pump(self):
        while not self.busy and not self.closed:
            try:
                req = self._parse()
            except BadRequest as e:
                body = dumps({"error": str(e)})
                self.transport.write(
                    (status_line(e.status) + "Content-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                     ).encode("latin-1") + body)
                self._close()
                return
            if req is None:
                if self.eof:
                    self._close()
                return
            try:
                reply = self.sim.handle(req)
            except Exception:
                traceback.print_exc()
                reply = Reply(500, dumps({"error": "simulator failure"}))
            if reply.delay > 0:
                self.busy = True
                self.loop.call_later(reply.delay, self._deliver, reply, req.keep_alive)
                return
            self._send(reply, req.keep_alive)

    def _deliver(self, reply, keep_alive):
        self.busy = False
        if self.closed:
            return
        self._send(reply, keep_alive)
        if not self.closed:
            self._pump()

    def _send(self, reply, keep_alive):
        if reply.drop:
            self._close()
            return
        body = reply.body
        parts = [status_line(reply.status)]
        if reply.ctype:
            parts.append("Content-Type: " + reply.ctype + "\r\n")
        parts.append("Content-Length: %d\r\n" % len(body))
        if reply.headers:
            for k, v in reply.headers:
                parts.append(k + ": " + v + "\r\n")
        if not keep_alive:
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        self.transport.write("".join(parts).encode("latin-1") + body)
        if not keep_alive:
            self._close()

    def _parse(self):
        buf = self.buf
        if self.head is None:
            # tolerate stray CRLFs between requests
            while buf[:2] == b"\r\n":
                del buf[:2]
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                if len(buf) > MAX_HEAD:
                    raise BadRequest(431, "request head too large")
                return None
            lines = buf[:i].decode("latin-1").split("\r\n")
            del buf[:i + 4]
            rl = lines[0].split(" ")
            if len(rl) != 3 or not rl[2].startswith("HTTP/1."):
                raise BadRequest(400, "bad request line")
            headers = {}
            for ln in lines[1:]:
                k, sep, v = ln.partition(":")
                if not sep:
                    raise BadRequest(400, "bad header line")
                headers[k.strip().lower()] = v.strip()
            te = headers.get("transfer-encoding", "").lower()
            if te:
                if "chunked" not in te:
                    raise BadRequest(501, "unsupported transfer-encoding")
                blen = -1
            else:
                cl = headers.get("content-length")
                try:
                    blen = int(cl) if cl else 0
                except ValueError:
                    raise BadRequest(400, "bad content-length")
                if blen < 0 or blen > MAX_BODY:
                    raise BadRequest(413, "body too large")
            self.head = (rl[0], rl[1], rl[2], headers, blen)
            self.sent_continue = False
        method, target, version, headers, blen = self.head
        if blen >= 0:
            if len(buf) < blen:
                self._maybe_continue(headers)
                return None
            body = bytes(buf[:blen])
            del buf[:blen]
        else:
            body = self._take_chunked()
            if body is None:
                self._maybe_continue(headers)
                return None
        self.head = None
        req = Request()
        req.method = method
        req.target = target
        path, _, query = target.partition("?")
        req.path = path
        req.query = query
        req.version = version
        req.headers = headers
        req.body = body
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            req.keep_alive = "keep-alive" in conn
        else:
            req.keep_alive = "close" not in conn
        return req

    def _maybe_continue(self, headers):
        if not self.sent_continue and headers.get("expect", "").lower() == "100-continue":
            self.sent_continue = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _take_chunked(self):
        buf = self.buf
        pos = 0
        out = []
        total = 0
        while True:
            j = buf.find(b"\r\n", pos)
            if j < 0:
                return None
            size_s = bytes(buf[pos:j]).split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size")
            pos = j + 2
            if size == 0:
                # optional trailers, then an empty line
                while True:
                    k = buf.find(b"\r\n", pos)
                    if k < 0:
                        return None
                    line_empty = (k == pos)
                    pos = k + 2
                    if line_empty:
                        del buf[:pos]
                        return b"".join(out)
            total += size
            if total > MAX_BODY:
                raise BadRequest(413, "body too large")
            if len(buf) < pos + size + 2:
                return None
            out.append(bytes(buf[pos:pos + size]))
            pos += size + 2


# ---------------------------------------------------------------------------
# Scripts and limits.
# ---------------------------------------------------------------------------

class ControlError(Exception):
    pass


UNSET = object()


def validate_step(st, where="step"):
    if not isinstance(st, dict):
        raise ControlError(where + " must be an object")
    kind = st.get("kind")
    if kind not in STEP_KINDS:
        raise ControlError("%s: unknown kind %r" % (where, kind))
    if kind == "slow":
        tk = st.get("then_kind", "hit")
        if tk not in STEP_KINDS or tk == "slow":
            raise ControlError("%s: bad then_kind %r" % (where, tk))
    on = st.get("on", "start")
    if on not in ("start", "poll", "any"):
        raise ControlError("%s: on must be start, poll or any" % where)
    for k in ("omit",):
        if k in st:
            if not isinstance(st[k], list) or any(x not in FIELD_SET for x in st[k]):
                raise ControlError("%s: omit must list enrichd field names" % where)
    if "fields" in st:
        if not isinstance(st["fields"], dict) or any(x not in FIELD_SET for x in st["fields"]):
            raise ControlError("%s: fields must be an object keyed by enrichd field names"
                               % where)
    if "headers" in st and not isinstance(st["headers"], dict):
        raise ControlError(where + ": headers must be an object")
    for k in ("delay_ms", "status", "reset_s", "likelihood", "polls_before_complete"):
        v = st.get(k)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                              or v < 0):
            raise ControlError("%s: %s must be a non-negative number" % (where, k))
    if kind == "rate_limited" and st.get("window", "minute") not in (
            "minute", "hourly", "daily", "second"):
        raise ControlError(where + ": window must be minute, hourly or daily")
    if kind == "miss" and st.get("style", "404") not in ("404", "empty"):
        raise ControlError(where + ": style must be 404 or empty")
    return st


class Script:
    __slots__ = ("steps", "then", "polls", "last", "consumed")

    def __init__(self, steps, then, polls):
        self.steps = list(steps)
        self.then = then
        self.polls = polls
        self.last = {}
        self.consumed = 0

    def take(self, phase):
        """Next step for a call. phase is "start" or "poll" (Surfe) or None (any
        other provider: every step applies)."""
        for i, st in enumerate(self.steps):
            on = st.get("on", "start")
            if phase is None or on == "any" or on == phase:
                del self.steps[i]
                self.last[phase] = st
                self.consumed += 1
                return st
        if self.then == "repeat_last":
            return self.last.get(phase)
        return None


WINDOW_NAMES = (("per_second", "second", 1.0), ("per_minute", "minute", 60.0),
                ("per_hour", "hourly", 3600.0), ("per_day", "daily", 86400.0))


class Limiter:
    """Sliding-window request limits (and optional credits) for one key or one
    account (several keys)."""

    def __init__(self, provider, name, keys, windows, credits):
        self.provider = provider
        self.name = name
        self.keys = keys
        self.windows = windows      # list of [name, limit, seconds, deque]
        self.credits = credits      # None = unlimited
        self.allowed = 0
        self.limited = 0
        self.no_credit = 0

    def _prune(self, now):
        for w in self.windows:
            dq = w[3]
            edge = now - w[2]
            while dq and dq[0] <= edge:
                dq.popleft()

    def check(self, now):
        """Admit a call (recording it) or return (window, limit, seconds to wait)."""
        self._prune(now)
        worst = None
        for name, limit, secs, dq in self.windows:
            if len(dq) >= limit:
                wait = (dq[0] + secs - now) if dq else secs
                if worst is None or wait > worst[2]:
                    worst = (name, limit, wait)
        if worst is not None:
            self.limited += 1
            return worst
        for w in self.windows:
            w[3].append(now)
        self.allowed += 1
        return None

    def meters(self, now):
        self._prune(now)
        return {name: (limit, max(0, limit - len(dq))) for name, limit, _, dq in self.windows}

    def state(self, now):
        m = self.meters(now)
        return {
            "name": self.name,
            "keys": self.keys,
            "windows": [{"name": n, "limit": lim, "seconds": s, "remaining": m[n][1]}
                        for n, lim, s, _ in self.windows],
            "credits_left": self.credits,
            "allowed": self.allowed,
            "limited": self.limited,
            "refused_no_credit": self.no_credit,
        }


# ---------------------------------------------------------------------------
# The simulator proper.
# ---------------------------------------------------------------------------

DEFAULT_CONFIG = {
    "delay_ms": 0,
    "delay_ms_by_provider": {},
    "polls_before_complete": 1,
    "pdl_likelihood": 8,
    "pdl_company_likelihood": 7,
    "lusha_miss_style": "404",
    "nominal_per_minute": 1000,
    "nominal_credits": 10000,
    "log_calls": True,
}

CALL_FIELDS = ("seq", "t_ms", "provider", "method", "path", "query", "key", "body",
               "status", "kind", "scripted")


class Outcome:
    """What a provider call answers, before meters and delay are added."""
    __slots__ = ("status", "body", "kind", "charged", "headers", "ctype", "drop",
                 "rl_window", "quota")

    def __init__(self, status, body, kind, charged=0, headers=None,
                 ctype="application/json"):
        self.status = status
        self.body = body
        self.kind = kind
        self.charged = charged
        self.headers = headers
        self.ctype = ctype
        self.drop = False
        self.rl_window = None
        self.quota = False


class Sim:
    def __init__(self, loop, base_delay_ms=0, max_log=500_000):
        self.loop = loop
        self.t0 = time.monotonic()
        self.base_delay_ms = base_delay_ms
        self.max_log = max_log
        self.job_counter = 0
        self.conns_open = 0
        self.conns_peak = 0
        self.conns_total = 0
        self.reset()

    # -- state ------------------------------------------------------------
    def reset(self):
        self.config = json.loads(json.dumps(DEFAULT_CONFIG))
        self.config["delay_ms"] = self.base_delay_ms
        self.scripts = {}
        self.limits = {}            # (prov, key) -> Limiter
        self.limiters = []
        self.records = {p: [] for p in PROVIDERS}
        self.record_seq = 0
        self.jobs = collections.OrderedDict()
        self.clear_calls()
        self.clear_stats()
        self.cache = {}
        self._apply_config()

    def clear_calls(self):
        self.calls = collections.deque(maxlen=self.max_log)

    def clear_stats(self):
        self.seq = 0
        self.total = 0
        self.by_provider = {}
        self.by_key = {}
        self.by_kind = collections.Counter()

    def _apply_config(self):
        c = self.config
        self.delays = {p: c["delay_ms_by_provider"].get(p, c["delay_ms"]) / 1000.0
                       for p in PROVIDERS}
        n = c["nominal_per_minute"]
        self.pdl_nominal = [("x-ratelimit-remaining", '{"minute": %d}' % (n - 1)),
                            ("x-ratelimit-limit", '{"minute": %d}' % n)]
        self.cache = {}

    def conn_opened(self):
        self.conns_open += 1
        self.conns_total += 1
        if self.conns_open > self.conns_peak:
            self.conns_peak = self.conns_open

    def conn_closed(self):
        self.conns_open -= 1

    # -- dispatch -----------------------------------------------------------
    def handle(self, req):
        path = req.path
        if path.startswith("/_sim/"):
            return self.control(req)
        slash = path.find("/", 1)
        prov = path[1:slash] if slash > 0 else path[1:]
        if prov in PROVIDERS:
            return self.provider_call(req, prov, path[len(prov) + 1:])
        return Reply(404, dumps({"error": "no such path", "path": path}))

    def provider_call(self, req, prov, sub):
        now = time.monotonic()
        headers = req.headers
        key = None
        if prov == "pdl":
            key = headers.get("x-api-key")
        elif prov == "lusha":
            key = headers.get("api_key")
        else:
            auth = headers.get("authorization")
            if auth and auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        key = key or None

        endpoint, method, job_id = route(prov, sub)
        phase = None
        if prov == "surfe":
            phase = "poll" if endpoint == "poll" else "start"

        step = None
        lim = None
        out = None
        body_obj = None
        if endpoint is None:
            out = Outcome(404, dumps(error_obj(prov, 404, "No such endpoint")), "not_found")
        elif req.method != method:
            out = Outcome(405, dumps(error_obj(prov, 405)), "bad_request")
        elif not key:
            msg = {"pdl": "Missing API key", "lusha": "Unauthorized",
                   "surfe": "Missing bearer token", "generic": "unauthorized"}[prov]
            out = Outcome(401, dumps(error_obj(prov, 401, msg)), "invalid_key")
        else:
            lim = self.limits.get((prov, key))
            if lim is not None:
                if lim.windows:
                    blocked = lim.check(now)
                    if blocked is not None:
                        out = self.limited_outcome(prov, blocked)
                if out is None and lim.credits is not None and lim.credits <= 0 \
                        and phase != "poll":
                    lim.no_credit += 1
                    out = self.quota_outcome(prov, {})
            if out is None:
                script = self.scripts.get((prov, key))
                if script is not None:
                    step = script.take(phase)
                if prov == "surfe" and req.body:
                    try:
                        body_obj = json.loads(req.body)
                    except ValueError:
                        body_obj = None
                out = self.answer(prov, endpoint, req, step, body_obj, job_id, key)

        if lim is not None and out.charged and lim.credits is not None:
            lim.credits = max(0, lim.credits - out.charged)

        # headers: meters, then the outcome's, then the step's
        hdrs = self.meters(prov, lim, out, now) if endpoint else []
        if out.headers:
            hdrs.extend(out.headers)
        if step is not None and step.get("headers"):
            extra = step["headers"]
            low = {k.lower() for k in extra}
            hdrs = [h for h in hdrs if h[0].lower() not in low]
            hdrs.extend((str(k), str(v)) for k, v in extra.items())

        if step is not None and step.get("delay_ms") is not None:
            delay = step["delay_ms"] / 1000.0
        elif step is not None and step.get("kind") == "slow":
            delay = 3.0
        else:
            delay = self.delays[prov]

        status = 0 if out.drop else out.status
        self.record(now, prov, req, key, body_obj, status, out.kind, step is not None)
        return Reply(out.status, out.body, hdrs, out.ctype, delay, out.drop)

    # -- bookkeeping --------------------------------------------------------
    def record(self, now, prov, req, key, body_obj, status, kind, scripted):
        self.seq += 1
        self.total += 1
        kname = key if key is not None else "(none)"
        st = str(status)
        bp = self.by_provider.get(prov)
        if bp is None:
            bp = self.by_provider[prov] = {"calls": 0, "status": {}}
        bp["calls"] += 1
        bp["status"][st] = bp["status"].get(st, 0) + 1
        bk = self.by_key.get(kname)
        if bk is None:
            bk = self.by_key[kname] = {"calls": 0, "status": {}, "provider": {}}
        bk["calls"] += 1
        bk["status"][st] = bk["status"].get(st, 0) + 1
        bk["provider"][prov] = bk["provider"].get(prov, 0) + 1
        self.by_kind[kind] += 1
        if self.config["log_calls"]:
            body = body_obj
            if body is None and req.body:
                body = req.body
            # interning keeps a long call log small: paths, methods and keys repeat
            self.calls.append((self.seq, round((now - self.t0) * 1000.0, 3), prov,
                               intern(req.method), intern(req.path), req.query,
                               intern(key) if key is not None else None, body,
                               status, kind, scripted))

    # -- meters ----------------------------------------------------------------
    def meters(self, prov, lim, out, now):
        if prov == "pdl":
            if lim is not None and lim.windows:
                m = lim.meters(now)
                rem = {n: r for n, (l, r) in m.items()}
                lims = {n: l for n, (l, r) in m.items()}
                if out.rl_window:
                    rem[out.rl_window] = 0
                h = [("x-ratelimit-remaining", json.dumps(rem)),
                     ("x-ratelimit-limit", json.dumps(lims))]
            elif out.rl_window:
                n = self.config["nominal_per_minute"]
                h = [("x-ratelimit-remaining", json.dumps({out.rl_window: 0})),
                     ("x-ratelimit-limit", json.dumps({out.rl_window: n}))]
            else:
                h = list(self.pdl_nominal)
            h.append(("x-call-credits-spent", "1" if out.charged else "0"))
            if out.quota:
                total = 0
            elif lim is not None and lim.credits is not None:
                total = lim.credits
            else:
                total = self.config["nominal_credits"]
            h.append(("x-totallimit-remaining", str(total)))
            return h
        if prov == "lusha":
            n = self.config["nominal_per_minute"]
            vals = {"minute": [n, n - 1], "hourly": [n * 30, n * 30 - 1],
                    "daily": [n * 100, n * 100 - 1]}
            if lim is not None and lim.windows:
                for name, (l, r) in lim.meters(now).items():
                    if name in vals:
                        vals[name] = [l, r]
            if out.rl_window in vals:
                vals[out.rl_window][1] = 0
            return [("x-rate-limit-minute", str(vals["minute"][0])),
                    ("x-rate-limit-hourly", str(vals["hourly"][0])),
                    ("x-rate-limit-daily", str(vals["daily"][0])),
                    ("x-minute-requests-left", str(vals["minute"][1])),
                    ("x-hourly-requests-left", str(vals["hourly"][1])),
                    ("x-daily-requests-left", str(vals["daily"][1]))]
        return []

    # -- outcomes -----------------------------------------------------------------
    def limited_outcome(self, prov, blocked, retry_after=True, message=None):
        """A 429 from a real window: (window, limit, seconds until a slot frees)."""
        window, limit, wait = blocked
        secs = max(1, int(math.ceil(wait)))
        hdrs = []
        if prov == "pdl":
            hdrs.append(("x-ratelimit-reset", str(int(math.ceil(time.time() + wait)))))
        if retry_after:
            hdrs.append(("Retry-After", str(secs)))
        o = Outcome(429, dumps(self.rate_body(prov, window, message)), "rate_limited",
                    headers=hdrs)
        o.rl_window = window
        return o

    def rate_body(self, prov, window, message=None):
        if prov == "lusha":
            return error_obj(prov, 429, message or LUSHA_WINDOW_MSG.get(window,
                                                                        "Rate limit exceeded"))
        if prov == "surfe":
            return error_obj(prov, 429, message or "Too many requests, slow down")
        if prov == "pdl":
            return error_obj(prov, 429, message or
                             "You have hit your %s rate limit" % window)
        return error_obj(prov, 429, message or "rate limited")

    def quota_outcome(self, prov, step):
        msg = step.get("message")
        if not msg:
            if prov == "surfe" and step.get("daily"):
                msg = "Daily quota exceeded"
            elif prov == "pdl":
                msg = "You have hit your account maximum for this endpoint"
            else:
                msg = "Insufficient credits"
        hdrs = []
        if prov == "pdl" and step.get("reset_s") is not None:
            hdrs.append(("x-ratelimit-reset", str(int(time.time() + step["reset_s"]))))
        o = Outcome(402, dumps(error_obj(prov, 402, msg)), "quota", headers=hdrs)
        o.quota = True
        return o

    def answer(self, prov, endpoint, req, step, body_obj, job_id, key):
        """The answer of one authenticated call, by step (scripted) or by database."""
        kind = step.get("kind") if step is not None else None
        if kind == "slow":
            kind = step.get("then_kind", "hit")
        if prov == "surfe" and endpoint == "poll" and kind in (None, "hit", "miss"):
            return self.surfe_poll(job_id)
        if kind in (None, "hit", "miss"):
            if endpoint == "start":
                return self.surfe_start(req, body_obj, step, kind, key)
            return self.lookup(prov, endpoint, req, step, kind)
        if kind == "invalid_key":
            return Outcome(401, dumps(error_obj(prov, 401, step.get("message"))),
                           "invalid_key")
        if kind == "quota":
            return self.quota_outcome(prov, step)
        if kind == "forbidden":
            return Outcome(403, dumps(error_obj(prov, 403, step.get("message"))),
                           "forbidden")
        if kind == "bad_request":
            return Outcome(400, dumps(error_obj(prov, 400, step.get("message"))),
                           "bad_request")
        if kind == "rate_limited":
            return self.scripted_429(prov, step)
        if kind == "error":
            status = int(step.get("status") or 503)
            if "body" in step:
                b = step["body"]
                body = b.encode() if isinstance(b, str) else dumps(b)
            else:
                body = dumps(error_obj(prov, status, step.get("message")))
            return Outcome(status, body, "error")
        if kind == "garbage":
            b = step.get("body", "<html><body>502 upstream hiccup</body></html")
            o = Outcome(int(step.get("status") or 200),
                        b.encode() if isinstance(b, str) else dumps(b), "garbage",
                        ctype=step.get("content_type", "text/html"))
            return o
        if kind == "drop":
            o = Outcome(0, b"", "drop")
            o.drop = True
            return o
        return Outcome(500, dumps({"error": "unhandled step"}), "error")

    def scripted_429(self, prov, step):
        window = step.get("window", "minute")
        reset_s = step.get("reset_s", 30)
        retry_after = step.get("retry_after", True)
        hdrs = []
        if reset_s is not None:
            if prov == "pdl":
                hdrs.append(("x-ratelimit-reset", str(int(time.time() + reset_s))))
            if retry_after:
                hdrs.append(("Retry-After", str(int(reset_s))))
        o = Outcome(429, dumps(self.rate_body(prov, window, step.get("message"))),
                    "rate_limited", headers=hdrs)
        o.rl_window = window
        return o

    # -- database lookups -----------------------------------------------------------
    def find_record(self, prov, ident, is_company):
        for rec in reversed(self.records[prov]):
            if rec["is_company"] != is_company:
                continue
            if all(match_one(ident, k, v) for k, v in rec["match"].items()):
                return rec
        return None

    def resolve(self, prov, ident, is_company):
        """(found, fields, likelihood-or-None) from records, else the database."""
        if self.records[prov]:
            rec = self.find_record(prov, ident, is_company)
            if rec is not None:
                if not rec["found"]:
                    return False, None, None
                if rec["merge"]:
                    _, base = (derive_company(ident.domain, ident.company) if is_company
                               else derive_person(ident, prov))
                    f = dict(base or {})
                    f.update(rec["fields"])
                else:
                    f = rec["fields"]
                return True, f, rec["likelihood"]
        if is_company:
            found, f = derive_company(ident.domain, ident.company)
        else:
            found, f = derive_person(ident, prov)
        return found, f, None

    def lookup(self, prov, endpoint, req, step, kind):
        """pdl / lusha / generic GET lookups."""
        q = req.query
        plain = step is None and not self.records[prov]
        if plain:
            ck = (prov, endpoint, q)
            hit = self.cache.get(ck)
            if hit is not None:
                status, body, okind, charged = hit
                return Outcome(status, body, okind, charged)
        params = dict(parse_qsl(q, keep_blank_values=True))
        is_company = endpoint == "company"
        ident = ident_from_query(prov, endpoint, params)
        if ident is None:
            return Outcome(400, dumps(error_obj(
                prov, 400, "Not enough information to identify a %s"
                % ("company" if is_company else "person"))), "bad_request")

        found, f, likelihood = self.resolve(prov, ident, is_company)
        if kind == "miss":
            found = False
        elif kind == "hit":
            if not found:
                if is_company:
                    _, f = derive_company(ident.domain or "company.com", ident.company)
                else:
                    _, f = derive_person(_unmissable(ident), prov)
                found = True
        if found and step is not None:
            f = overlay(f, step)
            if step.get("likelihood") is not None:
                likelihood = int(step["likelihood"])

        out = self.render_lookup(prov, endpoint, params, found, f, likelihood, step)
        if plain:
            if len(self.cache) >= ANSWER_CACHE_MAX:
                self.cache.clear()
            self.cache[(prov, endpoint, q)] = (out.status, out.body, out.kind, out.charged)
        return out

    def render_lookup(self, prov, endpoint, params, found, f, likelihood, step):
        c = self.config
        if prov == "pdl":
            if endpoint == "company":
                lk = likelihood if likelihood is not None else c["pdl_company_likelihood"]
            else:
                lk = likelihood if likelihood is not None else c["pdl_likelihood"]
            try:
                min_lk = int(params.get("min_likelihood") or 0)
            except ValueError:
                min_lk = 0
            if found and lk < min_lk:
                found = False
            if not found:
                return Outcome(404, dumps(error_obj(
                    "pdl", 404, "No records were found matching your request")), "miss")
            tc = params.get("titlecase", "").lower() == "true"
            body = (render_pdl_company(f, lk, tc) if endpoint == "company"
                    else render_pdl_person(f, lk, tc))
            return Outcome(200, dumps(body), "hit", 1)
        if prov == "lusha":
            if not found:
                style = (step or {}).get("style") or c["lusha_miss_style"]
                if style == "empty":
                    if endpoint == "company":
                        body = {"data": None}
                    else:
                        body = {"contact": {"data": None, "error": {
                            "code": "EMPTY_DATA",
                            "message": "Could not find requested data"},
                            "isCreditCharged": False}}
                    return Outcome(200, dumps(body), "miss")
                what = "Company" if endpoint == "company" else "Contact"
                return Outcome(404, dumps(error_obj("lusha", 404, what + " not found")),
                               "miss")
            body = (render_lusha_company(f) if endpoint == "company"
                    else render_lusha_person(f))
            return Outcome(200, dumps(body), "hit", 1)
        # generic
        if not found:
            return Outcome(404, dumps({"error": "not found"}), "miss")
        return Outcome(200, dumps(render_generic_person(f)), "hit", 1)

    # -- Surfe ------------------------------------------------------------------------
    def surfe_start(self, req, body_obj, step, kind, key):
        if not isinstance(body_obj, dict) or not isinstance(body_obj.get("people"), list) \
                or not body_obj["people"]:
            return Outcome(400, dumps(error_obj(
                "surfe", 400, "body must be JSON with a non-empty people list")),
                "bad_request")
        people = []
        charged = 0
        for i, p in enumerate(body_obj["people"]):
            if not isinstance(p, dict):
                p = {}
            ext = str(p.get("externalID", i + 1))
            ident = make_ident(
                email=str(p.get("email") or ""),
                linkedin=str(p.get("linkedinUrl") or p.get("linkedInUrl") or ""),
                first=str(p.get("firstName") or ""), last=str(p.get("lastName") or ""),
                company=str(p.get("companyName") or ""),
                domain=str(p.get("companyDomain") or ""))
            if ident_has_person_key(ident):
                found, f, _ = self.resolve("surfe", ident, False)
            else:
                found, f = False, None
            if kind == "miss":
                found = False
            elif kind == "hit" and not found:
                _, f = derive_person(_unmissable(ident), "surfe")
                found = f is not None
            if found and step is not None:
                f = overlay(f, step)
            if found:
                people.append(render_surfe_person(f, ext))
                charged += 1
            else:
                people.append({"externalID": ext, "status": "NOT_FOUND"})
        polls = None
        if step is not None and step.get("polls_before_complete") is not None:
            polls = int(step["polls_before_complete"])
        if polls is None:
            script = self.scripts.get(("surfe", key))
            if script is not None and script.polls is not None:
                polls = script.polls
        if polls is None:
            polls = int(self.config["polls_before_complete"])
        self.job_counter += 1
        jid = "00000000-5157-4000-8000-%012x" % self.job_counter
        self.jobs[jid] = [polls, people]
        while len(self.jobs) > 200_000:
            self.jobs.popitem(last=False)
        return Outcome(202, dumps({"enrichmentID": jid,
                                   "message": "Your enrichment has started"}),
                       "pending", charged)

    def surfe_poll(self, jid):
        job = self.jobs.get(jid)
        if job is None:
            return Outcome(404, dumps(error_obj("surfe", 404, "Enrichment not found")),
                           "not_found")
        if job[0] > 0:
            job[0] -= 1
            return Outcome(200, dumps({"enrichmentID": jid, "status": "IN_PROGRESS",
                                       "percentCompleted": 50, "people": []}), "pending")
        people = job[1]
        any_found = any(p.get("status") == "COMPLETED" for p in people)
        return Outcome(200, dumps({"enrichmentID": jid, "status": "COMPLETED",
                                   "percentCompleted": 100, "people": people}),
                       "hit" if any_found else "miss")

    # -- control API ----------------------------------------------------------------------
    def control(self, req):
        name = req.path[len("/_sim/"):].rstrip("/")
        m = req.method
        try:
            body = None
            if req.body:
                try:
                    body = json.loads(req.body)
                except ValueError:
                    raise ControlError("body is not JSON")
            params = dict(parse_qsl(req.query, keep_blank_values=True))
            fn = CONTROL.get((m, name))
            if fn is None:
                if any(n == name for _, n in CONTROL):
                    return Reply(405, dumps({"error": "method not allowed"}))
                return Reply(404, dumps({"error": "no such control endpoint"}))
            res = fn(self, body, params)
            if isinstance(res, Reply):
                return res
            return Reply(200, dumps(res))
        except ControlError as e:
            return Reply(400, dumps({"error": str(e)}))

    def c_health(self, body, params):
        return {"ok": True}

    def c_reset(self, body, params):
        self.reset()
        return {"ok": True}

    def c_get_config(self, body, params):
        return self.config

    def c_config(self, body, params):
        if not isinstance(body, dict):
            raise ControlError("config must be a JSON object")
        for k, v in body.items():
            if k not in DEFAULT_CONFIG:
                raise ControlError("unknown config key %r" % k)
            if k == "delay_ms_by_provider":
                if not isinstance(v, dict) or any(p not in PROVIDERS for p in v) \
                        or any(not isinstance(x, (int, float)) or x < 0 for x in v.values()):
                    raise ControlError("delay_ms_by_provider: {provider: ms}")
            elif k == "lusha_miss_style":
                if v not in ("404", "empty"):
                    raise ControlError("lusha_miss_style must be 404 or empty")
            elif k == "log_calls":
                if not isinstance(v, bool):
                    raise ControlError("log_calls must be true or false")
            elif not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ControlError("%s must be a non-negative number" % k)
        self.config.update(body)
        self._apply_config()
        return self.config

    def c_script(self, body, params):
        if not isinstance(body, dict):
            raise ControlError("script must be a JSON object")
        prov = body.get("provider")
        key = body.get("key")
        if prov not in PROVIDERS:
            raise ControlError("provider must be one of " + ", ".join(PROVIDERS))
        if not isinstance(key, str) or not key:
            raise ControlError("key must be a non-empty string")
        steps = body.get("steps", [])
        if not isinstance(steps, list):
            raise ControlError("steps must be a list")
        for i, st in enumerate(steps):
            validate_step(st, "steps[%d]" % i)
        then = body.get("then", "default")
        if then not in ("default", "repeat_last"):
            raise ControlError("then must be default or repeat_last")
        polls = body.get("polls_before_complete")
        if polls is not None and (not isinstance(polls, int) or polls < 0):
            raise ControlError("polls_before_complete must be a non-negative integer")
        old = self.scripts.get((prov, key))
        if body.get("append") and old is not None:
            old.steps.extend(steps)
            old.then = then
            if polls is not None:
                old.polls = polls
            sc = old
        else:
            sc = self.scripts[(prov, key)] = Script(steps, then, polls)
        return {"ok": True, "provider": prov, "key": key, "queued": len(sc.steps)}

    def c_get_script(self, body, params):
        out = []
        for (prov, key), sc in self.scripts.items():
            if params.get("provider") and params["provider"] != prov:
                continue
            if params.get("key") and params["key"] != key:
                continue
            out.append({"provider": prov, "key": key, "steps": sc.steps, "then": sc.then,
                        "polls_before_complete": sc.polls, "consumed": sc.consumed})
        return {"scripts": out}

    def c_delete_script(self, body, params):
        prov, key = params.get("provider"), params.get("key")
        for k in list(self.scripts):
            if (not prov or k[0] == prov) and (not key or k[1] == key):
                del self.scripts[k]
        return {"ok": True}

    def c_limits(self, body, params):
        if not isinstance(body, dict):
            raise ControlError("limits must be a JSON object")
        prov = body.get("provider")
        if prov not in PROVIDERS:
            raise ControlError("provider must be one of " + ", ".join(PROVIDERS))
        if "account_keys" in body:
            keys = body["account_keys"]
            if not isinstance(keys, list) or not keys or \
                    any(not isinstance(k, str) or not k for k in keys):
                raise ControlError("account_keys must be a non-empty list of keys")
        elif isinstance(body.get("key"), str) and body["key"]:
            keys = [body["key"]]
        else:
            raise ControlError("give key or account_keys")
        windows = []
        for field, wname, secs in WINDOW_NAMES:
            v = body.get(field)
            if v is not None:
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise ControlError(field + " must be a non-negative integer")
                if field == "per_minute" and body.get("window_s") is not None:
                    secs = float(body["window_s"])
                windows.append([wname, v, secs, collections.deque()])
        for w in body.get("windows", []) or []:
            try:
                windows.append([str(w["name"]), int(w["limit"]), float(w["seconds"]),
                                collections.deque()])
            except (KeyError, TypeError, ValueError):
                raise ControlError("windows: [{name, limit, seconds}]")
        credits = body.get("credits")
        if credits is not None and (not isinstance(credits, int) or credits < 0):
            raise ControlError("credits must be a non-negative integer")
        # a key is under one limiter: a new definition replaces older ones
        for k in keys:
            old = self.limits.pop((prov, k), None)
            if old is not None:
                old.keys = [x for x in old.keys if x != k]
        self.limiters = [l for l in self.limiters if l.keys]
        if not windows and credits is None:
            return {"ok": True, "removed": keys}
        lim = Limiter(prov, body.get("name") or ("%s:%s" % (prov, ",".join(keys))), keys,
                      windows, credits)
        self.limiters.append(lim)
        for k in keys:
            self.limits[(prov, k)] = lim
        return {"ok": True, "limiter": lim.state(time.monotonic())}

    def c_get_limits(self, body, params):
        now = time.monotonic()
        return {"limiters": [dict(l.state(now), provider=l.provider)
                             for l in self.limiters]}

    def c_records(self, body, params):
        recs = body.get("records") if isinstance(body, dict) and "records" in body else [body]
        if not isinstance(recs, list):
            raise ControlError("records must be a list")
        ids = []
        staged = []
        for r in recs:
            if not isinstance(r, dict):
                raise ControlError("a record must be a JSON object")
            prov = r.get("provider", "*")
            provs = PROVIDERS if prov in ("*", None) else (prov,)
            if any(p not in PROVIDERS for p in provs):
                raise ControlError("provider must be one of %s or *" % ", ".join(PROVIDERS))
            match = r.get("match")
            if not isinstance(match, dict) or not match or \
                    any(k not in MATCH_KEYS for k in match):
                raise ControlError("match must be an object with keys from "
                                   + ", ".join(sorted(MATCH_KEYS)))
            kind = r.get("kind")
            if kind is None:
                kind = "company" if set(match) <= {"domain", "company_name"} else "person"
            if kind not in ("person", "company"):
                raise ControlError("kind must be person or company")
            fields = r.get("fields", {})
            if not isinstance(fields, dict) or any(k not in FIELD_SET for k in fields):
                raise ControlError("fields must be keyed by enrichd field names")
            fields = {k: (v if isinstance(v, (str, list)) or v is None else str(v))
                      for k, v in fields.items()}
            lk = r.get("likelihood")
            if lk is not None and (not isinstance(lk, int) or not 0 <= lk <= 10):
                raise ControlError("likelihood must be 0..10")
            self.record_seq += 1
            rec = {"id": self.record_seq, "providers": list(provs), "kind": kind,
                   "is_company": kind == "company",
                   "match": {k: str(v) for k, v in match.items()},
                   "found": bool(r.get("found", True)), "fields": fields,
                   "likelihood": lk, "merge": bool(r.get("merge", False))}
            staged.append((provs, rec))
            ids.append(self.record_seq)
        for provs, rec in staged:
            for p in provs:
                self.records[p].append(rec)
        self.cache = {}
        return {"ok": True, "ids": ids}

    def c_get_records(self, body, params):
        seen = {}
        for p in PROVIDERS:
            for r in self.records[p]:
                seen[r["id"]] = r
        return {"records": [{k: v for k, v in r.items() if k != "is_company"}
                            for _, r in sorted(seen.items())]}

    def c_calls(self, body, params):
        prov = params.get("provider")
        key = params.get("key")
        kind = params.get("kind")
        try:
            since = int(params.get("since_seq") or 0)
            limit = int(params.get("limit") or 0)
        except ValueError:
            raise ControlError("since_seq and limit must be integers")
        out = []
        for c in self.calls:
            if c[0] <= since:
                continue
            if prov and c[2] != prov:
                continue
            if key and c[6] != key:
                continue
            if kind and c[9] != kind:
                continue
            out.append(call_json(c))
            if limit and len(out) >= limit:
                break
        return {"calls": out, "count": len(out)}

    def c_delete_calls(self, body, params):
        self.clear_calls()
        return {"ok": True}

    def c_stats(self, body, params):
        return {
            "total": self.total,
            "by_provider": self.by_provider,
            "by_key": self.by_key,
            "by_kind": dict(self.by_kind),
            "connections": {"open": self.conns_open, "peak": self.conns_peak,
                            "total": self.conns_total},
            "surfe_jobs": len(self.jobs),
            "uptime_ms": round((time.monotonic() - self.t0) * 1000.0, 3),
        }

    def c_delete_stats(self, body, params):
        self.clear_stats()
        self.conns_peak = self.conns_open
        return {"ok": True}

    def c_expected(self, body, params):
        prov = params.get("provider", "pdl")
        if prov not in PROVIDERS:
            raise ControlError("provider must be one of " + ", ".join(PROVIDERS))
        kind = params.get("kind", "person")
        ident = make_ident(email=params.get("email", ""),
                           linkedin=params.get("linkedin_url", ""),
                           first=params.get("first_name", ""),
                           last=params.get("last_name", ""),
                           company=params.get("company_name", ""),
                           domain=params.get("domain", ""),
                           phone=params.get("phone", ""))
        is_company = kind == "company"
        found, f, lk = self.resolve(prov, ident, is_company)
        if lk is None and prov == "pdl":
            lk = self.config["pdl_company_likelihood" if is_company else "pdl_likelihood"]
        fields = None
        if found:
            fields = {k: v for k, v in f.items() if not k.startswith("_")}
        return {"provider": prov, "kind": kind, "found": found, "fields": fields,
                "likelihood": lk if prov == "pdl" else None}


CONTROL = {
    ("GET", "health"): Sim.c_health,
    ("POST", "reset"): Sim.c_reset,
    ("GET", "config"): Sim.c_get_config,
    ("POST", "config"): Sim.c_config,
    ("POST", "script"): Sim.c_script,
    ("GET", "script"): Sim.c_get_script,
    ("DELETE", "script"): Sim.c_delete_script,
    ("POST", "limits"): Sim.c_limits,
    ("GET", "limits"): Sim.c_get_limits,
    ("POST", "records"): Sim.c_records,
    ("GET", "records"): Sim.c_get_records,
    ("GET", "calls"): Sim.c_calls,
    ("DELETE", "calls"): Sim.c_delete_calls,
    ("GET", "stats"): Sim.c_stats,
    ("DELETE", "stats"): Sim.c_delete_stats,
    ("GET", "expected"): Sim.c_expected,
}

MATCH_KEYS = frozenset(("email", "linkedin_url", "first_name", "last_name",
                        "company_name", "domain", "phone"))


def match_one(ident, k, v):
    if k == "email":
        return ident.email == v.strip().lower()
    if k == "linkedin_url":
        return ident.linkedin == li_slug(v)
    if k == "first_name":
        return ident.first == v.strip().lower()
    if k == "last_name":
        return ident.last == v.strip().lower()
    if k == "company_name":
        return ident.company.lower() == v.strip().lower()
    if k == "domain":
        return ident.domain == norm_domain(v) or (
            ident.email.partition("@")[2] == norm_domain(v))
    if k == "phone":
        return digits(ident.phone) == digits(v) and bool(digits(v))
    return False


def _unmissable(ident):
    """The same lookup with the 'not found' prefixes taken off, for a forced hit."""
    def strip(s):
        for p in MISS_PREFIXES:
            if s.startswith(p):
                return s[len(p):].lstrip("._-") or "someone"
        return s
    email = ident.email
    if email:
        local, _, dom = email.partition("@")
        email = strip(local) + "@" + dom
    linkedin = strip(ident.linkedin) if ident.linkedin else ""
    first = strip(ident.first) if ident.first else ""
    last = ident.last
    if not (email or linkedin or ident.phone or ((first or last) and
                                                  (ident.company or ident.domain))):
        email = "someone@example.com"
    return ident._replace(email=email, linkedin=linkedin, first=first, last=last)


def overlay(f, step):
    """A record with a step's field overrides and omissions applied (a new dict)."""
    fields = step.get("fields")
    omit = step.get("omit")
    if not fields and not omit:
        return f
    g = dict(f)
    if fields:
        g.update(fields)
    if omit:
        for k in omit:
            g.pop(k, None)
    return g


def route(prov, sub):
    """(endpoint, method, job id) for a provider-relative path, endpoint None if
    there is no such endpoint."""
    if prov == "pdl":
        if sub == "/v5/person/enrich":
            return "person", "GET", None
        if sub == "/v5/company/enrich":
            return "company", "GET", None
    elif prov == "lusha":
        if sub == "/v2/person":
            return "person", "GET", None
        if sub == "/v2/company":
            return "company", "GET", None
    elif prov == "surfe":
        if sub == "/v2/people/enrich":
            return "start", "POST", None
        if sub.startswith("/v2/people/enrich/") and len(sub) > 18 \
                and "/" not in sub[18:]:
            return "poll", "GET", sub[18:]
    elif prov == "generic":
        if sub == "/person":
            return "person", "GET", None
    return None, None, None


def ident_from_query(prov, endpoint, p):
    g = p.get
    if endpoint == "company":
        if prov == "pdl":
            ident = make_ident(domain=g("website", "") or g("domain", ""),
                               company=g("name", ""))
        else:
            ident = make_ident(domain=g("domain", ""), company=g("company", ""))
        return ident if (ident.domain or ident.company) else None
    if prov == "pdl":
        first, last = g("first_name", ""), g("last_name", "")
        if not (first or last) and g("name"):
            parts = g("name").split()
            first, last = parts[0], " ".join(parts[1:])
        ident = make_ident(email=g("email", ""), linkedin=g("profile", ""),
                           first=first, last=last, company=g("company", ""),
                           phone=g("phone", ""))
    elif prov == "lusha":
        ident = make_ident(email=g("email", ""), linkedin=g("linkedinUrl", ""),
                           first=g("firstName", ""), last=g("lastName", ""),
                           company=g("companyName", ""), domain=g("companyDomain", ""))
    else:
        ident = make_ident(email=g("email", ""))
        return ident if ident.email else None
    return ident if ident_has_person_key(ident) else None


def call_json(c):
    q = {}
    if c[5]:
        for k, v in parse_qsl(c[5], keep_blank_values=True):
            if k in q:
                if isinstance(q[k], list):
                    q[k].append(v)
                else:
                    q[k] = [q[k], v]
            else:
                q[k] = v
    body = c[7]
    if isinstance(body, (bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    return dict(zip(CALL_FIELDS, (c[0], c[1], c[2], c[3], c[4], q, c[6], body, c[8],
                                  c[9], c[10])))


# ---------------------------------------------------------------------------
# Entry point.
# ---------------------------------------------------------------------------

def raise_fd_limit():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(args):
    loop = asyncio.get_running_loop()
    sim = Sim(loop, base_delay_ms=args.delay_ms, max_log=args.max_log)
    server = await loop.create_server(lambda: HttpConnection(sim), args.host, args.port,
                                      backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = loop.create_future()

    def on_signal(signame):
        if not stop.done():
            stop.set_result(signame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)

    if args.port_file:
        write_port_file(args.port_file, port)
    print("providersim listening on %s:%d" % (args.host, port), flush=True)

    # The call log and caches make many small long-lived objects; collect less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)

    await stop
    server.close()
    if args.port_file:
        try:
            with open(args.port_file) as fh:
                mine = fh.read().strip() == str(port)
            if mine:
                os.unlink(args.port_file)
        except OSError:
            pass
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="enrichd upstream provider simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="delay before every provider answer (default 0)")
    ap.add_argument("--max-log", type=int, default=500_000,
                    help="calls kept in the call log (oldest dropped first)")
    args = ap.parse_args(argv)
    raise_fd_limit()
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
