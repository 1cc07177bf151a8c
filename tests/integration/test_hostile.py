"""Hostile input against the batch, job and admin routes: every answer is the one JSON
error shape with the right code, nothing crashes, and the service keeps answering."""

import json
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


def test_query_parameters_never_fall_back_silently():
    with Env() as env:
        k = client_key(env, scopes="enrich,enqueue,admin")
        csv_h = auth(k, **{"Content-Type": "text/csv"})
        body = b"email\r\njohn.doe@example.com\r\n"

        def bad(method, path, field, problem_part, body=None, headers=None):
            r = env.request(method, path, body=body, headers=headers or auth(k))
            e = error(r, 400, "invalid_request")
            check(any(d["field"] == field and problem_part in d["problem"] for d in e["details"]),
                  (path, e["details"]))
            return e

        # ?enrich= over its cap is refused, not dropped for "all 19 fields".
        bad("POST", "/enrich/enqueue?enrich=" + "title," * 200 + "phone", "enrich",
            "longer than 512 bytes", body=body, headers=csv_h)
        bad("POST", "/enrich/enqueue?enrich=title,salary", "enrich", "salary", body=body, headers=csv_h)
        bad("POST", "/enrich/enqueue?enrich=title,", "enrich", "empty entry", body=body, headers=csv_h)
        # One rule and one cap for every list of fields: the query's, a JSON
        # batch's and POST /enrich's.
        bad("POST", "/enrich/enqueue?enrich=" + ",".join(["city"] * 65), "enrich",
            "more than 64 entries", body=body, headers=csv_h)
        json_h = auth(k, **{"Content-Type": "application/json"})
        for path, rec in (("/enrich/enqueue", {"records": [{"email": "john.doe@example.com"}]}),
                          ("/enrich", {"email": "john.doe@example.com"})):
            bad("POST", path, "enrich", "more than 64 entries",
                body=json.dumps(dict(rec, enrich=["city"] * 65)).encode(), headers=json_h)
            bad("POST", path, "enrich", '"salary" is not a field that can be enriched',
                body=json.dumps(dict(rec, enrich=["title", "salary"])).encode(), headers=json_h)
            bad("POST", path, "enrich", "an empty entry",
                body=json.dumps(dict(rec, enrich=["title", ""])).encode(), headers=json_h)
        r = env.request("POST", "/enrich", json_body={"email": "john.doe@example.com",
                                                       "enrich": ["city"] * 64}, headers=auth(k))
        check(r.status == 200, r)
        bad("POST", "/enrich/enqueue?enrich=%ff", "enrich", "UTF-8", body=body, headers=csv_h)
        bad("POST", "/enrich/enqueue?enrich=title&enrich=phone", "enrich", "more than once",
            body=body, headers=csv_h)
        bad("POST", "/enrich/enqueue?enrich=title", "enrich", "JSON submission",
            body=b'{"records": [{"email": "john.doe@example.com"}]}',
            headers=auth(k, **{"Content-Type": "application/json"}))
        bad("POST", "/enrich/enqueue?priority=high", "priority", "unknown parameter",
            body=body, headers=csv_h)
        # Nothing was queued by any of them.
        r = env.request("POST", "/enrich/enqueue?enrich=title,phone", body=body, headers=csv_h)
        check(r.status == 202 and r.json()["total"] == 1, r)
        job = r.json()["job_id"]
        # /admin/usage: days and account.
        for q, field, part in (("days=abc", "days", "whole number"), ("days=0", "days", "whole number"),
                               ("days=367", "days", "whole number"), ("days=", "days", "whole number"),
                               ("days=1000", "days", "longer than 3"), ("days=1e3", "days", "whole number"), ("days=-1", "days", "whole number"),
                               ("account=", "account", "empty"), ("account=a/b", "account", "letters"),
                               ("account=" + "a" * 65, "account", "longer than 64"),
                               ("account=%00", "account", "UTF-8"), ("acount=acme", "acount", "unknown"),
                               ("days=7&days=8", "days", "more than once")):
            bad("GET", "/admin/usage?" + q, field, part)
        r = env.request("GET", "/admin/usage?days=30&account=acme", headers=auth(k))
        check(r.status == 200 and r.json()["usage"], r)
        error(env.request("GET", "/admin/usage?account=nobody", headers=auth(k)), 404, "not_found")
        # Results: format.
        for q, field, part in (("format=xml", "format", "not one of"), ("format=CSV", "format", "not one of"),
                               ("format=", "format", "not one of"), ("fmt=csv", "fmt", "unknown")):
            bad("GET", f"/enrich/jobs/{job}/results?" + q, field, part)
        check(env.request("GET", f"/enrich/jobs/{job}/results?format=ndjson", headers=auth(k)).status == 200)
        # Routes without parameters take none.
        for method, path in (("GET", "/metrics?x=1"), ("GET", f"/enrich/jobs/{job}?verbose=1"),
                             ("GET", "/admin/keys?all=1"), ("GET", "/health?probe=1")):
            bad(method, path, path.split("?")[1].split("=")[0], "unknown parameter")
        r = env.request("POST", "/enrich?debug=1", json_body={"email": "john.doe@example.com"},
                        headers=auth(k))
        error(r, 400, "invalid_request")
        # An over-long query as a whole.
        bad("GET", "/admin/usage?days=7&" + "x" * 5000, "query", "longer than 4096 bytes")
        still_serving(env, k)


def test_csv_results_neutralise_formulas_from_input_and_providers():
    import csv as csvmod
    import io
    import json

    from harness import wait_for
    from providers import keys_env, provider

    def make(env):
        return {"providers": [provider(env, "pdl", 1)],
                "waterfall": {g: ["pdl"] for g in ("person", "phone", "email", "company")},
                "worker": {"concurrency": 2, "poll_ms": 50, "lease_s": 3, "heartbeat_s": 1}}
    with Env(conf=make, sim=True, env=keys_env("pdl", 1), worker=True) as env:
        k = client_key(env, scopes="enqueue")
        evil_title = '=HYPERLINK("http://evil.example/x","click")'
        env.sim.records(provider="pdl", match={"email": "ann.lee@acme.com"},
                        fields={"title": evil_title}, merge=True)
        body = ('Email,Notes,=cmd\r\n'
                'ann.lee@acme.com,+1 555 0100,@SUM(A1)\r\n'
                'bob.ray@acme.com,-2,\tlead\r\n').encode()
        r = env.request("POST", "/enrich/enqueue?enrich=title",
                        body=body, headers=auth(k, **{"Content-Type": "text/csv"}))
        check(r.status == 202, r)
        job = r.json()["job_id"]
        wait_for(lambda: env.request("GET", f"/enrich/jobs/{job}", headers=auth(k)).json()["status"]
                 == "completed", timeout=30, what="the job")

        def rows(q):
            r = env.request("GET", f"/enrich/jobs/{job}/results{q}", headers=auth(k))
            check(r.status == 200 and r.header("content-type").startswith("text/csv"), r)
            return list(csvmod.reader(io.StringIO(r.text())))
        safe = rows("")
        check(safe == rows("?formulas=neutralise") == rows("?format=csv&formulas=neutralise"), "default")
        check(safe[0] == ["Email", "Notes", "'=cmd", "title", "_status", "_error"], safe[0])
        check(safe[1] == ["ann.lee@acme.com", "'+1 555 0100", "'@SUM(A1)", "'" + evil_title,
                          "complete", ""], safe[1])
        check(safe[2][:3] == ["bob.ray@acme.com", "'-2", "'\tlead"], safe[2])
        raw = rows("?formulas=raw")
        check(raw[0][2] == "=cmd" and raw[1][1:4] == ["+1 555 0100", "@SUM(A1)", evil_title], raw)
        check(raw[2][1:3] == ["-2", "\tlead"], raw)
        # NDJSON is data, not a spreadsheet: values as they are; formulas= does not apply.
        r = env.request("GET", f"/enrich/jobs/{job}/results?format=ndjson", headers=auth(k))
        nd = [json.loads(x) for x in r.text().splitlines()]
        check(nd[0]["title"] == evil_title and nd[0]["input"]["Notes"] == "+1 555 0100", nd[0])
        for q, part in (("?format=ndjson&formulas=raw", "ndjson"), ("?formulas=off", "not one of")):
            e = error(env.request("GET", f"/enrich/jobs/{job}/results{q}", headers=auth(k)),
                      400, "invalid_request")
            check(e["details"][0]["field"] == "formulas" and part in e["details"][0]["problem"], e)


HOSTILE_CONF = {"limits": {"body_max_bytes": 1 << 20, "records_per_job_max": 5}}


def _post(env, k, body, ctype="application/json", query="", **more):
    h = {"Content-Type": ctype} if ctype is not None else {}
    h.update(more)
    return env.request("POST", "/enrich/enqueue" + query, body=body, headers=auth(k, **h))


def test_enqueue_json_hostile_bodies():
    with Env(conf=HOSTILE_CONF) as env:
        k = client_key(env, scopes="enrich,enqueue")
        rec = b'{"email": "john.doe@example.com"}'
        cases = (
            (b'{"records": [1e999]}', "body"),
            (b'{"records": [{"email": 123456789012345678901234567890}]}', "body"),
            (b'{"records": [' + rec + b'], "records": []}', "body"),
            (b'{"records": [{"email": "a@b.com", "email": "c@d.com"}]}', "body"),
            (b'{"records": {"email": "a@b.com"}}', "records"),
            (b'{"records": "a@b.com"}', "records"),
            (b'{"records": 5}', "records"),
            (b'{"records": []}', "records"),
            (b'{"records": [' + rec + b'], "enrich": "title"}', "enrich"),
            (b'{"records": [' + rec + b'], "enrich": [1]}', "enrich"),
            (b'{"records": [' + rec + b'], "enrich": ["title", "salary"]}', "enrich"),
            (b'{"records": [' + rec + b'], "webhook_url": 5}', "webhook_url"),
            (b'{"records": [' + rec + b'], "webhook_url": "https://' + b"x" * 3000 + b'.com/"}',
             "webhook_url"),
            (b'{"records": [' + rec + b'], "webhook_url": "http://hooks.example.com/"}', "webhook_url"),
            (b'{"records": [' + rec + b'], "Records": []}', "Records"),
            (b'{"records": [' + rec + b'], "\xff\xfe": 1}', "body"),
            (b'{"records": [{"email": "\xff\xfe@b.com"}]}', "body"),
            (b'{"records": [{"email": "a\x00b@c.com"}]}', "body"),
            (b'{"records": [{"email": "a\\u0000b@c.com"}]}', "body"),
            (b'\xef\xbb\xbf{"records": [' + rec + b']}', "body"),
            (b'[' + rec + b']', "body"),
            (b'null', "body"),
            (b'"records"', "body"),
            (b'', "body"),
            (b'{', "body"),
            (b'{"records": [' + rec + b']} trailing', "body"),
            (b'{"records": [' + rec + b']}\x00', "body"),
        )
        for body, field in cases:
            e = error(_post(env, k, body), 400, "invalid_request")
            check(any(d["field"] == field for d in e["details"]), (body[:80], e))
        # Over the records cap: 413, with details.
        e = error(_post(env, k, b'{"records": [' + b",".join([rec] * 6) + b']}'), 413,
                  "payload_too_large")
        check(e["details"][0]["field"] == "records", e)
        # Wrong types inside records sink only their rows.
        r = _post(env, k, b'{"records": [{"email": 5}, [1], "x", null, {"phone": {"n": 1}}, '
                          b'{"email": "good.one@acme.com"}][0:0]}')
        error(r, 400, "invalid_request")
        r = _post(env, k, b'{"records": [{"email": 5}, [1], "x", {"phone": {"n": 1}}, '
                          b'{"email": "good.one@acme.com"}]}')
        check(r.status == 202, r)
        b = r.json()
        check(b["total"] == 5 and b["rejected"] == 4, b)
        check([x["row"] for x in b["rejections"]] == [1, 2, 3, 4], b)
        check(all(isinstance(x["reason"], str) and x["reason"] for x in b["rejections"]), b)
        still_serving(env, k)


def test_enqueue_content_types_and_idempotency_keys():
    with Env(conf=HOSTILE_CONF) as env:
        k = client_key(env, scopes="enrich,enqueue")
        body = b'{"records": [{"email": "john.doe@example.com"}]}'
        for ctype in (None, "text/plain", "application/xml", "multipart/form-data; boundary=x",
                      "application/json; charset=iso-8859-1", "application/json; charset=",
                      'application/json; charset="latin1"', "text/csv; charset=utf-16",
                      "application/jsonx", "application"):
            error(_post(env, k, body, ctype=ctype), 415, "unsupported_media_type")
        for ctype in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
                      'application/json; charset="utf-8"', "APPLICATION/JSON"):
            r = _post(env, k, body, ctype=ctype)
            check(r.status == 202, (ctype, r))
        for key in ("x" * 129, "has space", "tab\there", "caf\u00e9".encode().decode("latin-1")):
            e = error(_post(env, k, body, **{"Idempotency-Key": key}), 400, "invalid_request")
            check(e["details"][0]["field"] == "Idempotency-Key", e)
        a = _post(env, k, body, **{"Idempotency-Key": "k" * 128})
        b = _post(env, k, body, **{"Idempotency-Key": "k" * 128})
        check(a.status == 202 and b.status == 202 and a.json()["job_id"] == b.json()["job_id"], (a, b))
        still_serving(env, k)


def test_enqueue_csv_hostile_bodies():
    with Env(conf=HOSTILE_CONF) as env:
        k = client_key(env, scopes="enrich,enqueue")

        def csv(body, query=""):
            return _post(env, k, body, ctype="text/csv", query=query)
        for body, part in ((b"", "empty"), (b"\r\n\n\r\n", "empty"),
                           (b"Notes,Other\r\nx,y\r\n", "identifier"),
                           (b'email\r\n"john.doe@example.com', "line"),
                           (b"email\r\n", "no rows"),
                           (",".join(f"c{i}" for i in range(1100)).encode() + b"\r\nx\r\n", "body"),
                           (b'email,"bad"quote\r\na@b.com,x\r\n', "body"),
                           (b"em\xffail\r\na@b.com\r\n", "body")):
            e = error(csv(body), 400, "invalid_request")
            check(any(d["field"] == "body" for d in e["details"]), (body[:60], e))
            check(part == "body" or any(part in d["problem"] for d in e["details"]), (body[:60], e))
        # Bad rows are rejected one by one; the job takes the rest.
        big = b"x" * (70 * 1024)
        body = (b"email,notes\r\n"
                b"ann.lee@acme.com,ok\r\n"
                b"only-one-cell\r\n"
                b"a@b.com,two,three\r\n"
                b"\xff\xfe@acme.com,bad utf-8\r\n"
                b"bob\x00@acme.com,nul\r\n"
                b"cy.dee@acme.com," + big + b"\r\n")
        e = error(csv(body), 413, "payload_too_large")  # 6 rows > records_per_job_max 5
        body = body.replace(b"ann.lee@acme.com,ok\r\n", b"")
        r = csv(body)
        check(r.status == 202, r)
        b = r.json()
        check(b["total"] == 5 and b["rejected"] == 5, b)
        check(all(x["reason"] for x in b["rejections"]), b)
        # Odd but valid: BOM, CR only, quoted line breaks, spaces.
        r = csv(b'\xef\xbb\xbf E-Mail ,Company\rann.lee@acme.com,"Acme,\r\nInc"\r"bob.ray@acme.com",X')
        check(r.status == 202 and r.json()["total"] == 2 and r.json()["rejected"] == 0, r)
        for query, part in (("?enrich=title,salary", "salary"), ("?enrich=%ff", "UTF-8"),
                            ("?enrich=" + "x" * 600, "longer"), ("?enrich", "")):
            r = csv(b"email\r\nann.lee@acme.com\r\n", query=query)
            if query == "?enrich":
                check(r.status == 202, r)  # present and empty: every field, as documented
                continue
            e = error(r, 400, "invalid_request")
            check(part in e["details"][0]["problem"], e)
        error(_post(env, k, b"email\r\na@b.com\r\n", ctype="text/csv; charset=latin1"), 415,
              "unsupported_media_type")
        still_serving(env, k)


def test_body_over_the_cap_is_413_at_both_edges():
    with Env(conf={"limits": {"body_max_bytes": 4096}}) as env:
        k = client_key(env, scopes="enrich,enqueue")
        r = _post(env, k, b'{"records": [' + b" " * 5000 + b"]}")
        check(r.status == 413 and r.json()["error"]["code"] == "payload_too_large", r)
        # enrichd checks too, whatever sits in front of it.
        st, h, body = _fcgi(env, {"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/enrich/enqueue",
                                  "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "5000",
                                  "HTTP_AUTHORIZATION": "Bearer " + k})
        check(st == 413 and b'"code":"payload_too_large"' in body, (st, body[:200]))
        st, h, body = _fcgi(env, {"REQUEST_METHOD": "POST", "DOCUMENT_URI": "/enrich/enqueue",
                                  "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "12x",
                                  "HTTP_AUTHORIZATION": "Bearer " + k})
        check(st == 400 and b'"code":"invalid_request"' in body, (st, body[:200]))
        still_serving(env, k)


def test_job_routes_with_hostile_ids_and_methods():
    with Env(conf=HOSTILE_CONF) as env:
        k = client_key(env, scopes="enrich,enqueue")
        job = _post(env, k, b'{"records": [{"email": "john.doe@example.com"}]}').json()["job_id"]
        for path in ("/enrich/jobs/job_nope", "/enrich/jobs/" + "a" * 1500,
                     "/enrich/jobs/job_" + "0" * 24, "/enrich/jobs/" + job.upper(),
                     "/enrich/jobs/" + job + "x", "/enrich/jobs/%27%20OR%201%3D1--",
                     "/enrich/jobs/..%2F..%2Fetc%2Fpasswd", "/enrich/jobs/../../etc/passwd",
                     "/enrich/jobs/" + job + "/results/more", "/enrich/jobs/%E2%80%AE" + job,
                     "/enrich/jobs/" + "a" * 3000):
            for method, suffix in (("GET", ""), ("GET", "/results"), ("POST", "/retry"),
                                   ("DELETE", "")):
                if path.endswith("/more") and suffix:
                    continue
                error(env.request(method, path + suffix, headers=auth(k)), 404, "not_found")
        for method, path, allow in (("PUT", f"/enrich/jobs/{job}", "GET, DELETE"),
                                    ("POST", f"/enrich/jobs/{job}", "GET, DELETE"),
                                    ("GET", f"/enrich/jobs/{job}/retry", "POST"),
                                    ("DELETE", f"/enrich/jobs/{job}/results", "GET"),
                                    ("GET", "/enrich/enqueue", "POST")):
            r = env.request(method, path, headers=auth(k))
            error(r, 405, "method_not_allowed")
            check(r.header("allow") == allow, (method, path, r.header("allow")))
        # Straight to enrichd: bytes nginx would refuse in the path itself.
        for uri in ("/enrich/jobs/a\x01b", "/enrich/jobs/\xff\xfe", "/enrich/jobs/a b"):
            st, h, body = _fcgi(env, {"DOCUMENT_URI": uri, "HTTP_AUTHORIZATION": "Bearer " + k})
            check(st == 404 and b'"code":"not_found"' in body, (uri, st, body[:200]))
        check(env.request("GET", f"/enrich/jobs/{job}", headers=auth(k)).status == 200)
        still_serving(env, k)


def test_admin_routes_with_hostile_input():
    with Env() as env:
        admin = client_key(env, scopes="admin,enrich")
        user = client_key(env, scopes="enrich,enqueue", account="user")
        for method, path in (("GET", "/admin/keys"), ("GET", "/admin/usage"), ("GET", "/metrics"),
                             ("POST", "/admin/keys/x/revive")):
            error(env.request(method, path, headers=auth(user)), 403, "forbidden")
            error(env.request(method, path), 401, "unauthorized")
            error(env.request(method, path, headers={"Authorization": "Bearer enr_" + "A" * 40}),
                  401, "unauthorized")
        for kid in ("nope", "x" * 100, "%27%3B%20DROP%20TABLE%20upstream_keys--", "..%2Fx"):
            r = env.request("POST", f"/admin/keys/{kid}/revive", headers=auth(admin))
            error(r, 404, "not_found")
        # Bytes nginx refuses itself (a NUL, control bytes), straight to enrichd.
        for kid in ("a\x00b", "\x01", "\xff"):
            st, h, body = _fcgi(env, {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "0",
                                      "DOCUMENT_URI": f"/admin/keys/{kid}/revive",
                                      "HTTP_AUTHORIZATION": "Bearer " + admin})
            check(st == 404 and b'"code":"not_found"' in body, (kid, st, body[:200]))
        r = env.request("GET", "/admin/keys/nope/revive", headers=auth(admin))
        error(r, 405, "method_not_allowed")
        error(env.request("DELETE", "/admin/keys", headers=auth(admin)), 405, "method_not_allowed")
        for q in ("account=%27%20OR%20%271%27%3D%271", "account=a&account=b", "days=1;2",
                  "days=%2B", "days=0x10", "days=%205", "days=7&extra=%00"):
            error(env.request("GET", "/admin/usage?" + q, headers=auth(admin)), 400, "invalid_request")
        check(env.request("GET", "/admin/keys", headers=auth(admin)).status == 200)
        still_serving(env, admin)
