"""The responder, nginx edge, configuration, reload, rollback, shutdown and CGI mode."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading

import fcgi
from harness import (ENRICHD, ROOT, Env, Load, check, free_port, render_conf, wait_for,
                     BASE_CONF, deep_merge)
from providers import client_key


def error_of(r, status, code):
    check(r.status == status, f"want {status}, got {r!r}")
    check(r.header("content-type", ).startswith("application/json"), f"not JSON: {r!r}")
    e = r.json().get("error")
    check(e and e.get("code") == code, f"want code {code}: {r!r}")
    check(e.get("message"), "error without message")
    return e


def test_health_answers_json_with_request_id():
    with Env() as env:
        r = env.request("GET", "/health")
        check(r.status == 200, r)
        body = r.json()
        check(body["status"] == "ok" and re.match(r"^\d+\.\d+\.\d+$", body["version"]), body)
        check(set(body) <= {"status", "version", "store"}, f"health leaks details: {body}")
        rid = r.header("x-request-id")
        check(rid and re.match(r"^[0-9a-f]{32}$", rid), f"request id from nginx: {rid}")
        check(len(r.header_all("x-request-id")) == 1, "one X-Request-Id header")
        check(r.header("strict-transport-security") == "max-age=31536000", r)
        # The access line carries the same request id, method, path, status and time.
        line = env.wait_log(r"rid=%s mod=access method=GET path=\"/health\" status=200 ms=[0-9.]+" % rid)
        check(line, "access line")


def test_client_cannot_choose_request_id():
    with Env() as env:
        r = env.request("GET", "/health", headers={"X-Request-Id": "forged-id"})
        check(r.header("x-request-id") != "forged-id", r)


def test_unknown_path_is_json_404():
    with Env() as env:
        r = env.request("GET", "/no/such/thing")
        e = error_of(r, 404, "not_found")
        check(e["request_id"] == r.header("x-request-id"), "error body names the request id")


def test_wrong_method_is_json_405_with_allow():
    with Env() as env:
        r = env.request("DELETE", "/health")
        error_of(r, 405, "method_not_allowed")
        check(r.header("allow") == "GET", f"Allow header: {r!r}")


def test_plain_http_redirects_to_https():
    with Env() as env:
        r = env.http_plain("GET", "/health?x=1")
        check(r.status == 301, r)
        check(r.header("location") == f"https://127.0.0.1:{env.https_port}/health?x=1", r)


def test_cors_allowed_origin_gets_headers():
    with Env() as env:
        r = env.request("GET", "/health", headers={"Origin": "https://app.example.com"})
        check(r.status == 200, r)
        check(r.header("access-control-allow-origin") == "https://app.example.com", r)
        check("X-Request-Id" in (r.header("access-control-expose-headers") or ""), r)
        check(r.header("vary") == "Origin", r)


def test_cors_other_origin_gets_no_cors_headers():
    with Env() as env:
        for method, path in (("GET", "/health"), ("OPTIONS", "/enrich")):
            r = env.request(method, path, headers={"Origin": "https://evil.example.net",
                                                    "Access-Control-Request-Method": "POST"})
            check(not any(k.startswith("access-control-") for k, _ in r.headers),
                  f"CORS headers for a foreign origin: {r!r}")


def test_cors_preflight_answered_by_nginx():
    with Env() as env:
        r = env.request("OPTIONS", "/enrich", headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        check(r.status == 204, r)
        check(r.header("access-control-allow-origin") == "https://app.example.com", r)
        check("POST" in r.header("access-control-allow-methods"), r)
        check("Authorization" in r.header("access-control-allow-headers"), r)
        check(r.header("access-control-max-age") == "600", r)
        check("method=OPTIONS" not in env.log(), "the preflight reached enrichd")


def test_body_over_cap_is_json_413():
    with Env(conf={"limits": {"body_max_bytes": 2048}}) as env:
        r = env.request("POST", "/enrich", body=b"x" * 5000,
                        headers={"Content-Type": "application/json"})
        error_of(r, 413, "payload_too_large")
        check("2048" in r.json()["error"]["message"], r)
        check("path=\"/enrich\"" not in env.log(), "an oversized body reached enrichd")


def test_nginx_json_503_when_responder_is_down():
    """The responder unreachable is 503 unavailable with Retry-After (it was a
    502 with code unavailable, which the error table gives to 503)."""
    with Env() as env:
        env.stop_enrichd()
        r = env.request("GET", "/health")
        error_of(r, 503, "unavailable")
        check(r.header("retry-after") == "2", r)


def test_metrics_in_prometheus_text():
    with Env() as env:
        for _ in range(3):
            env.request("GET", "/health")
        env.request("GET", "/nope")
        r = env.request("GET", "/metrics", headers=env_admin_headers(env))
        check(r.status == 200, r)
        check(r.header("content-type").startswith("text/plain; version=0.0.4"), r)
        text = r.text()
        m = re.search(r'^enrichd_http_requests_total\{route="/health",status="200"\} (\d+)$', text, re.M)
        check(m and int(m.group(1)) >= 3, text[:2000])
        check(re.search(r'^enrichd_http_requests_total\{route="unmatched",status="404"\} 1$', text, re.M), text[:2000])
        check(re.search(r'^enrichd_http_request_duration_seconds_bucket\{route="/health",le="\+Inf"\} \d+$', text, re.M), text[:2000])
        check("# TYPE enrichd_http_request_duration_seconds histogram" in text, text[:500])


def env_admin_headers(env):
    """Headers that pass /metrics and /admin access control (an admin key once
    accounts exist)."""
    key = getattr(env, "admin_key", None)
    if key is None and os.path.exists(os.path.join(os.path.dirname(ENRICHD), "enrichctl")):
        env.ctl("account", "create", "ops")
        key = env.ctl("key", "create", "ops", "--scopes", "admin", "--raw").stdout.strip()
        env.admin_key = key
    return {"Authorization": f"Bearer {key}"} if key else {}


def test_config_check_flag():
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "good.conf")
        with open(good, "w") as f:
            f.write(render_conf(BASE_CONF))
        p = subprocess.run([ENRICHD, "-t", "-c", good], capture_output=True, text=True)
        check(p.returncode == 0 and "configuration ok" in p.stdout, p)
        p = subprocess.run([ENRICHD, "-t", "-c", os.path.join(ROOT, "conf", "enrichd.conf")],
                           capture_output=True, text=True)
        check(p.returncode == 0, f"the shipped configuration must validate: {p.stderr}")
        cases = [
            ("threads = 8;\nlimits = { body_max_bytes = 10; };\n",
             r":2: limits\.body_max_bytes: 10 is outside 1024\.\."),
            ("threads = 8;\nthreadz = 8;\n", r":2: threadz: unknown setting"),
            ("threads = \"many\";\n", r":1: threads: must be an integer"),
            ("rotation = { strategy = \"random\"; };\n", r":1: rotation\.strategy: \"random\" is not one of"),
            ("waterfall = { person = [ \"nobody\" ]; };\n", r":1: waterfall\.person\[0\]: no provider is named \"nobody\""),
            ("threads = 8\nlimits = {\n", r":\d+: syntax error"),
            ("providers = ( { name = \"p\"; kind = \"pdl\"; keys = ( { id = \"k\"; secret = \"hunter2\"; } ); } );\n",
             r":1: providers\[0\]\.keys\[0\]\.secret: must be \"env:NAME\""),
            ("providers = ( { name = \"p\"; kind = \"pdl\"; keys = ( { id = \"k\"; secret = \"env:ENRICHD_TEST_UNSET\"; } ); } );\n",
             r":1: providers\[0\]\.keys\[0\]\.secret: environment variable ENRICHD_TEST_UNSET is not set"),
        ]
        for i, (text, want) in enumerate(cases):
            bad = os.path.join(d, f"bad{i}.conf")
            with open(bad, "w") as f:
                f.write(text)
            p = subprocess.run([ENRICHD, "-t", "-c", bad], capture_output=True, text=True)
            check(p.returncode == 1, f"case {i}: exit {p.returncode}")
            check(re.search(re.escape(bad) + want, p.stderr), f"case {i}: {p.stderr!r} !~ {want}")
            check("hunter2" not in p.stderr, "a secret in an error message")


def test_good_reload_under_load_changes_behaviour_without_failures():
    with Env() as env:
        last_good = env.last_good
        wait_for(lambda: os.path.exists(last_good), what=".last-good at start")
        with Load(env, n=4) as load:
            wait_for(lambda: load.total() > 200, timeout=20, what="load to run")
            quiet = deep_merge(env.conf, {"log_level": "warn"})
            env.reload(conf=quiet)
            seen = load.total()
            wait_for(lambda: load.total() > seen + 200, timeout=20, what="load after reload")
        check(load.errors == [], f"transport errors during reload: {load.errors[:3]}")
        check(set(load.statuses) == {200}, f"statuses during reload: {load.statuses}")
        # The new snapshot is live: info-level access lines stopped.
        n = env.log().count("mod=access")
        for _ in range(5):
            check(env.request("GET", "/health").status == 200)
        check(env.log().count("mod=access") == n, "access lines after log_level=warn")
        with open(last_good) as f:
            check("log_level = \"warn\"" in f.read(), ".last-good holds the new file")


def test_bad_reload_under_load_is_refused_and_nothing_changes():
    with Env() as env:
        last_good = env.last_good
        wait_for(lambda: os.path.exists(last_good), what=".last-good at start")
        before = open(last_good).read()
        with Load(env, n=4) as load:
            wait_for(lambda: load.total() > 200, timeout=20, what="load to run")
            env.reload(text="threads = 8;\nlimits = { body_max_bytes = -1; };\n", expect="refused")
            line = env.wait_log(r"reload refused.*body_max_bytes")
            check(line, "refusal names the setting")
            seen = load.total()
            wait_for(lambda: load.total() > seen + 200, timeout=20, what="load after reload")
        check(load.errors == [] and set(load.statuses) == {200},
              f"failures: {load.statuses} {load.errors[:3]}")
        check(open(last_good).read() == before, ".last-good must not change on a bad file")
        check(env.enrichd.poll() is None, "enrichd still running")


def test_deploy_script_up_reload_rollback_down():
    """The README's start command end to end, in a private var/ directory."""
    with tempfile.TemporaryDirectory(prefix="enrichd-deploy-") as d:
        # As root, nginx's workers run unprivileged and must reach the socket.
        os.chmod(d, 0o755)
        conf = os.path.join(d, "enrichd.conf")
        c = deep_merge(BASE_CONF, {"listen": os.path.join(d, "run", "enrichd.sock"),
                                   "state_dir": os.path.join(d, "state"),
                                   "store": "sqlite:" + os.path.join(d, "enrichd.db"),
                                   "data_dir": os.path.join(ROOT, "data")})
        with open(conf, "w") as f:
            f.write(render_conf(c))
        envv = dict(os.environ, ENRICHD_VAR=os.path.join(d, "var"), ENRICHD_CONF=conf,
                    HTTPS_PORT=str(free_port()), HTTP_PORT=str(free_port()))
        deploy = os.path.join(ROOT, "deploy.sh")

        def run(*args, ok=True):
            p = subprocess.run([deploy, *args], env=envv, capture_output=True, text=True,
                               timeout=300)
            if ok:
                check(p.returncode == 0, f"deploy.sh {args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
            return p

        try:
            p = run("up")
            check(f"https://127.0.0.1:{envv['HTTPS_PORT']}" in p.stdout, p.stdout)
            check("curl" in p.stdout, "a curl example is printed")
            p2 = run("up")  # twice is harmless
            check("already running" in p2.stdout, p2.stdout)
            check("running" in run("status").stdout)
            # A bad edit is refused by reload, and rollback restores the last good file.
            good = open(conf).read()
            with open(conf, "a") as f:
                f.write("no_such_setting = 1;\n")
            p = run("reload", ok=False)
            check(p.returncode != 0 and "no_such_setting: unknown setting" in p.stdout + p.stderr, p)
            p = run("rollback")
            check(open(conf).read() == good, "rollback restored the file")
            check("reloaded" in p.stdout, p.stdout)
            p = run("status")
            check('"status":"ok"' in p.stdout, p.stdout)
        finally:
            run("down", ok=False)
        p = run("status", ok=False)
        check(p.returncode != 0 and "stopped" in p.stdout, p.stdout)


def test_sigterm_finishes_request_in_flight():
    with Env() as env:
        conn = fcgi.Conn(env.socket)
        # Begin a request and hold it: the responder has it but it is not complete.
        conn.s.sendall(fcgi._record(fcgi.FCGI_BEGIN_REQUEST, b"\0\1\0\0\0\0\0\0"))
        conn.s.sendall(fcgi._record(fcgi.FCGI_PARAMS, b"".join(fcgi._nv(k, v) for k, v in {
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/health", "DOCUMENT_URI": "/health",
            "REQUEST_ID": "inflight1"}.items())))
        env.signal(signal.SIGTERM)
        env.wait_log(r"stopping on signal 15")
        check(env.enrichd.poll() is None, "exited with a request in flight")
        conn.s.sendall(fcgi._record(fcgi.FCGI_PARAMS, b""))
        conn.end_stdin()
        status, headers, body = conn.read_response()
        conn.close()
        check(status == 200 and b'"status":"ok"' in body, (status, body))
        check(headers.get("x-request-id") == "inflight1", headers)
        env.enrichd.wait(40)
        check(env.enrichd.returncode == 0, f"exit code {env.enrichd.returncode}")
        check("msg=\"stopped\"" in env.log(), env.log()[-500:])
        check(not os.path.exists(env.socket), "socket removed on exit")


def test_a_connection_left_open_after_its_answer_holds_no_responder():
    """One responder thread. A client whose body the responder never read (it is
    refused before: no key) reads its answer and keeps the connection open; the
    responder must not close on data it has not read, so it waits for the client
    to close (up to 2 s, on the engine's loop, not in a responder). The
    next client is answered while the first connection is still held open: writing
    on it still works, and it reads the end of the answer's side."""
    with Env(conf={"threads": 1}) as env:
        body = b'{"email":"a@b.com"}' + b" " * 200
        first = fcgi.Conn(env.socket)
        first.begin({"REQUEST_METHOD": "POST", "REQUEST_URI": "/enrich",
                     "DOCUMENT_URI": "/enrich", "CONTENT_TYPE": "application/json",
                     "CONTENT_LENGTH": str(len(body)), "GATEWAY_INTERFACE": "CGI/1.1"})
        first.send_stdin(body)
        first.end_stdin()
        status, _, answer = first.read_response()
        check(status == 401 and b'"unauthorized"' in answer, (status, answer))
        status, _, answer = fcgi.request(env.socket, "GET", "/health")
        check(status == 200 and b'"status":"ok"' in answer, (status, answer))
        # The responder shut its side down and is still reading ours: not closed.
        check(first.s.recv(1) == b"", "the responder's side of the first connection ended")
        try:
            first.s.sendall(b"\0" * 8)
        except OSError as e:
            raise AssertionError(f"the first connection was closed before the second answer: {e}")
        first.close()


def test_a_request_read_to_its_end_is_closed_at_once():
    """Its input read to the end (a body, or none announced) and nothing else
    sent, a request's connection is closed as soon as it is answered: nothing
    waits for the client to close first."""
    with Env(conf={"threads": 1}) as env:
        k = client_key(env)
        body = b'{"email":"nobody@nowhere.example"}'
        c = fcgi.Conn(env.socket)
        c.begin({"REQUEST_METHOD": "POST", "REQUEST_URI": "/enrich", "DOCUMENT_URI": "/enrich",
                 "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                 "HTTP_AUTHORIZATION": "Bearer " + k, "GATEWAY_INTERFACE": "CGI/1.1"})
        c.send_stdin(body)
        c.end_stdin()
        status, _, answer = c.read_response()
        check(status in (200, 503) and answer, (status, answer))

        def closed():
            try:
                c.s.sendall(b"\0" * 8)
                return False
            except OSError:
                return True
        wait_for(closed, timeout=1.5, what="the responder to close the connection")
        c.close()
        # A request without a body: its input ends with its parameters.
        c = fcgi.Conn(env.socket)
        c.begin({"REQUEST_METHOD": "GET", "REQUEST_URI": "/health", "DOCUMENT_URI": "/health",
                 "GATEWAY_INTERFACE": "CGI/1.1"})
        c.end_stdin()
        status, _, answer = c.read_response()
        check(status == 200 and b'"status":"ok"' in answer, (status, answer))
        wait_for(closed, timeout=1.5, what="the responder to close the GET's connection")
        c.close()


def test_a_request_whose_headers_pass_64_KiB_is_refused_and_the_next_answered():
    """nginx caps request headers well below this; a FastCGI peer that sends more
    than 64 KiB of parameters gets 400 naming the headers, with the request id it
    sent, and the responder goes on (one thread: the same one answers next)."""
    with Env(conf={"threads": 1}) as env:
        status, headers, body = fcgi.request(env.socket, "GET", "/health", extra={
            "REQUEST_ID": "bigheaders1", "HTTP_X_BIG": "h" * 70000})
        check(status == 400 and headers.get("content-type") == "application/json", (status, headers))
        err = json.loads(body)["error"]
        check(err["code"] == "invalid_request" and "headers are too large" in err["message"], err)
        check(headers.get("x-request-id") == "bigheaders1", headers)
        status, _, body = fcgi.request(env.socket, "GET", "/health")
        check(status == 200 and b'"status":"ok"' in body, (status, body))


def test_a_kept_fastcgi_connection_carries_one_request_after_another():
    """A web server that keeps its FastCGI connections (FCGI_KEEP_CONN) sends its
    next request on the same connection once the last one ended; with one thread,
    a second connection is answered once the first one closes."""
    with Env(conf={"threads": 1}) as env:
        c = fcgi.Conn(env.socket)
        for i, rid in enumerate(("kept1", "kept2", "kept3")):
            c.begin({"REQUEST_METHOD": "GET", "REQUEST_URI": "/health", "DOCUMENT_URI": "/health",
                     "REQUEST_ID": rid, "GATEWAY_INTERFACE": "CGI/1.1"}, keep=True, req_id=i + 1)
            c.end_stdin(req_id=i + 1)
            status, headers, body = c.read_response()
            check(status == 200 and b'"status":"ok"' in body, (status, body))
            check(headers.get("x-request-id") == rid, headers)
        c.close()
        status, _, body = fcgi.request(env.socket, "GET", "/health")
        check(status == 200 and b'"status":"ok"' in body, (status, body))


def test_more_clients_than_threads_never_stall():
    """Two responder threads, 32 concurrent keep-alive clients: every request is
    answered (nginx does not pin FastCGI connections to threads)."""
    with Env(conf={"threads": 2}) as env:
        rendered = open(os.path.join(env.tmp, "nginx", "enrichd-fastcgi.conf")).read()
        check("fastcgi_keep_conn" not in rendered, "FastCGI keep-alive would pin threads")
        results = []
        lock = threading.Lock()

        def client():
            c = env.new_client()
            got = []
            for _ in range(60):
                got.append(c.request("GET", "/health").status)
            c.close()
            with lock:
                results.extend(got)

        ts = [threading.Thread(target=client) for _ in range(32)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        check(not any(t.is_alive() for t in ts), "clients stalled")
        check(len(results) == 32 * 60 and set(results) == {200},
              f"{len(results)} answers, statuses {set(results)}")


def test_cgi_mode_through_a_cgi_wrapper():
    """Conventional hosting: the web server runs enrichd once per request."""
    with Env(cgi=True) as env:
        r = env.request("GET", "/health")
        check(r.status == 200 and r.json()["status"] == "ok", r)
        error_of(env.request("GET", "/missing"), 404, "not_found")
        r = env.request("POST", "/health")
        check(r.status == 405 and r.header("allow") == "GET", r)


def test_cgi_mode_direct_invocation():
    with Env(start=False) as env:
        base = dict(os.environ, GATEWAY_INTERFACE="CGI/1.1", ENRICHD_CONF=env.conf_path,
                    REQUEST_URI="/health", REQUEST_METHOD="GET")
        p = subprocess.run([ENRICHD], env=base, capture_output=True, stdin=subprocess.DEVNULL)
        check(p.returncode == 0, p)
        out = p.stdout.decode()
        check(out.startswith("Status: 200 OK\r\n") and '"status":"ok"' in out, out)
        p = subprocess.run([ENRICHD], env=dict(base, REQUEST_URI="/x"), capture_output=True,
                           stdin=subprocess.DEVNULL)
        check(p.stdout.decode().startswith("Status: 404 Not Found\r\n"), p.stdout)


def test_make_install_places_everything():
    with tempfile.TemporaryDirectory(prefix="enrichd-install-") as d:
        p = subprocess.run(["make", "install", f"DESTDIR={d}", "PREFIX=/usr/local",
                            f"BUILD={os.path.relpath(os.path.dirname(ENRICHD), ROOT)}"],
                           cwd=ROOT, capture_output=True, text=True)
        check(p.returncode == 0, p.stderr[-2000:])
        for rel in ("usr/local/sbin/enrichd", "usr/local/bin/enrichctl", "usr/local/bin/enrich-worker",
                    "usr/local/bin/enrich-batch", "usr/local/share/enrichd/nginx/render.sh",
                    "usr/local/share/enrichd/nginx/enrichd-site.conf.in",
                    "usr/local/share/enrichd/conf/enrichd.conf",
                    "usr/local/share/enrichd/data/free-email-domains.txt",
                    "usr/local/share/enrichd/console/index.html",
                    "usr/local/share/enrichd/console/app.js",
                    "usr/local/share/enrichd/docs/openapi.json"):
            check(os.path.exists(os.path.join(d, rel)), f"missing {rel}")
        check(os.access(os.path.join(d, "usr/local/sbin/enrichd"), os.X_OK), "not executable")


def test_store_that_cannot_open_is_refused_at_start_and_503_in_cgi():
    with Env(start=False) as env:
        bad = deep_merge(env.conf, {"store": "sqlite:" + os.path.join(env.tmp, "no", "such", "x.db")})
        env.write_conf(bad)
        p = subprocess.run([ENRICHD, "-c", env.conf_path], capture_output=True, text=True,
                           timeout=20, cwd=ROOT)
        check(p.returncode == 1, p)
        check("start-up failed" in env.log(), env.log()[-500:])
        check(not os.path.exists(env.socket), "socket left behind")
        cgi = dict(os.environ, GATEWAY_INTERFACE="CGI/1.1", ENRICHD_CONF=env.conf_path,
                   REQUEST_URI="/health", REQUEST_METHOD="GET")
        p = subprocess.run([ENRICHD], env=cgi, capture_output=True, stdin=subprocess.DEVNULL)
        out = p.stdout.decode()
        check(out.startswith("Status: 503") and '"code":"unavailable"' in out, out)
