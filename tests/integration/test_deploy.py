"""The edge and the local deployment: nginx's own errors in the API's JSON shape,
deploy.sh (supervision, stale pid files, remembered ports, all-or-nothing reload,
history and rollback, permissions), the install into a DESTDIR and the Debian
package."""

import json
import os
import re
import socket
import ssl
import subprocess

from harness import Env, check


def raw(env, data, tls=True, port=None):
    """Send raw bytes and read the whole answer (nginx closes after an error)."""
    port = port or (env.https_port if tls else env.http_port)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    s.sendall(data)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    check(lines and lines[0].startswith("HTTP/1.1 "), f"no status line: {out[:300]!r}")
    status = int(lines[0].split()[1])
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:])]
    return status, headers, body


def hdr(headers, name):
    vals = [v for k, v in headers if k == name]
    return vals


def json_error(status, headers, body, want_status, want_code, what):
    check(status == want_status, f"{what}: status {status}, want {want_status}: {body[:300]!r}")
    check(hdr(headers, "content-type") == ["application/json"], f"{what}: {headers}")
    try:
        e = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"{what}: not the JSON error shape: {body[:300]!r}")
    check(set(e) == {"code", "message", "request_id"}, f"{what}: members {sorted(e)}")
    check(e["code"] == want_code, f"{what}: code {e['code']}, want {want_code}")
    check(e["message"], f"{what}: empty message")
    check(re.fullmatch(r"[0-9a-f]{32}", e["request_id"]), f"{what}: request id {e['request_id']!r}")
    return e


def test_nginx_errors_are_json_with_the_right_code():
    with Env() as env:
        big = "x" * 9000
        cases = [
            ("TRACE", b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, "method_not_allowed"),
            ("NUL in path", b"GET /health%00 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "invalid_request"),
            ("bad request line", b"GET /he alth HTTP/1.1 x\r\nHost: localhost\r\n\r\n", 400, "invalid_request"),
            ("header too large", b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: "
             + big.encode() + b"\r\n\r\n", 400, "invalid_request"),
            ("too many headers", b"GET /health HTTP/1.1\r\nHost: localhost\r\n"
             + b"".join(b"X-H%d: %s\r\n" % (i, b"y" * 90) for i in range(400)) + b"\r\n",
             400, "invalid_request"),
            ("URI too long", b"GET /" + big.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
             414, "invalid_request"),
            ("unknown transfer coding", b"POST /enrich HTTP/1.1\r\nHost: localhost\r\n"
             b"Transfer-Encoding: gzip\r\n\r\n", 501, "invalid_request"),
            ("HTTP version", b"GET /health HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, "invalid_request"),
        ]
        for what, data, want, code in cases:
            status, headers, body = raw(env, data)
            e = json_error(status, headers, body, want, code, what)
            if status == 405:
                check(hdr(headers, "allow") == ["GET, POST, DELETE, OPTIONS"], f"{what}: {headers}")
            rid = hdr(headers, "x-request-id")
            check(rid == [e["request_id"]], f"{what}: X-Request-Id {rid} vs body {e['request_id']}")
        # Plain HTTP sent to the HTTPS port.
        status, headers, body = raw(env, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
                                    port=env.https_port, tls=False)
        json_error(status, headers, body, 400, "invalid_request", "plain HTTP on the HTTPS port")
        # The redirecting plain-HTTP server answers its errors the same way.
        status, headers, body = raw(env, b"GET /" + big.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                    tls=False)
        json_error(status, headers, body, 414, "invalid_request", "414 on the HTTP port")
        # enrichd's own errors pass through with one Allow and no added Retry-After.
        r = env.request("DELETE", "/health")
        check(r.status == 405 and r.header_all("allow") == ["GET"], r)
        check(r.header_all("retry-after") == [], r)
        r = env.request("GET", "/health")
        check(r.status == 200 and r.header_all("allow") == [] and r.header_all("retry-after") == [], r)


def test_every_nginx_error_page_has_the_json_shape():
    """Statuses a test cannot provoke here (403 needs a non-loopback client, 500,
    504 after the 120 s read timeout): the rendered pages themselves."""
    want = {400: "invalid_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            408: "invalid_request", 411: "invalid_request", 413: "payload_too_large",
            414: "invalid_request", 494: "invalid_request", 497: "invalid_request",
            500: "internal", 501: "invalid_request", 502: "unavailable", 503: "unavailable",
            504: "upstream_timeout", 505: "invalid_request"}
    codes_status = {"invalid_request": {400, 408, 411, 414, 501, 505}, "forbidden": {403},
                    "not_found": {404}, "method_not_allowed": {405}, "payload_too_large": {413},
                    "internal": {500}, "unavailable": {503}, "upstream_timeout": {504}}
    with Env() as env:
        text = open(os.path.join(env.tmp, "nginx", "enrichd-errors.conf")).read()
        pages = {}
        for line in text.splitlines():
            m = re.match(r"error_page ([\d ]+) =(\d+) (\S+);", line.strip())
            if m:
                for st in m.group(1).split():
                    pages[int(st)] = (int(m.group(2)), m.group(3))
        check(set(pages) == set(want), f"error_page statuses: {sorted(pages)}")
        for st, (answer, loc) in pages.items():
            m = re.search(r"location = %s \{\s*internal;\s*default_type application/json;\s*return (\d+) '(.*)';" % loc,
                          text)
            check(m, f"{st}: {loc} has no JSON return")
            body = json.loads(m.group(2).replace("$request_id", "0" * 32).replace("\\n", ""))
            code = body["error"]["code"]
            check(code == want[st], f"{st}: code {code}, want {want[st]}")
            check(int(m.group(1)) == answer, f"{st}: page returns {m.group(1)}, error_page says {answer}")
            check(answer in codes_status[code], f"{st}: answers {answer} with {code}")
        # The responder unreachable: 503 with Retry-After, through the real nginx.
        env.stop_enrichd()
        r = env.request("POST", "/enrich", json_body={"email": "a@example.com"})
        check(r.status == 503 and r.json()["error"]["code"] == "unavailable", r)
        check(r.header_all("retry-after") == ["2"], r)
