"""Every response the integration suite receives, checked against docs/openapi.json.

harness.Client.request calls check() on each response: the path is matched against
the document's path templates and the method against the path's operations; the
status must be one the operation documents (or, for a path no route takes, one of
"x-unmatched-paths"; for a method the path does not take, one of "x-other-methods";
for the console's static files, one of "x-static-paths"),
the required headers must be there and every documented header that is there must
fit its schema, and a JSON body must validate against the response's schema
(JSON Schema 2020-12, python3-jsonschema).  A response the document does not
describe raises harness.TestFailure, so the document cannot drift from the
product.  validated() is the number of responses checked in this process.

Client.request only records each response (record(), cheap, so load tests keep
their pace); run.py checks what a test recorded when the test ends (drain()) and
fails the test for any response the document does not describe.  A process that
records more than PENDING_MAX responses without draining checks them on the spot.
"""

import json
import os
import re
import threading
from urllib.parse import urlsplit

import jsonschema

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")

_lock = threading.Lock()
_count = 0
_doc = None
_templates = None
_validators = {}
_EMPTY = {}


class Mismatch(AssertionError):
    pass


def document():
    global _doc, _templates
    if _doc is None:
        with open(DOC_PATH) as f:
            _doc = json.load(f)
        _templates = []
        for p in _doc["paths"]:
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"
            # Literal paths before templates: /admin/keys before /admin/{x}.
            _templates.append((p.count("{"), re.compile(rx), p))
        _templates.sort(key=lambda t: t[0])
    return _doc


def _resolve(obj):
    """Follow a local $ref (#/components/...) to its object."""
    while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
        node = _doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def _validator(schema):
    # Schemas are objects of the loaded document, which lives as long as the
    # process: their identity is a key (serialising them for one cost more than
    # validating).
    key = id(schema)
    v = _validators.get(key)
    if v is None:
        resolver = jsonschema.RefResolver("", _doc)
        v = jsonschema.Draft202012Validator(schema, resolver=resolver,
                                            format_checker=jsonschema.FormatChecker())
        _validators[key] = v
    return v


def _find_path(path):
    for _, rx, template in _templates:
        if rx.match(path):
            return template
    return None


def _fail(method, url, status, why, body):
    raise Mismatch(f"openapi: {method} {url} -> {status}: {why}; body {body[:300]!r}")


def check(method, url, status, headers, body):
    """Check one response (headers: list of (lower-case name, value)); raise Mismatch."""
    global _count
    with _lock:
        document()
    path = urlsplit(url).path
    m = method.lower()
    template = _find_path(path)
    static = next((p for p in _doc["x-static-paths"]
                   if path == p or path.startswith(p.rstrip("/") + "/")), None)
    if static is not None:
        template = static
        responses = _doc["x-static-paths"][static]["responses"]
    elif template is None:
        responses = _doc["x-unmatched-paths"]["responses"]
    else:
        item = _doc["paths"][template]
        op = item.get("get" if m == "head" else m)
        if op is None:
            responses = _doc["x-other-methods"]["responses"]
        else:
            responses = op["responses"]
    spec = responses.get(str(status))
    if spec is None:
        _fail(method, url, status, f"status not documented for {template or 'an unmatched path'} "
              f"(documented: {', '.join(sorted(responses))})", body)
    spec = _resolve(spec)
    hmap = {}
    for k, v in headers:
        hmap.setdefault(k.lower(), v)
    for name, h in (spec.get("headers") or {}).items():
        h = _resolve(h)
        value = hmap.get(name.lower())
        if value is None:
            if h.get("required"):
                _fail(method, url, status, f"required header {name} missing", body)
            continue
        v = _validator(h.get("schema", _EMPTY))
        if not v.is_valid(value):
            errs = list(v.iter_errors(value))
            _fail(method, url, status, f"header {name}: {value!r}: {errs[0].message}", body)
    content = spec.get("content")
    ctype = (hmap.get("content-type") or "").split(";")[0].strip().lower()
    if m == "head":
        pass
    elif not content:
        if body:
            _fail(method, url, status, "a body where the document says none", body)
    else:
        media = content.get(ctype)
        if media is None:
            _fail(method, url, status, f"content type {ctype!r} not documented "
                  f"({', '.join(content)})", body)
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except ValueError as e:
                _fail(method, url, status, f"not JSON: {e}", body)
            v = _validator(media.get("schema", _EMPTY))
            errs = [] if v.is_valid(data) else sorted(v.iter_errors(data),
                                                      key=lambda e: list(e.absolute_path))
            if errs:
                e = errs[0]
                where = "/".join(str(p) for p in e.absolute_path) or "(top)"
                _fail(method, url, status, f"body at {where}: {e.message}", body)
        else:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                _fail(method, url, status, f"{ctype} body is not UTF-8: {e}", body)
    with _lock:
        _count += 1


PENDING_MAX = 20000
_pending = []


def record(method, url, status, headers, body):
    """Keep a response for drain(); checks at once when too many wait."""
    with _lock:
        _pending.append((method, url, status, list(headers), body))
        full = len(_pending) >= PENDING_MAX
    if full:
        problems = drain()
        if problems:
            raise Mismatch(problems[0])


def drain():
    """Check every recorded response; return the mismatches' messages."""
    global _pending
    with _lock:
        todo, _pending = _pending, []
    problems = []
    for method, url, status, headers, body in todo:
        try:
            check(method, url, status, headers, body)
        except Mismatch as e:
            problems.append(str(e))
    return problems


def validated():
    with _lock:
        return _count
