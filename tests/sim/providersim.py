#!/usr/bin/python3
"""providersim: a stand-in for the upstream enrichment providers.

One process serves every provider kind that enrichd speaks (see docs/providers.md),
each under its own path prefix:

    /pdl/v5/person/enrich        /pdl/v5/company/enrich          (X-Api-Key)
    /pdl/v5/person/bulk          (POST, up to 100 requests)
    /pdl/v5/person/search        /pdl/v5/company/search          (GET or POST)
    /lusha/v2/person             /lusha/v2/company               (api_key; GET one,
                                                                  POST up to 100)
    /surfe/v2/people/enrich      /surfe/v2/people/enrich/<id>    (Authorization: Bearer)
    /surfe/v2/people/search      /surfe/v2/companies/search      (POST)
    /generic/person              /generic/people/search          (Authorization: Bearer)
    /generic/companies/search

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
import base64
import binascii
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
    "hit", "miss", "default", "invalid_key", "quota", "forbidden", "bad_request",
    "rate_limited", "error", "garbage", "drop", "slow",
))

# What a step's "items" option may make of one item of a bulk call.
ITEM_KINDS = frozenset(("hit", "miss", "error"))

# The providers' own caps (docs/providers.md).
PDL_BULK_MAX = 100          # requests in one /v5/person/bulk call
LUSHA_BULK_MAX = 100        # contacts (or companies) in one POST /v2/person|company
SURFE_ENRICH_MAX = 10000    # people in one Surfe enrichment
PDL_SEARCH_MAX = 100        # size of one PDL search page
PDL_FROM_MAX = 9999         # PDL's legacy from offset
SURFE_SEARCH_MAX = 200      # limit of one Surfe search page
SURFE_SEARCH_DEFAULT = 10
SURFE_PPC_MAX = 100         # peoplePerCompany (one version of the docs says 5)
GENERIC_SEARCH_MAX = 100
GENERIC_SEARCH_DEFAULT = 10

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
# The search universe: which people work where, and which companies exist.
# ---------------------------------------------------------------------------

# Names of the people a search finds. 24 x 24 = 576 distinct first.last pairs.
STAFF_FIRST = ("Ada", "Ben", "Cora", "Dan", "Eva", "Finn", "Gina", "Hugo", "Ida", "Jack",
               "Kira", "Liam", "Mona", "Nils", "Olga", "Paul", "Quinn", "Rosa", "Theo",
               "Uma", "Vera", "Walt", "Yara", "Zane")
STAFF_LAST = ("Adams", "Baker", "Clark", "Dixon", "Evans", "Fisher", "Grant", "Hayes",
              "Irwin", "Jones", "Keller", "Lewis", "Moore", "Nolan", "Owens", "Parker",
              "Quinlan", "Reed", "Shaw", "Turner", "Underwood", "Vance", "Walsh", "Young")
STAFF_MIN = 5
STAFF_MAX = 40
STAFF_STEP = 25     # coprime with 576, so one company's people have distinct names

# The companies a search without a company filter walks through, in this order.
DIR_PREFIXES = ("north", "blue", "bright", "iron", "silver", "cedar", "cloud", "harbor",
                "quantum", "green")
DIR_SUFFIXES = ("wind", "stone", "field", "works", "labs", "soft", "ware", "path",
                "bridge", "forge", "point", "scale")
DIRECTORY = EMPLOYER_DOMAINS + tuple(p + s + ".com" for p in DIR_PREFIXES
                                     for s in DIR_SUFFIXES)

COUNTRY_CODES = {"United States": "us", "United Kingdom": "gb", "Germany": "de",
                 "Canada": "ca", "France": "fr"}

SENIORITY_ALIASES = {"c-level": "cxo", "c_level": "cxo", "c level": "cxo", "c-suite": "cxo",
                     "c_suite": "cxo", "c suite": "cxo", "vice president": "vp",
                     "vice_president": "vp"}

SIZE_BOUNDS = {"1-10": (1, 10), "11-50": (11, 50), "51-200": (51, 200),
               "201-500": (201, 500), "501-1000": (501, 1000), "1001-5000": (1001, 5000),
               "5001-10000": (5001, 10000), "10001+": (10001, 100000)}

# Normalised filter keys. A search is a list of clauses (key, values): every clause
# must hold, and a clause holds when any of its values matches.
PEOPLE_KEYS = frozenset(("domains", "names", "titles", "seniorities", "departments",
                         "countries", "industries", "sizes", "company_countries",
                         "employee_count"))
COMPANY_KEYS = frozenset(("domains", "names", "industries", "sizes", "countries",
                          "employee_count"))


@functools.lru_cache(maxsize=4096)
def staff_emails(domain):
    """The e-mail addresses of the people who work at domain, in a stable order."""
    if not domain or domain in FREE_MAIL or label_of(domain).startswith(MISS_PREFIXES):
        return ()
    n = STAFF_MIN + stable_hash("staff", domain) % (STAFF_MAX - STAFF_MIN + 1)
    total = len(STAFF_FIRST) * len(STAFF_LAST)
    start = stable_hash("staff-start", domain) % total
    out = []
    for i in range(n):
        k = (start + i * STAFF_STEP) % total
        first = STAFF_FIRST[k // len(STAFF_LAST)]
        last = STAFF_LAST[k % len(STAFF_LAST)]
        out.append((first + "." + last + "@" + domain).lower())
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def company_hq(domain):
    """(city, state, country, zip) of a company's headquarters."""
    return pick(LOCATIONS, domain, "hq")


def company_employee_count(domain, size):
    """A head count inside the company's size bucket."""
    lo, hi = SIZE_BOUNDS.get(size or "", (1, 100000))
    return lo + stable_hash("employees", domain) % (hi - lo + 1)


def size_of_count(n):
    for name, (lo, hi) in SIZE_BOUNDS.items():
        if lo <= n <= hi:
            return name
    return "10001+"


def canon_seniority(v):
    v = str(v).strip().lower()
    return SENIORITY_ALIASES.get(v, v)


def canon_department(v):
    return str(v).strip().lower().replace(" ", "_").replace("-", "_")


def country_matches(country, wanted):
    if not country:
        return False
    c = country.lower()
    code = COUNTRY_CODES.get(country, "")
    for w in wanted:
        w = w.strip().lower()
        if w == c or (code and (w == code or (code == "gb" and w == "uk"))):
            return True
    return False


def name_matches(company_name, domain, wanted):
    cn = (company_name or "").lower()
    for w in wanted:
        if w.strip().lower() == cn or company_slug_domain(w) == domain:
            return True
    return False


def in_ranges(n, ranges):
    for lo, hi in ranges:
        if (lo is None or n >= lo) and (hi is None or n <= hi):
            return True
    return False


def clause_holds(view, key, vals):
    """Whether one clause holds for a person or company view (enrichd field names,
    plus _domain, _hq_country and _employees)."""
    if key == "domains":
        return view.get("_domain") in vals
    if key == "names":
        return name_matches(view.get("company_name"), view.get("_domain"), vals)
    if key == "titles":
        t = (view.get("title") or "").lower()
        return bool(t) and any(v in t for v in vals)
    if key == "seniorities":
        return canon_seniority(view.get("seniority") or "") in vals
    if key == "departments":
        return canon_department(view.get("department") or "") in vals
    if key == "countries":
        return country_matches(view.get("country"), vals)
    if key == "company_countries":
        return country_matches(view.get("_hq_country"), vals)
    if key == "industries":
        return (view.get("industry") or "").lower() in vals
    if key == "sizes":
        return view.get("company_size") in vals
    if key == "employee_count":
        return in_ranges(view.get("_employees") or 0, vals)
    return False


def norm_clause_values(key, values):
    """Canonical values of one clause (sorted, distinct); ValueError when bad."""
    if key == "employee_count":
        out = set()
        for v in values:
            if not isinstance(v, (list, tuple)) or len(v) != 2 or \
                    any(x is not None and (not isinstance(x, int) or isinstance(x, bool)
                                           or x < 0) for x in v) \
                    or tuple(v) == (None, None):
                raise ValueError("employee count ranges need from and/or to, "
                                 "non-negative integers")
            out.add((v[0], v[1]))
        return sorted(out, key=lambda r: (r[0] or 0, r[1] if r[1] is not None else 1 << 62))
    out = set()
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("filter values must be non-empty strings")
        v = v.strip()
        if key == "domains":
            v = norm_domain(v)
        elif key == "seniorities":
            v = canon_seniority(v)
        elif key == "departments":
            v = canon_department(v)
        elif key == "sizes":
            if v not in SIZE_BOUNDS:
                raise ValueError("sizes are " + ", ".join(SIZE_BOUNDS))
        elif key != "names":
            v = v.lower()
        out.add(v)
    return sorted(out)


def canon_clauses(clauses):
    """[(key, [values])] sorted and merged into their canonical form. ValueError when a
    value is bad. Two clauses with the same key stay two clauses (both must hold)."""
    out = []
    for key, values in clauses:
        vals = norm_clause_values(key, values)
        if not vals:
            raise ValueError("a filter needs at least one value")
        out.append((key, tuple(vals)))
    out.sort(key=lambda c: (c[0], json.dumps(c[1])))
    return tuple(out)


def clauses_json(clauses):
    return [[k, [list(v) if isinstance(v, tuple) else v for v in vals]]
            for k, vals in clauses]


def clauses_from_json(obj, keys):
    if not isinstance(obj, list):
        raise ValueError("bad clauses")
    cl = []
    for c in obj:
        if not isinstance(c, list) or len(c) != 2 or c[0] not in keys \
                or not isinstance(c[1], list):
            raise ValueError("bad clause")
        cl.append((c[0], c[1]))
    return canon_clauses(cl)


def query_hash(kind, clauses):
    return hashlib.md5((kind + "|" + json.dumps(clauses_json(clauses))).encode()
                       ).hexdigest()[:16]


def company_candidates(clauses):
    """The domains a search names (sorted), or None when it names none."""
    doms = []
    named = False
    for key, vals in clauses:
        if key == "domains":
            named = True
            doms.extend(vals)
        elif key == "names":
            named = True
            doms.extend(company_slug_domain(v) for v in vals)
    if not named:
        return None
    return sorted(set(doms))


def token_encode(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_decode(tok):
    if not isinstance(tok, str) or not tok or len(tok) > 16384:
        raise ValueError("bad token")
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        obj = json.loads(raw)
    except (ValueError, binascii.Error):
        raise ValueError("bad token")
    if not isinstance(obj, dict):
        raise ValueError("bad token")
    return obj


# ---------------------------------------------------------------------------
# Search requests: each provider's request shape -> clauses (see docs/providers.md).
# ---------------------------------------------------------------------------

class SearchError(Exception):
    """A search request the provider refuses with 400."""


class SearchReq:
    __slots__ = ("kind", "clauses", "offset", "limit", "ppc", "titlecase", "mappings")

    def __init__(self, kind, clauses, offset=0, limit=10, ppc=None, titlecase=False,
                 mappings=None):
        self.kind = kind            # "people" or "companies"
        self.clauses = clauses      # canonical clauses
        self.offset = offset
        self.limit = limit
        self.ppc = ppc              # Surfe peoplePerCompany, when it applies
        self.titlecase = titlecase
        self.mappings = mappings    # Surfe organizationIDMappings


PDL_PEOPLE_FIELDS = {
    "job_company_website": "domains", "job_company_name": "names",
    "job_title": "titles", "job_title_levels": "seniorities",
    "job_title_role": "departments", "location_country": "countries",
    "job_company_industry": "industries", "job_company_size": "sizes",
    "job_company_location_country": "company_countries",
    "job_company_employee_count": "employee_count",
}
PDL_COMPANY_FIELDS = {
    "website": "domains", "name": "names", "industry": "industries", "size": "sizes",
    "location.country": "countries", "location_country": "countries",
    "employee_count": "employee_count",
}
PDL_DATASETS = frozenset(("resume", "email", "phone", "mobile_phone", "street_address",
                          "consumer_social", "developer", "all"))


def make_clauses(clauses):
    try:
        return canon_clauses(clauses)
    except ValueError as e:
        raise SearchError(str(e))


def es_clauses(node, fields):
    """Clauses of the Elasticsearch subset the simulator understands."""
    if not isinstance(node, dict) or len(node) != 1:
        raise SearchError("each query clause must be an object with exactly one key")
    (op, arg), = node.items()
    if op == "bool":
        if not isinstance(arg, dict) or not arg:
            raise SearchError("bool must be a non-empty object")
        out = []
        for k, v in arg.items():
            if k in ("must", "filter"):
                for c in (v if isinstance(v, list) else [v]):
                    out.extend(es_clauses(c, fields))
            elif k == "should":
                key, vals = None, []
                for c in (v if isinstance(v, list) else [v]):
                    cl = es_clauses(c, fields)
                    if len(cl) != 1 or (key is not None and cl[0][0] != key):
                        raise SearchError("a should list must hold leaf clauses on one field")
                    key = cl[0][0]
                    vals.extend(cl[0][1])
                if key is None:
                    raise SearchError("should must not be empty")
                out.append((key, vals))
            elif k == "minimum_should_match":
                if v not in (1, "1"):
                    raise SearchError("minimum_should_match must be 1")
            else:
                raise SearchError("bool.%s is not supported" % k)
        return out
    if op in ("term", "terms", "match", "match_phrase", "range"):
        if not isinstance(arg, dict) or len(arg) != 1:
            raise SearchError("%s must name exactly one field" % op)
        (field, val), = arg.items()
        key = fields.get(field)
        if key is None:
            raise SearchError("field %r cannot be searched here" % field)
        if op == "range":
            if key != "employee_count" or not isinstance(val, dict) or not val or \
                    any(k not in ("gte", "lte", "gt", "lt") for k in val):
                raise SearchError("range works on the employee count with gte/lte/gt/lt")
            lo, hi = val.get("gte"), val.get("lte")
            if "gt" in val:
                lo = val["gt"] + 1 if isinstance(val["gt"], int) else val["gt"]
            if "lt" in val:
                hi = val["lt"] - 1 if isinstance(val["lt"], int) else val["lt"]
            return [(key, [[lo, hi]])]
        if key == "employee_count":
            raise SearchError("the employee count takes a range query")
        if isinstance(val, dict):
            val = val.get("value", val.get("query"))
        if op == "terms":
            if not isinstance(val, list):
                raise SearchError("terms needs a list of values")
            vals = val
        else:
            vals = [val]
        return [(key, vals)]
    raise SearchError("%s queries are not supported" % op)


SQL_TOKEN = re.compile(r"\s*('(?:[^']|'')*'|\(|\)|,|=|[A-Za-z_][A-Za-z0-9_.]*|\S)")


def sql_clauses(sql, table, fields):
    m = re.match(r"\s*SELECT\s+\*\s+FROM\s+([A-Za-z_]+)\s+WHERE\s+(.*?);?\s*$", sql,
                 re.I | re.S)
    if not m:
        raise SearchError("sql must read SELECT * FROM %s WHERE ..." % table)
    if m.group(1).lower() != table:
        raise SearchError("sql must select from %s" % table)
    toks = []
    rest = m.group(2)
    pos = 0
    while pos < len(rest):
        t = SQL_TOKEN.match(rest, pos)
        if not t or not t.group(1):
            break
        toks.append(t.group(1))
        pos = t.end()
    i = 0
    out = []

    def lit(t):
        if t is None or len(t) < 2 or t[0] != "'" or t[-1] != "'":
            raise SearchError("sql values must be quoted strings")
        return t[1:-1].replace("''", "'")

    while True:
        if i >= len(toks):
            raise SearchError("sql condition expected")
        field = toks[i]
        key = fields.get(field.lower())
        if key is None or key == "employee_count":
            raise SearchError("field %r cannot be searched here" % field)
        op = toks[i + 1].upper() if i + 1 < len(toks) else None
        if op == "=":
            out.append((key, [lit(toks[i + 2] if i + 2 < len(toks) else None)]))
            i += 3
        elif op == "LIKE":
            v = lit(toks[i + 2] if i + 2 < len(toks) else None)
            if key != "titles":
                raise SearchError("LIKE works on job_title only")
            v = v.strip("%")
            if "%" in v or "_" in v:
                raise SearchError("LIKE takes '%text%' only")
            out.append((key, [v]))
            i += 3
        elif op == "IN":
            if i + 2 >= len(toks) or toks[i + 2] != "(":
                raise SearchError("IN needs a list in parentheses")
            j = i + 3
            vals = []
            while True:
                vals.append(lit(toks[j] if j < len(toks) else None))
                j += 1
                if j < len(toks) and toks[j] == ",":
                    j += 1
                    continue
                if j < len(toks) and toks[j] == ")":
                    j += 1
                    break
                raise SearchError("IN list not closed")
            out.append((key, vals))
            i = j
        else:
            raise SearchError("sql conditions are field = 'v', field IN ('a', 'b') or "
                              "job_title LIKE '%v%', joined by AND")
        if i >= len(toks):
            break
        if toks[i].upper() != "AND":
            raise SearchError("sql conditions must be joined by AND")
        i += 1
    return out


def pdl_search_request(kind, params):
    """SearchReq from PDL search parameters (GET query or POST body)."""
    fields = PDL_PEOPLE_FIELDS if kind == "people" else PDL_COMPANY_FIELDS
    query, sql = params.get("query"), params.get("sql")
    if query in (None, "") and sql in (None, ""):
        raise SearchError("You must provide either a query or a sql parameter")
    if query not in (None, "") and sql not in (None, ""):
        raise SearchError("Provide either query or sql, not both")
    if query not in (None, ""):
        if isinstance(query, str):
            try:
                query = json.loads(query)
            except ValueError:
                raise SearchError("query is not valid JSON")
        if isinstance(query, dict) and set(query) == {"query"}:
            query = query["query"]
        raw = es_clauses(query, fields)
    else:
        if not isinstance(sql, str):
            raise SearchError("sql must be a string")
        raw = sql_clauses(sql, "person" if kind == "people" else "company",
                          {k.lower(): v for k, v in fields.items()})
    if not raw:
        raise SearchError("The query must filter on at least one field")
    clauses = make_clauses(raw)
    size = params.get("size", 1)
    try:
        if isinstance(size, bool) or isinstance(size, float):
            raise ValueError
        size = int(size)
    except (TypeError, ValueError):
        raise SearchError("size must be an integer")
    if not 1 <= size <= PDL_SEARCH_MAX:
        raise SearchError("size must be between 1 and %d" % PDL_SEARCH_MAX)
    tok = params.get("scroll_token")
    frm = params.get("from")
    if tok not in (None, "") and frm not in (None, ""):
        raise SearchError("from and scroll_token cannot be used together")
    offset = 0
    if tok not in (None, ""):
        m = re.fullmatch(r"(\d{1,9})\$([0-9a-f]{16})", str(tok))
        if not m:
            raise SearchError("scroll_token is not valid")
        if m.group(2) != query_hash(kind, clauses):
            raise SearchError("scroll_token does not belong to this query")
        offset = int(m.group(1))
    elif frm not in (None, ""):
        try:
            offset = int(frm)
        except (TypeError, ValueError):
            raise SearchError("from must be an integer")
        if not 0 <= offset <= PDL_FROM_MAX:
            raise SearchError("from must be between 0 and %d" % PDL_FROM_MAX)
    ds = params.get("dataset")
    if ds not in (None, ""):
        for d in str(ds).split(","):
            if d.strip().lstrip("-") not in PDL_DATASETS:
                raise SearchError("dataset %r is not one of %s"
                                  % (d, ", ".join(sorted(PDL_DATASETS))))
    tc = params.get("titlecase")
    titlecase = tc is True or (isinstance(tc, str) and tc.lower() == "true")
    return SearchReq(kind, clauses, offset, size, None, titlecase)


SURFE_PEOPLE_FILTERS = {"jobTitles": "titles", "seniorities": "seniorities",
                        "departments": "departments", "countries": "countries"}
SURFE_COMPANY_FILTERS = {"domains": "domains", "names": "names",
                         "industries": "industries", "countries": "countries",
                         "employeeCount": "employee_count"}


def surfe_filter_clauses(obj, table, where, rename=None):
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise SearchError(where + " must be an object")
    out = []
    for k, v in obj.items():
        key = table.get(k)
        if key is None:
            raise SearchError("%s.%s is not a supported filter" % (where, k))
        if rename and key in rename:
            key = rename[key]
        if key == "employee_count":
            if not isinstance(v, dict) or not set(v) <= {"from", "to"} or not v:
                raise SearchError(where + ".employeeCount must be {from, to}")
            out.append((key, [[v.get("from"), v.get("to")]]))
            continue
        if not isinstance(v, list):
            raise SearchError("%s.%s must be a list of strings" % (where, k))
        if v:
            out.append((key, v))
    return out


def limit_of(body, name, default, top):
    lim = body.get(name, default)
    if not isinstance(lim, int) or isinstance(lim, bool) or not 1 <= lim <= top:
        raise SearchError("%s must be an integer between 1 and %d" % (name, top))
    return lim


def cursor_request(kind, tok, limit):
    try:
        obj = token_decode(tok)
        if obj.get("k") != kind or not isinstance(obj.get("o"), int) or obj["o"] < 0:
            raise ValueError
        clauses = clauses_from_json(obj.get("c"), PEOPLE_KEYS if kind == "people"
                                    else COMPANY_KEYS)
    except ValueError:
        raise SearchError("the page token is not valid")
    ppc = obj.get("p")
    if ppc is not None and (not isinstance(ppc, int) or ppc < 1):
        raise SearchError("the page token is not valid")
    return SearchReq(kind, clauses, obj["o"], limit, ppc)


def surfe_search_request(kind, body):
    if not isinstance(body, dict):
        raise SearchError("The body must be a JSON object")
    limit = limit_of(body, "limit", SURFE_SEARCH_DEFAULT, SURFE_SEARCH_MAX)
    tok = body.get("pageToken")
    mappings = body.get("organizationIDMappings")
    if mappings is not None and (not isinstance(mappings, dict) or
                                 any(not isinstance(v, (str, int)) for v in mappings.values())):
        raise SearchError("organizationIDMappings must map domains to IDs")
    if tok not in (None, ""):
        r = cursor_request(kind, tok, limit)
        r.mappings = {norm_domain(k): v for k, v in (mappings or {}).items()}
        return r
    if kind == "people":
        raw = surfe_filter_clauses(body.get("companies"), SURFE_COMPANY_FILTERS,
                                   "companies", {"countries": "company_countries"})
        raw += surfe_filter_clauses(body.get("people"), SURFE_PEOPLE_FILTERS, "people")
        for k in body:
            if k not in ("companies", "people", "limit", "pageToken", "peoplePerCompany",
                         "organizationIDMappings"):
                raise SearchError("%s is not a field of this request" % k)
    else:
        raw = surfe_filter_clauses(body.get("filters"), SURFE_COMPANY_FILTERS, "filters")
        for k in body:
            if k not in ("filters", "limit", "pageToken"):
                raise SearchError("%s is not a field of this request" % k)
    if not raw:
        raise SearchError("At least one filter is required")
    clauses = make_clauses(raw)
    ppc = None
    if kind == "people" and body.get("peoplePerCompany") is not None:
        ppc = limit_of(body, "peoplePerCompany", 1, SURFE_PPC_MAX)
        if any(k not in ("domains", "names") for k, _ in clauses):
            ppc = None      # documented: ignored unless searching by domain or name only
    return SearchReq(kind, clauses, 0, limit, ppc,
                     mappings={norm_domain(k): v for k, v in (mappings or {}).items()})


GENERIC_PARAMS = {"domain": "domains", "name": "names", "title": "titles",
                  "seniority": "seniorities", "department": "departments",
                  "country": "countries", "industry": "industries", "size": "sizes",
                  "company_country": "company_countries"}


def generic_search_request(kind, method, pairs, body):
    keys = PEOPLE_KEYS if kind == "people" else COMPANY_KEYS
    keys = keys - {"employee_count"}
    if method == "GET":
        raw = {}
        limit, tok = GENERIC_SEARCH_DEFAULT, None
        for k, v in pairs:
            if k == "limit":
                try:
                    limit = int(v)
                except ValueError:
                    raise SearchError("limit must be an integer")
            elif k == "cursor":
                tok = v or None
            elif GENERIC_PARAMS.get(k) in keys:
                raw.setdefault(GENERIC_PARAMS[k], []).extend(
                    x for x in (y.strip() for y in v.split(",")) if x)
            else:
                raise SearchError("unknown parameter " + k)
        if not 1 <= limit <= GENERIC_SEARCH_MAX:
            raise SearchError("limit must be between 1 and %d" % GENERIC_SEARCH_MAX)
        raw = [(k, v) for k, v in raw.items() if v]
    else:
        if not isinstance(body, dict):
            raise SearchError("the body must be a JSON object")
        limit = limit_of(body, "limit", GENERIC_SEARCH_DEFAULT, GENERIC_SEARCH_MAX)
        tok = body.get("cursor") or None
        filters = body.get("filters") or {}
        if not isinstance(filters, dict):
            raise SearchError("filters must be an object")
        raw = []
        for k, v in filters.items():
            if k not in keys:
                raise SearchError("unknown filter " + k)
            if not isinstance(v, list):
                raise SearchError("filter %s must be a list" % k)
            if v:
                raw.append((k, v))
    if tok is not None:
        if not isinstance(tok, str):
            raise SearchError("cursor must be a string")
        return cursor_request(kind, tok, limit)
    if not raw:
        raise SearchError("at least one filter is required")
    return SearchReq(kind, make_clauses(raw), 0, limit)


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


def lusha_company_id(f):
    return 100000000 + stable_hash("lusha-company", f.get("_domain") or
                                   (f.get("company_name") or "").lower()) % 900000000


def search_id(*parts):
    return hashlib.md5("\x1f".join(parts).encode()).hexdigest()[:20]


def company_view(f):
    """A company record with its headquarters and head count (search needs them)."""
    d = f.get("_domain") or company_slug_domain(f.get("company_name") or "")
    city, state, country, zipc = company_hq(d)
    v = dict(f)
    v["_domain"] = d
    v.setdefault("city", city)
    v.setdefault("state", state)
    v.setdefault("country", country)
    v.setdefault("location", city + ", " + state + ", " + country)
    v["_hq_country"] = v["country"]
    v["_employees"] = company_employee_count(d, f.get("company_size"))
    return v


def person_view(f):
    v = dict(f)
    d = v.get("_domain") or ""
    v["_hq_country"] = company_hq(d)[2] if d else None
    v["_employees"] = company_employee_count(d, f.get("company_size")) if d else 0
    return v


def render_pdl_search_person(v, titlecase):
    d = render_pdl_person(v, None, titlecase)["data"]
    d["id"] = search_id("pdl-person", v.get("business_email") or v.get("linkedin_url") or "",
                        v.get("_domain") or "")
    hq = v.get("_hq_country")
    d["job_company_location_country"] = (hq if (titlecase or hq is None) else hq.lower())
    return d


def render_pdl_search_company(v, titlecase):
    c = render_pdl_company(v, None, titlecase)
    del c["status"], c["likelihood"]
    c["id"] = search_id("pdl-company", v["_domain"])
    c["employee_count"] = v["_employees"]

    def lc(x):
        return x if (titlecase or x is None) else x.lower()
    c["location"] = {"name": lc(v.get("location")), "locality": lc(v.get("city")),
                     "region": lc(v.get("state")), "country": lc(v.get("country"))}
    return c


def render_surfe_search_person(v, mappings):
    g = v.get
    p = {}
    _put(p, "firstName", g("first_name"))
    _put(p, "lastName", g("last_name"))
    _put(p, "jobTitle", g("title"))
    p["seniorities"] = [g("seniority")] if g("seniority") else []
    p["departments"] = [g("department")] if g("department") else []
    _put(p, "companyName", g("company_name"))
    _put(p, "companyDomain", g("_domain"))
    _put(p, "country", g("country"))
    _put(p, "location", g("location"))
    _put(p, "linkedInUrl", g("linkedin_url"))
    if mappings and g("_domain") in mappings:
        p["externalID"] = str(mappings[g("_domain")])
    return p


def render_surfe_search_company(v):
    g = v.get
    c = {}
    _put(c, "name", g("company_name"))
    _put(c, "domain", g("_domain"))
    _put(c, "industry", g("industry"))
    c["employeeCount"] = v["_employees"]
    _put(c, "revenue", g("company_revenue"))
    c["hqCountry"] = COUNTRY_CODES.get(g("country"), (g("country") or "").lower())
    _put(c, "hqAddress", g("location"))
    return c


def render_generic_search_person(v):
    g = v.get
    r = {}
    _put(r, "first_name", g("first_name"))
    _put(r, "last_name", g("last_name"))
    r["job"] = {k: x for k, x in (("title", g("title")), ("seniority", g("seniority")),
                                  ("department", g("department"))) if x is not None}
    r["company"] = {k: x for k, x in (("name", g("company_name")), ("domain", g("_domain")))
                    if x is not None}
    r["location"] = {k: x for k, x in (("city", g("city")), ("state", g("state")),
                                       ("country", g("country"))) if x is not None}
    _put(r, "linkedin", g("linkedin_url"))
    _put(r, "email", g("business_email"))
    return r


def render_generic_search_company(v):
    g = v.get
    r = {}
    _put(r, "name", g("company_name"))
    _put(r, "domain", g("_domain"))
    _put(r, "industry", g("industry"))
    _put(r, "size", g("company_size"))
    _put(r, "revenue", g("company_revenue"))
    t = _tech_list(v)
    if t is not None:
        r["technologies"] = t
    r["location"] = {"country": g("country")}
    return r


# The enrichd fields each search answer carries (what GET /_sim/search_expected
# reports); every record also carries "domain", the company's domain.
SEARCH_FIELDS = {
    ("pdl", "people"): ("first_name", "last_name", "title", "seniority", "department",
                        "company_name", "industry", "company_size", "linkedin_url",
                        "location", "city", "state", "country", "zip_code", "phone",
                        "business_email", "personal_email"),
    ("pdl", "companies"): ("company_name", "industry", "company_size", "company_revenue",
                           "technologies", "location", "city", "state", "country"),
    ("surfe", "people"): ("first_name", "last_name", "title", "seniority", "department",
                          "company_name", "linkedin_url", "location", "country"),
    ("surfe", "companies"): ("company_name", "industry", "company_size",
                             "company_revenue", "location", "country"),
    ("generic", "people"): ("first_name", "last_name", "title", "seniority", "department",
                            "company_name", "linkedin_url", "city", "state", "country",
                            "business_email"),
    ("generic", "companies"): ("company_name", "industry", "company_size",
                               "company_revenue", "technologies", "country"),
}


def flat_record(prov, kind, v):
    out = {}
    for k in SEARCH_FIELDS[(prov, kind)]:
        x = v.get(k)
        if k == "company_size" and prov == "surfe" and kind == "companies":
            x = size_of_count(v["_employees"])
        if x is not None:
            out[k] = x
    out["domain"] = v.get("_domain")
    return out


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


def error_obj(prov, status, message=None, errors=None, ep=None):
    """A whole-call error body in the provider's shape. ep is the endpoint: Lusha's
    bulk company endpoint documents its own shape."""
    msg = message or DEFAULT_MSG.get(status) or ("Server error" if status >= 500
                                                 else "Error")
    if prov == "lusha" and ep == "company_bulk":
        if status == 401 and not message:
            msg = "Unauthorized"
        return {"error": {"code": status, "message": msg}}
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
    if "items" in st:
        items = st["items"]
        if not isinstance(items, dict):
            raise ControlError(where + ": items must be an object keyed by item id or #index")
        for k, v in items.items():
            if isinstance(v, str):
                v = {"kind": v}
            if not isinstance(v, dict) or v.get("kind") not in ITEM_KINDS:
                raise ControlError("%s: items[%r] must be hit, miss, error or "
                                   "{kind, status, code, message}" % (where, k))
            stv = v.get("status")
            if stv is not None and (not isinstance(stv, int) or isinstance(stv, bool)
                                    or not 100 <= stv <= 599):
                raise ControlError("%s: items[%r].status must be an HTTP status" % (where, k))
            for f in ("code", "message"):
                if f in v and not isinstance(v[f], str):
                    raise ControlError("%s: items[%r].%s must be a string" % (where, k, f))
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
               "status", "kind", "scripted", "items", "credits")


class Outcome:
    """What a provider call answers, before meters and delay are added. items is the
    number of items of a bulk call or of records a search answered (else None)."""
    __slots__ = ("status", "body", "kind", "charged", "headers", "ctype", "drop",
                 "rl_window", "quota", "items")

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
        self.items = None


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

        endpoint, methods, job_id = route(prov, sub, req.method)
        phase = None
        if prov == "surfe":
            phase = "poll" if endpoint == "poll" else "start"

        step = None
        lim = None
        out = None
        body_obj = None
        if methods is None:
            out = Outcome(404, dumps(error_obj(prov, 404, "No such endpoint")), "not_found")
        elif endpoint is None:
            out = Outcome(405, dumps(error_obj(prov, 405)), "bad_request")
        elif not key:
            msg = {"pdl": "Missing API key", "lusha": "Unauthorized",
                   "surfe": "Missing bearer token", "generic": "unauthorized"}[prov]
            out = Outcome(401, dumps(error_obj(prov, 401, msg, ep=endpoint)), "invalid_key")
        else:
            lim = self.limits.get((prov, key))
            if lim is not None:
                if lim.windows:
                    blocked = lim.check(now)
                    if blocked is not None:
                        out = self.limited_outcome(prov, blocked, ep=endpoint)
                if out is None and lim.credits is not None and lim.credits <= 0 \
                        and phase != "poll":
                    lim.no_credit += 1
                    out = self.quota_outcome(prov, {}, endpoint)
            if out is None:
                script = self.scripts.get((prov, key))
                if script is not None:
                    step = script.take(phase)
                if req.method == "POST" and req.body:
                    try:
                        body_obj = json.loads(req.body)
                    except ValueError:
                        body_obj = None
                out = self.answer(prov, endpoint, req, step, body_obj, job_id, key, lim)

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
        items = out.items
        if items is None:
            items = bulk_size(endpoint, body_obj)
        self.record(now, prov, req, key, body_obj, status, out.kind, step is not None,
                    items, out.charged)
        return Reply(out.status, out.body, hdrs, out.ctype, delay, out.drop)

    # -- bookkeeping --------------------------------------------------------
    def record(self, now, prov, req, key, body_obj, status, kind, scripted, items=None,
               credits=0):
        self.seq += 1
        self.total += 1
        kname = key if key is not None else "(none)"
        st = str(status)
        bp = self.by_provider.get(prov)
        if bp is None:
            bp = self.by_provider[prov] = {"calls": 0, "status": {}, "items": 0,
                                           "credits": 0}
        bp["calls"] += 1
        bp["status"][st] = bp["status"].get(st, 0) + 1
        bp["items"] += items or 0
        bp["credits"] += credits
        bk = self.by_key.get(kname)
        if bk is None:
            bk = self.by_key[kname] = {"calls": 0, "status": {}, "provider": {},
                                       "credits": 0}
        bk["calls"] += 1
        bk["credits"] += credits
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
                               status, kind, scripted, items, credits))

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
            h.append(("x-call-credits-spent", str(out.charged)))
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
    def limited_outcome(self, prov, blocked, retry_after=True, message=None, ep=None):
        """A 429 from a real window: (window, limit, seconds until a slot frees)."""
        window, limit, wait = blocked
        secs = max(1, int(math.ceil(wait)))
        hdrs = []
        if prov == "pdl":
            hdrs.append(("x-ratelimit-reset", str(int(math.ceil(time.time() + wait)))))
        if retry_after:
            hdrs.append(("Retry-After", str(secs)))
        o = Outcome(429, dumps(self.rate_body(prov, window, message, ep)), "rate_limited",
                    headers=hdrs)
        o.rl_window = window
        return o

    def rate_body(self, prov, window, message=None, ep=None):
        if prov == "lusha":
            return error_obj(prov, 429, message or LUSHA_WINDOW_MSG.get(window,
                                                                        "Rate limit exceeded"),
                             ep=ep)
        if prov == "surfe":
            return error_obj(prov, 429, message or "Too many requests, slow down")
        if prov == "pdl":
            return error_obj(prov, 429, message or
                             "You have hit your %s rate limit" % window)
        return error_obj(prov, 429, message or "rate limited")

    def quota_outcome(self, prov, step, ep=None):
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
        o = Outcome(402, dumps(error_obj(prov, 402, msg, ep=ep)), "quota", headers=hdrs)
        o.quota = True
        return o

    def answer(self, prov, endpoint, req, step, body_obj, job_id, key, lim=None):
        """The answer of one authenticated call, by step (scripted) or by database."""
        kind = step.get("kind") if step is not None else None
        if kind == "slow":
            kind = step.get("then_kind", "hit")
        if kind == "default":
            kind = None
        ep = endpoint
        if prov == "surfe" and endpoint == "poll" and kind in (None, "hit", "miss"):
            return self.surfe_poll(job_id)
        if kind in (None, "hit", "miss"):
            if endpoint == "start":
                return self.surfe_start(req, body_obj, step, kind, key, lim)
            if endpoint == "person_bulk":
                if prov == "pdl":
                    return self.pdl_bulk(body_obj, step, kind, lim)
                return self.lusha_bulk_person(body_obj, step, kind, lim)
            if endpoint == "company_bulk":
                return self.lusha_bulk_company(body_obj, step, kind, lim)
            if endpoint in SEARCH_ENDPOINTS:
                return self.search_call(prov, endpoint, req, body_obj, kind, lim)
            return self.lookup(prov, endpoint, req, step, kind)
        if kind == "invalid_key":
            return Outcome(401, dumps(error_obj(prov, 401, step.get("message"), ep=ep)),
                           "invalid_key")
        if kind == "quota":
            return self.quota_outcome(prov, step, ep)
        if kind == "forbidden":
            return Outcome(403, dumps(error_obj(prov, 403, step.get("message"), ep=ep)),
                           "forbidden")
        if kind == "bad_request":
            return Outcome(400, dumps(error_obj(prov, 400, step.get("message"), ep=ep)),
                           "bad_request")
        if kind == "rate_limited":
            return self.scripted_429(prov, step, ep)
        if kind == "error":
            status = int(step.get("status") or 503)
            if "body" in step:
                b = step["body"]
                body = b.encode() if isinstance(b, str) else dumps(b)
            else:
                body = dumps(error_obj(prov, status, step.get("message"), ep=ep))
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

    def scripted_429(self, prov, step, ep=None):
        window = step.get("window", "minute")
        reset_s = step.get("reset_s", 30)
        retry_after = step.get("retry_after", True)
        hdrs = []
        if reset_s is not None:
            if prov == "pdl":
                hdrs.append(("x-ratelimit-reset", str(int(time.time() + reset_s))))
            if retry_after:
                hdrs.append(("Retry-After", str(int(reset_s))))
        o = Outcome(429, dumps(self.rate_body(prov, window, step.get("message"), ep)),
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
                f = forced_fields(prov, ident, is_company)
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
        status, obj, kind, charged = self.render_lookup_obj(prov, endpoint, params, found,
                                                            f, likelihood, step)
        return Outcome(status, dumps(obj), kind, charged)

    def render_lookup_obj(self, prov, endpoint, params, found, f, likelihood, step):
        """(status, body object, kind, credits) of a single lookup; a PDL bulk item is
        the same object."""
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
            required = None
            if endpoint != "company" and params.get("required"):
                try:
                    required = parse_required(params["required"])
                except ValueError as e:
                    return (400, error_obj("pdl", 400, "required: " + str(e)), "bad_request",
                            0)
            if found and lk < min_lk:
                found = False
            tc = params.get("titlecase", "").lower() == "true"
            body = None
            if found:
                body = (render_pdl_company(f, lk, tc) if endpoint == "company"
                        else render_pdl_person(f, lk, tc))
                if required is not None and not required_holds(required, body["data"]):
                    found = False
            if not found:
                return (404, error_obj("pdl", 404, "No records were found matching your "
                                       "request"), "miss", 0)
            return 200, body, "hit", 1
        if prov == "lusha":
            if not found:
                style = (step or {}).get("style") or c["lusha_miss_style"]
                if style == "empty":
                    if endpoint == "company":
                        body = {"data": None}
                    else:
                        body = {"contact": lusha_empty_contact()}
                    return 200, body, "miss", 0
                what = "Company" if endpoint == "company" else "Contact"
                return 404, error_obj("lusha", 404, what + " not found"), "miss", 0
            body = (render_lusha_company(f) if endpoint == "company"
                    else render_lusha_person(f))
            return 200, body, "hit", 1
        # generic
        if not found:
            return 404, {"error": "not found"}, "miss", 0
        return 200, render_generic_person(f), "hit", 1

    # -- bulk calls ---------------------------------------------------------------------
    def resolve_item(self, prov, ident, is_company, kind, step, ov, known=True):
        """(state, fields, likelihood) for one item of a bulk call: state is hit, miss or
        error. kind is the step's (hit / miss / None), ov the item's own override; known
        False means the item identifies no one (only a forced hit finds it)."""
        if known:
            found, f, lk = self.resolve(prov, ident, is_company)
        else:
            found, f, lk = False, None, None
        if kind == "miss":
            found = False
        elif kind == "hit" and not found:
            f, found = forced_fields(prov, ident, is_company), True
        if ov is not None:
            if ov["kind"] == "error":
                return "error", None, None
            if ov["kind"] == "miss":
                found = False
            elif not found:
                f, found = forced_fields(prov, ident, is_company), True
        if found and step is not None:
            f = overlay(f, step)
            if step.get("likelihood") is not None:
                lk = int(step["likelihood"])
        return ("hit" if found else "miss"), f, lk

    def bulk_outcome(self, prov, ep, body, n_items, charged, any_hit):
        out = Outcome(200, dumps(body), "hit" if any_hit else "miss", charged)
        out.items = n_items
        return out

    def bad_bulk(self, prov, ep, msg, errors=None):
        return Outcome(400, dumps(error_obj(prov, 400, msg, errors, ep=ep)), "bad_request")

    def pdl_bulk(self, body, step, kind, lim):
        ep = "person_bulk"
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return self.bad_bulk("pdl", ep, "The body must be a JSON object with a "
                                 "requests array")
        reqs = body["requests"]
        if not 1 <= len(reqs) <= PDL_BULK_MAX:
            return self.bad_bulk("pdl", ep, "requests must hold 1 to %d requests"
                                 % PDL_BULK_MAX)
        common = {k: v for k, v in body.items() if k != "requests"}
        credits_left = lim.credits if lim is not None else None
        items = []
        charged = 0
        for i, r in enumerate(reqs):
            meta = r.get("metadata") if isinstance(r, dict) else None
            if not isinstance(r, dict) or not isinstance(r.get("params", {}), dict):
                item = error_obj("pdl", 400, "Each request needs a params object")
            else:
                params = {}
                for k, v in list(common.items()) + list(r.get("params", {}).items()):
                    if isinstance(v, list):
                        v = v[0] if v else ""
                    if isinstance(v, bool):
                        v = "true" if v else "false"
                    elif v is None:
                        continue
                    params[k] = v if isinstance(v, str) else json.dumps(v)
                item, hit = self.pdl_bulk_item(params, step, kind, i, meta)
                if hit and credits_left is not None:
                    if credits_left <= 0:
                        item = error_obj("pdl", 402, "You have hit your account maximum "
                                         "for this endpoint")
                        hit = False
                    else:
                        credits_left -= 1
                if hit:
                    charged += 1
            if meta is not None:
                item["metadata"] = meta
            items.append(item)
        return self.bulk_outcome("pdl", ep, items, len(reqs), charged, charged > 0)

    def pdl_bulk_item(self, params, step, kind, index, meta):
        """(item object, charged) for one request of a PDL bulk call: exactly what the
        single endpoint answers for the same parameters."""
        ident = ident_from_query("pdl", "person", params)
        if ident is None:
            return error_obj("pdl", 400, "Not enough information to identify a person"), False
        mid = None
        if isinstance(meta, dict) and meta.get("id") is not None:
            mid = str(meta["id"])
        ov = item_override(step, index, mid)
        state, f, lk = self.resolve_item("pdl", ident, False, kind, step, ov)
        if state == "error":
            st = ov.get("status") or 500
            return error_obj("pdl", st, ov.get("message")), False
        status, obj, _, charged = self.render_lookup_obj("pdl", "person", params,
                                                         state == "hit", f, lk, step)
        return obj, charged > 0

    def lusha_bulk_person(self, body, step, kind, lim):
        ep = "person_bulk"
        if not isinstance(body, dict) or not isinstance(body.get("contacts"), list):
            return self.bad_bulk("lusha", ep, "contacts must be a list of contact objects",
                                 ["contacts is required"])
        contacts = body["contacts"]
        if not 1 <= len(contacts) <= LUSHA_BULK_MAX:
            return self.bad_bulk("lusha", ep, "contacts must hold 1 to %d contacts"
                                 % LUSHA_BULK_MAX, ["contacts"])
        if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
            return self.bad_bulk("lusha", ep, "metadata must be an object", ["metadata"])
        parsed = []
        seen = set()
        for i, c in enumerate(contacts):
            where = "contacts[%d]" % i
            if not isinstance(c, dict):
                return self.bad_bulk("lusha", ep, where + " must be an object", [where])
            cid = c.get("contactId")
            if isinstance(cid, int) and not isinstance(cid, bool):
                cid = str(cid)
            if not isinstance(cid, str) or not cid:
                return self.bad_bulk("lusha", ep, where + ".contactId is required",
                                     [where + ".contactId"])
            if cid in seen:
                return self.bad_bulk("lusha", ep, "contactId %r appears twice" % cid,
                                     [where + ".contactId"])
            seen.add(cid)
            comps = c.get("companies") or []
            if not isinstance(comps, list) or any(not isinstance(x, dict) for x in comps):
                return self.bad_bulk("lusha", ep, where + ".companies must be a list of "
                                     "objects", [where + ".companies"])
            comp = next((x for x in comps if x.get("isCurrent")), comps[0] if comps else {})
            full = str(c.get("fullName") or "").split()
            ident = make_ident(email=str(c.get("email") or ""),
                               linkedin=str(c.get("linkedinUrl") or ""),
                               first=full[0] if full else "",
                               last=" ".join(full[1:]),
                               company=str(comp.get("name") or ""),
                               domain=str(comp.get("domain") or comp.get("fqdn") or ""))
            if not (ident.email or ident.linkedin or
                    (full and (ident.company or ident.domain))):
                return self.bad_bulk("lusha", ep, where + ": give email, linkedinUrl, or "
                                     "fullName with a company name or domain", [where])
            parsed.append((cid, ident))
        credits_left = lim.credits if lim is not None else None
        out_contacts = {}
        companies = {}
        charged = 0
        for i, (cid, ident) in enumerate(parsed):
            ov = item_override(step, i, cid)
            state, f, _ = self.resolve_item("lusha", ident, False, kind, step, ov)
            if state == "error":
                entry = {"data": None, "error": {
                    "code": ov.get("code") or "INTERNAL_ERROR",
                    "message": ov.get("message") or "Could not process this contact"},
                    "isCreditCharged": False}
            elif state == "miss":
                entry = lusha_empty_contact()
            elif credits_left is not None and credits_left <= 0:
                entry = {"data": None, "error": {"code": "INSUFFICIENT_CREDITS",
                                                 "message": "Not enough credits"},
                         "isCreditCharged": False}
            else:
                if credits_left is not None:
                    credits_left -= 1
                charged += 1
                entry = render_lusha_person(f)["contact"]
                if f.get("company_name") or f.get("_domain"):
                    cid_n = lusha_company_id(f)
                    entry["data"]["companyId"] = cid_n
                    comp = render_lusha_company(f)["data"]
                    comp["id"] = cid_n
                    companies[str(cid_n)] = comp
            out_contacts[cid] = entry
        return self.bulk_outcome("lusha", ep, {"contacts": out_contacts,
                                               "companies": companies},
                                 len(parsed), charged, charged > 0)

    def lusha_bulk_company(self, body, step, kind, lim):
        ep = "company_bulk"
        if not isinstance(body, dict) or not isinstance(body.get("companies"), list):
            return self.bad_bulk("lusha", ep, "companies must be a list of company objects")
        comps = body["companies"]
        if not 1 <= len(comps) <= LUSHA_BULK_MAX:
            return self.bad_bulk("lusha", ep, "companies must hold 1 to %d companies"
                                 % LUSHA_BULK_MAX)
        parsed = []
        seen = set()
        for i, c in enumerate(comps):
            where = "companies[%d]" % i
            if not isinstance(c, dict):
                return self.bad_bulk("lusha", ep, where + " must be an object")
            cid = c.get("id")
            if isinstance(cid, int) and not isinstance(cid, bool):
                cid = str(cid)
            if not isinstance(cid, str) or not cid:
                return self.bad_bulk("lusha", ep, where + ".id is required")
            if cid in seen:
                return self.bad_bulk("lusha", ep, "id %r appears twice" % cid)
            seen.add(cid)
            ident = make_ident(domain=str(c.get("domain") or c.get("fqdn") or ""),
                               company=str(c.get("name") or ""))
            if not (ident.domain or ident.company):
                return self.bad_bulk("lusha", ep, where + ": give domain, fqdn or name")
            parsed.append((cid, ident))
        credits_left = lim.credits if lim is not None else None
        out = {}
        charged = 0
        for i, (cid, ident) in enumerate(parsed):
            ov = item_override(step, i, cid)
            state, f, _ = self.resolve_item("lusha", ident, True, kind, step, ov)
            if state == "error":
                entry = {"data": None, "error": {
                    "code": ov.get("code") or "INTERNAL_ERROR",
                    "message": ov.get("message") or "Could not process this company"},
                    "isCreditCharged": False}
            elif state == "miss":
                entry = lusha_empty_contact()
            elif credits_left is not None and credits_left <= 0:
                entry = {"data": None, "error": {"code": "INSUFFICIENT_CREDITS",
                                                 "message": "Not enough credits"},
                         "isCreditCharged": False}
            else:
                if credits_left is not None:
                    credits_left -= 1
                charged += 1
                entry = {"data": render_lusha_company(f)["data"], "error": None,
                         "isCreditCharged": True}
            out[cid] = entry
        return self.bulk_outcome("lusha", ep, {"companies": out}, len(parsed), charged,
                                 charged > 0)

    # -- search -----------------------------------------------------------------------
    def parse_search(self, prov, kind, method, pairs, body):
        """SearchReq for one search call; SearchError when the provider refuses it."""
        if prov == "pdl":
            if method == "GET":
                params = dict(pairs)
            else:
                if not isinstance(body, dict):
                    raise SearchError("The body must be a JSON object")
                params = body
            return pdl_search_request(kind, params)
        if prov == "surfe":
            return surfe_search_request(kind, body)
        return generic_search_request(kind, method, pairs, body)

    def people_universe(self, prov, clauses, ppc=None):
        """Every person a search matches, in the order pages list them."""
        ck = ("search", prov, "people", clauses, ppc)
        hit = self.cache.get(ck)
        if hit is not None:
            return hit
        doms = company_candidates(clauses)
        out = []
        for d in (DIRECTORY if doms is None else doms):
            n = 0
            for email in staff_emails(d):
                found, f, _ = self.resolve(prov, make_ident(email=email), False)
                if not found:
                    continue
                if "_domain" not in f:
                    f = dict(f, _domain=d)
                v = person_view(f)
                if all(clause_holds(v, k, vals) for k, vals in clauses):
                    out.append(v)
                    n += 1
                    if ppc and n >= ppc:
                        break
        if len(self.cache) >= ANSWER_CACHE_MAX:
            self.cache.clear()
        self.cache[ck] = out
        return out

    def companies_universe(self, prov, clauses):
        ck = ("search", prov, "companies", clauses)
        hit = self.cache.get(ck)
        if hit is not None:
            return hit
        if company_candidates(clauses) is None:
            idents = [make_ident(domain=d) for d in DIRECTORY]
        else:
            by_dom = {}
            for key, vals in clauses:
                for v in vals:
                    if key == "domains":
                        by_dom[v] = make_ident(domain=v)
                    elif key == "names":
                        by_dom.setdefault(company_slug_domain(v), make_ident(company=v))
            idents = [by_dom[d] for d in sorted(by_dom)]
        out = []
        seen = set()
        for ident in idents:
            found, f, _ = self.resolve(prov, ident, True)
            if not found:
                continue
            v = company_view(f)
            if v["_domain"] in seen:
                continue
            if all(clause_holds(v, k, vals) for k, vals in clauses):
                seen.add(v["_domain"])
                out.append(v)
        if len(self.cache) >= ANSWER_CACHE_MAX:
            self.cache.clear()
        self.cache[ck] = out
        return out

    def search_page(self, prov, sreq, credits_left=None, empty=False):
        """(views, total, next token or None, credits) of one page."""
        if empty:
            universe = []
        elif sreq.kind == "people":
            universe = self.people_universe(prov, sreq.clauses, sreq.ppc)
        else:
            universe = self.companies_universe(prov, sreq.clauses)
        total = len(universe)
        page = universe[sreq.offset:sreq.offset + sreq.limit]
        if credits_left is not None:
            cap = credits_left * 10 if prov == "surfe" else credits_left
            page = page[:max(0, cap)]
        nxt = sreq.offset + len(page)
        token = None
        if page and nxt < total:
            if prov == "pdl":
                token = "%d$%s" % (nxt, query_hash(sreq.kind, sreq.clauses))
            else:
                obj = {"k": sreq.kind, "o": nxt, "c": clauses_json(sreq.clauses)}
                if sreq.ppc:
                    obj["p"] = sreq.ppc
                token = token_encode(obj)
        credits = (len(page) + 9) // 10 if prov == "surfe" else len(page)
        return page, total, token, credits

    def search_error(self, prov, msg):
        if prov == "generic":
            return {"error": msg}
        return error_obj(prov, 400, msg)

    def search_call(self, prov, endpoint, req, body, kind, lim):
        skind = "people" if endpoint == "person_search" else "companies"
        try:
            sreq = self.parse_search(prov, skind, req.method,
                                     parse_qsl(req.query, keep_blank_values=True), body)
        except SearchError as e:
            return Outcome(400, dumps(self.search_error(prov, str(e))), "bad_request")
        credits_left = lim.credits if lim is not None else None
        page, total, token, credits = self.search_page(prov, sreq, credits_left,
                                                       empty=(kind == "miss"))
        if prov == "pdl":
            if not page:
                return Outcome(404, dumps(error_obj(
                    "pdl", 404, "No records were found matching your request")), "miss")
            render = (render_pdl_search_person if skind == "people"
                      else render_pdl_search_company)
            body = {"status": 200, "data": [render(v, sreq.titlecase) for v in page],
                    "total": total}
            if token:
                body["scroll_token"] = token
        elif prov == "surfe":
            if skind == "people":
                body = {"people": [render_surfe_search_person(v, sreq.mappings)
                                   for v in page]}
            else:
                body = {"companies": [render_surfe_search_company(v) for v in page]}
            body["total"] = total
            if token:
                body["nextPageToken"] = token
        else:
            render = (render_generic_search_person if skind == "people"
                      else render_generic_search_company)
            body = {"results": [render(v) for v in page], "total": total,
                    "paging": {"next": token}}
        out = Outcome(200, dumps(body), "hit" if page else "miss", credits)
        out.items = len(page)
        return out

    # -- Surfe ------------------------------------------------------------------------
    def surfe_start(self, req, body_obj, step, kind, key, lim=None):
        if not isinstance(body_obj, dict) or not isinstance(body_obj.get("people"), list) \
                or not body_obj["people"]:
            return Outcome(400, dumps(error_obj(
                "surfe", 400, "body must be JSON with a non-empty people list")),
                "bad_request")
        n = len(body_obj["people"])
        if n > SURFE_ENRICH_MAX:
            return Outcome(400, dumps(error_obj(
                "surfe", 400, "people must contain at most %d people" % SURFE_ENRICH_MAX)),
                "bad_request")
        if lim is not None and lim.credits is not None and lim.credits < n:
            lim.no_credit += 1
            return self.quota_outcome("surfe", {})
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
            ov = item_override(step, i, ext)
            state, f, _ = self.resolve_item("surfe", ident, False, kind, step, ov,
                                            known=ident_has_person_key(ident))
            if state == "hit":
                people.append(render_surfe_person(f, ext))
                charged += 1
            elif state == "error":
                people.append({"externalID": ext, "status": (ov.get("code") or "FAILED")})
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
        out = Outcome(202, dumps({"enrichmentID": jid,
                                  "message": "Your enrichment has started"}),
                      "pending", charged)
        out.items = n
        return out

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
        path = params.get("path")
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
            if path and c[4] != path:
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

    def c_search_expected(self, body, params):
        """What one search page answers (or, with "all", every record the search
        matches), with enrichd field names. Credits and scripts are not involved."""
        req = body if isinstance(body, dict) else {}
        if body is None and params:
            req = dict(params)
            for k in ("request", "filters"):
                if k in req:
                    try:
                        req[k] = json.loads(req[k])
                    except ValueError:
                        raise ControlError(k + " must be JSON")
            for k in ("limit", "people_per_company"):
                if k in req:
                    try:
                        req[k] = int(req[k])
                    except ValueError:
                        raise ControlError(k + " must be an integer")
            if "all" in req:
                req["all"] = req["all"].lower() in ("1", "true", "yes")
        prov = req.get("provider")
        if prov not in ("pdl", "surfe", "generic"):
            raise ControlError("provider must be pdl, surfe or generic")
        kind = req.get("kind", "people")
        if kind not in ("people", "companies"):
            raise ControlError("kind must be people or companies")
        if ("request" in req) == ("filters" in req):
            raise ControlError("give request (the provider's request) or filters")
        try:
            if "request" in req:
                sreq = self.parse_search(prov, kind, "POST", [], req["request"])
            else:
                f = req["filters"]
                keys = PEOPLE_KEYS if kind == "people" else COMPANY_KEYS
                if not isinstance(f, dict) or any(k not in keys for k in f):
                    raise ControlError("filters keys are " + ", ".join(sorted(keys)))
                raw = []
                for k, v in f.items():
                    if k == "employee_count":
                        rs = v if isinstance(v, list) else [v]
                        if any(not isinstance(r, dict) for r in rs):
                            raise ControlError("employee_count is {from, to} or a list")
                        raw.append((k, [[r.get("from"), r.get("to")] for r in rs]))
                    else:
                        raw.append((k, v if isinstance(v, list) else [v]))
                raw = [c for c in raw if c[1]]
                if not raw:
                    raise ControlError("filters must hold at least one value")
                default, top = {"pdl": (1, PDL_SEARCH_MAX),
                                "surfe": (SURFE_SEARCH_DEFAULT, SURFE_SEARCH_MAX),
                                "generic": (GENERIC_SEARCH_DEFAULT, GENERIC_SEARCH_MAX)}[prov]
                limit = req.get("limit", default)
                if not isinstance(limit, int) or not 1 <= limit <= top:
                    raise ControlError("limit must be 1..%d for %s" % (top, prov))
                cursor = req.get("cursor")
                if cursor:
                    if prov == "pdl":
                        m = re.fullmatch(r"(\d{1,9})\$([0-9a-f]{16})", str(cursor))
                        if not m:
                            raise SearchError("scroll_token is not valid")
                        sreq = SearchReq(kind, make_clauses(raw), int(m.group(1)), limit)
                        if m.group(2) != query_hash(kind, sreq.clauses):
                            raise SearchError("scroll_token does not belong to this query")
                    else:
                        sreq = cursor_request(kind, cursor, limit)
                else:
                    ppc = req.get("people_per_company")
                    if ppc is not None and (not isinstance(ppc, int) or ppc < 1):
                        raise ControlError("people_per_company must be a positive integer")
                    sreq = SearchReq(kind, make_clauses(raw), 0, limit, ppc)
        except SearchError as e:
            return {"provider": prov, "kind": kind, "status": 400, "error": str(e),
                    "records": [], "total": 0, "next_cursor": None, "credits": 0}
        if req.get("all"):
            sreq.offset, sreq.limit = 0, 1 << 30
        page, total, token, credits = self.search_page(prov, sreq)
        status = 404 if (prov == "pdl" and not page) else 200
        return {"provider": prov, "kind": kind, "status": status, "total": total,
                "records": [flat_record(prov, kind, v) for v in page],
                "next_cursor": None if req.get("all") else token,
                "credits": 0 if status != 200 else credits}

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
    ("GET", "search_expected"): Sim.c_search_expected,
    ("POST", "search_expected"): Sim.c_search_expected,
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


def forced_fields(prov, ident, is_company):
    """The record a lookup that would miss answers when a script forces a hit."""
    if is_company:
        return derive_company(ident.domain or "company.com", ident.company)[1]
    return derive_person(_unmissable(ident), prov)[1]


def lusha_empty_contact():
    return {"data": None, "error": {"code": "EMPTY_DATA",
                                    "message": "Could not find requested data"},
            "isCreditCharged": False}


# PDL "required": field names joined by AND / OR / NOT with parentheses. The names
# are those of the person record; "emails", "phones" and "profiles" are groups.
REQUIRED_GROUPS = {"emails": ("work_email", "personal_emails"),
                   "phones": ("mobile_phone", "phone_numbers"),
                   "profiles": ("linkedin_url",)}
REQUIRED_FIELDS = frozenset(("full_name", "first_name", "last_name", "job_title",
                             "job_title_role", "job_title_levels", "linkedin_url",
                             "location_name", "location_locality", "location_region",
                             "location_country", "location_postal_code", "mobile_phone",
                             "phone_numbers", "work_email", "personal_emails",
                             "job_company_name", "job_company_industry", "job_company_size",
                             "job_company_website")) | frozenset(REQUIRED_GROUPS)


def parse_required(expr):
    """A parsed "required" expression; ValueError when it is not one."""
    if not isinstance(expr, str):
        raise ValueError("must be a string")
    toks = re.findall(r"\(|\)|[A-Za-z_.]+|\S", expr)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take():
        t = peek()
        pos[0] += 1
        return t

    def factor():
        t = take()
        if t is None:
            raise ValueError("unexpected end")
        if t == "(":
            e = disj()
            if take() != ")":
                raise ValueError("missing )")
            return e
        if t.upper() == "NOT":
            return ("not", factor())
        if t.lower() not in REQUIRED_FIELDS:
            raise ValueError("unknown field %r" % t)
        return ("field", t.lower())

    def conj():
        e = factor()
        while peek() is not None and peek().upper() == "AND":
            take()
            e = ("and", e, factor())
        return e

    def disj():
        e = conj()
        while peek() is not None and peek().upper() == "OR":
            take()
            e = ("or", e, conj())
        return e

    e = disj()
    if peek() is not None:
        raise ValueError("unexpected %r" % peek())
    return e


def required_holds(e, data):
    op = e[0]
    if op == "field":
        names = REQUIRED_GROUPS.get(e[1], (e[1],))
        return any(data.get(n) not in (None, "", []) for n in names)
    if op == "not":
        return not required_holds(e[1], data)
    if op == "and":
        return required_holds(e[1], data) and required_holds(e[2], data)
    return required_holds(e[1], data) or required_holds(e[2], data)


def item_override(step, index, item_id):
    """A step's override for one bulk item (by its id, else by "#index"), or None."""
    items = step.get("items") if step is not None else None
    if not items:
        return None
    v = None
    if item_id is not None:
        v = items.get(item_id)
    if v is None:
        v = items.get("#%d" % index)
    if isinstance(v, str):
        v = {"kind": v}
    return v


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


# Provider-relative paths: method -> endpoint.
ROUTES = {
    "pdl": {"/v5/person/enrich": {"GET": "person"},
            "/v5/company/enrich": {"GET": "company"},
            "/v5/person/bulk": {"POST": "person_bulk"},
            "/v5/person/search": {"GET": "person_search", "POST": "person_search"},
            "/v5/company/search": {"GET": "company_search", "POST": "company_search"}},
    "lusha": {"/v2/person": {"GET": "person", "POST": "person_bulk"},
              "/v2/company": {"GET": "company", "POST": "company_bulk"}},
    "surfe": {"/v2/people/enrich": {"POST": "start"},
              "/v2/people/search": {"POST": "person_search"},
              "/v2/companies/search": {"POST": "company_search"}},
    "generic": {"/person": {"GET": "person"},
                "/people/search": {"GET": "person_search", "POST": "person_search"},
                "/companies/search": {"GET": "company_search", "POST": "company_search"}},
}

BULK_ENDPOINTS = frozenset(("person_bulk", "company_bulk", "start"))
# The member that lists a bulk call's items (PDL: requests, Lusha: contacts).
BULK_MEMBERS = {"person_bulk": ("requests", "contacts"), "company_bulk": ("companies",),
                "start": ("people",)}
SEARCH_ENDPOINTS = frozenset(("person_search", "company_search"))


def bulk_size(endpoint, body):
    """Items in a bulk request body (None for other calls); searches that answered
    nothing count 0."""
    if endpoint in SEARCH_ENDPOINTS:
        return 0
    if endpoint not in BULK_ENDPOINTS or not isinstance(body, dict):
        return None
    for member in BULK_MEMBERS[endpoint]:
        if isinstance(body.get(member), list):
            return len(body[member])
    return None


def route(prov, sub, method):
    """(endpoint, methods, job id) for a provider-relative path: methods is None when
    there is no such path, endpoint None when the method is not one of them."""
    m = ROUTES.get(prov, {}).get(sub)
    if m is not None:
        return m.get(method), m, None
    if prov == "surfe" and sub.startswith("/v2/people/enrich/") and len(sub) > 18 \
            and "/" not in sub[18:]:
        return ("poll" if method == "GET" else None), ("GET",), sub[18:]
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
                                  c[9], c[10], c[11], c[12])))


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
