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


# ---- deploy.sh ------------------------------------------------------------------------

import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from harness import BASE_CONF, ROOT, deep_merge, free_port, render_conf, wait_for  # noqa: E402

DEPLOY = os.path.join(ROOT, "deploy.sh")


class Deploy:
    """./deploy.sh against a private directory: its own var/, configuration,
    store, state directory and free ports."""

    def __init__(self, d, conf=None):
        self.d = d
        os.chmod(d, 0o755)  # nginx's unprivileged workers reach the socket below it
        self.conf_path = os.path.join(d, "enrichd.conf")
        self.var = os.path.join(d, "var")
        self.state = os.path.join(d, "state")
        self.conf = deep_merge(BASE_CONF, {
            "threads": 4,
            "listen": os.path.join(d, "run", "enrichd.sock"),
            "store": "sqlite:" + os.path.join(d, "enrichd.db"),
            "data_dir": os.path.join(ROOT, "data"),
            "state_dir": self.state,
            "worker": {"poll_ms": 100},
        })
        if conf:
            self.conf = deep_merge(self.conf, conf)
        self.write(self.conf)
        self.https_port, self.http_port = free_port(), free_port()
        self.env = dict(os.environ, ENRICHD_VAR=self.var, ENRICHD_CONF=self.conf_path,
                        HTTPS_PORT=str(self.https_port), HTTP_PORT=str(self.http_port))

    def write(self, conf):
        with open(self.conf_path + ".tmp", "w") as f:
            f.write(render_conf(conf))
        os.replace(self.conf_path + ".tmp", self.conf_path)

    def run(self, *args, ok=True, env=None, plain=False):
        """Run deploy.sh; plain=True gives it only ENRICHD_VAR, as an operator who
        does not repeat the variables `up` was given."""
        e = dict(os.environ, ENRICHD_VAR=self.var) if plain else dict(self.env)
        e.update(env or {})
        p = subprocess.run([DEPLOY, *args], env=e, capture_output=True, text=True, timeout=300)
        if ok:
            check(p.returncode == 0, f"deploy.sh {args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def pidfile(self, name):
        return os.path.join(self.var, "run", name)

    def pid(self, name):
        with open(self.pidfile(name)) as f:
            return int(f.read().strip())

    def log(self, name="enrichd"):
        try:
            with open(os.path.join(self.var, "log", f"{name}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def get(self, path, headers=None, port=None, method="GET", body=None):
        from harness import Client
        c = Client(port or self.https_port, timeout=10)
        try:
            return c.request(method, path, headers=headers, json_body=body)
        finally:
            c.close()

    def healthy(self, port=None):
        try:
            return self.get("/health", port=port).status == 200
        except OSError:
            return False

    def key(self):
        with open(os.path.join(self.var, "dev-api-key")) as f:
            return f.read().strip()

    def processes(self):
        """Processes whose command line names this deployment's directory."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{p}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if self.d in cmd and state != "Z":
                out.append((int(p), cmd))
        return out

    def nginx_pid(self):
        with open(os.path.join(self.var, "nginx", "nginx.pid")) as f:
            return int(f.read())

    def nginx_workers(self):
        master = self.nginx_pid()
        kids = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open(f"/proc/{p}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == master and fields[0] != "Z":
                        kids.append(int(p))
                except OSError:
                    pass
        return sorted(kids)

    def down(self):
        self.run("down", ok=False)


def deployment(conf=None):
    d = tempfile.mkdtemp(prefix="enrichd-deploy-")
    return Deploy(d, conf)


def finish(dep):
    dep.down()
    left = dep.processes()
    subprocess.run(["rm", "-rf", dep.d])
    check(left == [], f"processes left after down: {left}")


def test_deploy_restarts_a_killed_responder_and_worker_and_down_leaves_nothing():
    dep = deployment()
    try:
        dep.run("up")
        check(dep.healthy(), "up")
        # The responder, killed: /health answers again, and the log says what happened.
        old = dep.pid("enrichd.child")
        os.kill(old, signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda: dep.healthy() and os.path.exists(dep.pidfile("enrichd.child"))
                 and dep.pid("enrichd.child") != old, timeout=15, what="enrichd restarted")
        took = time.monotonic() - t0
        check(took < 10, f"restart took {took:.1f}s")
        log = dep.log("enrichd")
        check(re.search(r'level=warn .*mod=supervise msg="enrichd \(pid %d\) was killed by signal 9 '
                        r'\(SIGKILL\) after \d+s; restarting it in 1s \(restart 1\)"' % old, log), log[-800:])
        check('msg="enrichd restarted (restart 1)"' in log, log[-800:])
        r = dep.get("/enrich", headers={"Authorization": "Bearer " + dep.key()},
                    method="POST", body={"email": "john.doe@example.com"})
        check(r.status == 200, r)
        # The worker, killed.
        old = dep.pid("enrich-worker.child")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: os.path.exists(dep.pidfile("enrich-worker.child"))
                 and dep.pid("enrich-worker.child") != old, timeout=15, what="worker restarted")
        log = dep.log("enrich-worker")
        check(re.search(r'enrich-worker \(pid %d\) was killed by signal 9 \(SIGKILL\).*restarting it' % old,
                        log), log[-800:])
        p = dep.run("status")
        check("enrichd:       running" in p.stdout and "supervised" in p.stdout, p.stdout)
        # A second death soon after backs off longer.
        old = dep.pid("enrichd.child")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: "restarting it in 2s (restart 2)" in dep.log("enrichd"), timeout=10,
                 what="second restart with back-off")
        wait_for(dep.healthy, timeout=15, what="health after the second restart")
    finally:
        finish(dep)


def test_deploy_up_survives_stale_pid_files():
    dep = deployment()
    other = subprocess.Popen(["sleep", "300"])
    try:
        dep.run("up")
        dep.run("down")
        os.makedirs(os.path.join(dep.var, "run"), exist_ok=True)
        # Pids of processes that are gone, and of other programs that run now.
        for name, pid in (("enrichd.pid", other.pid), ("enrichd.child", other.pid),
                          ("enrich-worker.pid", 4194000), ("enrich-worker.child", os.getpid())):
            with open(dep.pidfile(name), "w") as f:
                f.write(f"{pid}\n")
        with open(os.path.join(dep.var, "nginx", "nginx.pid"), "w") as f:
            f.write(f"{other.pid}\n")
        t0 = time.monotonic()
        p = dep.run("up")
        check("already running" not in p.stdout, p.stdout)
        check(dep.healthy(), "health after up over stale pid files")
        check(time.monotonic() - t0 < 30, "up took too long")
        check(other.poll() is None, "up killed an unrelated process")
        # kill -9 of everything at once: up again.  nginx's master and workers
        # are one process group.
        os.killpg(dep.nginx_pid(), signal.SIGKILL)
        for pid, _ in dep.processes():
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not dep.processes(), timeout=10, what="all killed")
        t0 = time.monotonic()
        p = dep.run("up")
        check("already running" not in p.stdout, p.stdout)
        check(dep.healthy() and time.monotonic() - t0 < 20, "up after kill -9")
        # Only the supervisor killed: its child is taken back under supervision.
        os.kill(dep.pid("enrichd.pid"), signal.SIGKILL)
        p = dep.run("up")
        check("runs without its supervisor" in p.stdout, p.stdout)
        check(dep.healthy(), "health")
        check(len([c for _, c in dep.processes() if "enrichd -c" in c and "__supervise" not in c]) == 1,
              dep.processes())
    finally:
        other.kill()
        other.wait()
        finish(dep)


def test_deploy_remembers_ports_and_configuration():
    dep = deployment()
    try:
        dep.run("up")
        with open(os.path.join(dep.var, "deploy.env")) as f:
            saved = f.read()
        check(f"HTTPS_PORT={dep.https_port}" in saved and dep.conf_path in saved, saved)
        # status and reload without the variables use the ports and file of up.
        p = dep.run("status", plain=True)
        check(f"https://127.0.0.1:{dep.https_port}" in p.stdout and '"status":"ok"' in p.stdout, p.stdout)
        dep.write(deep_merge(dep.conf, {"log_level": "warn"}))
        dep.run("reload", plain=True)
        site = open(os.path.join(dep.var, "nginx", "enrichd-site.conf")).read()
        check(f":{dep.https_port} ssl" in site and "8443" not in site, "nginx re-rendered on other ports")
        check(dep.healthy(), "health on the remembered port after reload")
        # Other values given later are not silently used.
        p = dep.run("reload", env={"HTTPS_PORT": "1"})
        check("using what ./deploy.sh up used" in p.stdout, p.stdout)
        check(dep.healthy(), "health")
        p = dep.run("history", plain=True)
        check("current" in p.stdout, p.stdout)
        p = dep.run("logs", plain=True)
        check("serving on" in p.stdout, p.stdout[-500:])
    finally:
        finish(dep)


def state_of(dep):
    """What each part runs: enrichd's and the worker's reload lines, nginx's
    workers and rendered site, the history and the last good file."""
    return {
        "enrichd_reloads": dep.log("enrichd").count('msg="reloaded'),
        "worker_reloads": dep.log("enrich-worker").count('msg="reloaded'),
        "nginx_workers": dep.nginx_workers(),
        "site": open(os.path.join(dep.var, "nginx", "enrichd-site.conf")).read(),
        "history": [l.split()[:2] + ["current" in l] for l in dep.run("history", plain=True).stdout.splitlines()
                    if re.match(r"\d{4}-\d\d-\d\dT", l)],
        "last_good": open(os.path.join(dep.state, "last-good.conf")).read(),
    }


def test_deploy_up_on_postgresql_local_and_given():
    """up --postgres starts a PostgreSQL under var/pg and runs everything on it; down
    stops it.  up with ENRICHD_STORE runs on that store; both are remembered."""
    from harness import pg_database
    dep = deployment()
    try:
        p = dep.run("up", "--postgres")
        url = f"postgresql://enrichd@/enrichd?host={dep.var}/pg&port=5432"
        check(f"store: {url}" in p.stdout, p.stdout)
        check(dep.healthy(), "health")
        r = dep.get("/admin/usage", headers={"Authorization": "Bearer " + dep.key()})
        check(r.status == 200, r)
        # The development account and key are in PostgreSQL, not in the SQLite file.
        out = subprocess.run(["psql", url, "-qAt", "-c", "SELECT name FROM accounts"],
                             capture_output=True, text=True, check=True).stdout.split()
        check(out == ["dev"], out)
        check(not os.path.exists(os.path.join(dep.d, "enrichd.db")), "an SQLite file was made")
        p = dep.run("status", plain=True)
        check(f"store:         {url}" in p.stdout, p.stdout)
        dep.run("reload", plain=True)
        check(dep.healthy(), "health after reload")
        p = dep.run("down", plain=True)
        check("PostgreSQL stopped" in p.stdout, p.stdout)
        check([c for _, c in dep.processes() if "postgres" in c] == [], dep.processes())
        # Given a store: used, and the local server is not started.
        given = pg_database()
        p = dep.run("up", env={"ENRICHD_STORE": given})
        check(f"store: {given}" in p.stdout and "PostgreSQL started" not in p.stdout, p.stdout)
        check(dep.healthy(), "health on the given store")
        p = dep.run("status", plain=True)
        check(f"store:         {given}" in p.stdout, p.stdout)
        check(dep.run("up", "--postgres", ok=False, env={"ENRICHD_STORE": given}).returncode != 0,
              "--postgres with ENRICHD_STORE is refused")
    finally:
        finish(dep)


def test_deploy_reload_is_all_or_nothing():
    dep = deployment()
    try:
        dep.run("up")
        key = dep.key()
        before = state_of(dep)
        check(len(before["nginx_workers"]) >= 1, before)
        # A server_name that would inject an nginx directive, with an endpoint toggle
        # beside it: refused (by enrichd -t or by nginx -t on the staged site).
        bad = deep_merge(dep.conf, {"http": {"server_name": "localhost; bogus_directive on"},
                                    "endpoints": {"enrich": {"enabled": False}}})
        dep.write(bad)
        p = dep.run("reload", ok=False, plain=True)
        check(p.returncode != 0 and "nothing changed" in p.stderr, p)
        check("bogus_directive" in p.stdout + p.stderr, f"the refusal names the problem: {p}")
        now = state_of(dep)
        check(now == before, f"a refused reload changed something: "
              f"{ {k: (before[k], now[k]) for k in now if now[k] != before[k]} }")
        r = dep.get("/enrich", headers={"Authorization": "Bearer " + key}, method="POST",
                    body={"email": "john.doe@example.com"})
        check(r.status == 200, f"the old file still runs: {r!r}")
        # A file enrichd accepts but whose rendered site nginx refuses (its
        # certificate is unreadable): nothing is signalled.
        cert = os.path.join(dep.var, "tls", "cert.pem")
        good_cert = open(cert).read()
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        dep.write(deep_merge(dep.conf, {"endpoints": {"enrich": {"enabled": False}}}))
        p = dep.run("reload", ok=False, plain=True)
        check(p.returncode != 0 and "nginx refused" in p.stderr and "nothing changed" in p.stderr, p)
        check(state_of(dep) == before, "a reload nginx refused changed something")
        r = dep.get("/enrich", headers={"Authorization": "Bearer " + key}, method="POST",
                    body={"email": "john.doe@example.com"})
        check(r.status == 200, f"the old file still runs: {r!r}")
        # Repaired: the same file is applied everywhere, and recorded.
        with open(cert, "w") as f:
            f.write(good_cert)
        p = dep.run("reload", plain=True)
        check("enrichd, enrich-worker and nginx run it" in p.stdout, p.stdout)
        after = state_of(dep)
        check(after["enrichd_reloads"] == before["enrichd_reloads"] + 1, after)
        check(after["worker_reloads"] == before["worker_reloads"] + 1, after)
        wait_for(lambda: dep.nginx_workers() and not set(dep.nginx_workers()) & set(before["nginx_workers"]),
                 timeout=10, what="new nginx workers")
        check(after["last_good"] == open(dep.conf_path).read(), "last good is the applied file")
        r = dep.get("/enrich", headers={"Authorization": "Bearer " + key}, method="POST",
                    body={"email": "john.doe@example.com"})
        check(r.status == 503 and r.json()["error"]["code"] == "endpoint_disabled", r)
    finally:
        finish(dep)


def test_deploy_reload_explains_a_secret_missing_from_the_service_environment():
    dep = deployment()
    try:
        dep.run("up")
        before = state_of(dep)
        late = deep_merge(dep.conf, {"providers": [
            {"name": "late", "kind": "pdl", "base_url": "https://127.0.0.1:9",
             "keys": [{"id": "late-1", "secret": "env:ENRICHD_TEST_LATE_KEY"}]}]})
        dep.write(late)
        # The operator exported the variable in this shell only: enrichd -t passes
        # here, the running enrichd (started without it) refuses.
        t0 = time.monotonic()
        p = dep.run("reload", ok=False, plain=True, env={"ENRICHD_TEST_LATE_KEY": "pdl-secret-1"})
        took = time.monotonic() - t0
        check(p.returncode != 0, p)
        err = p.stderr
        check("enrichd refused the file" in err and
              "environment variable ENRICHD_TEST_LATE_KEY is not set" in err, err)
        check("must be set in the environment enrichd runs in" in err and
              "/etc/enrichd/secrets.env" in err and "export ENRICHD_TEST_LATE_KEY=" in err, err)
        check("nothing changed" in err, err)
        check("pdl-secret-1" not in p.stdout + err, "a secret in the output")
        check(took < 4, f"reload waited {took:.1f}s instead of on the verdict")
        after = state_of(dep)
        check(after["worker_reloads"] == before["worker_reloads"] and
              after["nginx_workers"] == before["nginx_workers"] and
              after["history"] == before["history"], "the refusal changed something")
    finally:
        finish(dep)


def test_deploy_history_and_rollback_after_good_changes():
    dep = deployment()
    try:
        dep.run("up")
        key = dep.key()

        def enrich_status():
            return dep.get("/enrich", headers={"Authorization": "Bearer " + key}, method="POST",
                           body={"email": "john.doe@example.com"}).status

        check(enrich_status() == 200, "A")
        a = open(dep.conf_path).read()
        dep.write(deep_merge(dep.conf, {"endpoints": {"enrich": {"enabled": False}}}))
        b = open(dep.conf_path).read()
        dep.run("reload", plain=True)
        check(enrich_status() == 503, "B disables /enrich")
        h = dep.run("history", plain=True).stdout
        rows = [l for l in h.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", l)]
        check(len(rows) == 2 and "current" in rows[0] and "current" not in rows[1], h)
        # rollback after a successful change returns to A, which is live again.
        p = dep.run("rollback", plain=True)
        check("restored" in p.stdout and "kept the unapplied" not in p.stdout, p.stdout)
        check(open(dep.conf_path).read() == a, "the file is A again")
        check(enrich_status() == 200, "A is live after rollback")
        h = dep.run("history", plain=True).stdout
        rows = [l for l in h.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", l)]
        check(len(rows) == 3 and "current" in rows[0], h)
        check(rows[0].split()[1] == rows[2].split()[1] != rows[1].split()[1], f"A, B, A: {h}")
        check([f for f in os.listdir(dep.d) if ".rejected." in f] == [], "an applied file kept as rejected")
        # rollback to a checksum from the history: B again.
        sha_b = rows[1].split()[1]
        dep.run("rollback", sha_b, plain=True)
        check(open(dep.conf_path).read() == b and enrich_status() == 503, "rollback to B")
        # An edit that was never applied is kept as a rejected copy.
        with open(dep.conf_path, "a") as f:
            f.write("no_such_setting = 1;\n")
        p = dep.run("rollback", plain=True)
        check("kept the unapplied" in p.stdout, p.stdout)
        check(open(dep.conf_path).read() == b, "back to the running file")
        rejected = [f for f in os.listdir(dep.d) if ".rejected." in f]
        check(len(rejected) == 1 and "no_such_setting" in open(os.path.join(dep.d, rejected[0])).read(),
              rejected)
    finally:
        finish(dep)


def test_deploy_permissions_and_unprivileged_nginx_workers():
    dep = deployment()
    try:
        dep.run("up")
        check(dep.get("/enrich", headers={"Authorization": "Bearer " + dep.key()}, method="POST",
                      body={"email": "john.doe@example.com"}).status == 200, "the API works")

        def mode(p):
            return os.stat(p).st_mode & 0o7777

        db = os.path.join(dep.d, "enrichd.db")
        for p in (db, db + "-wal", db + "-shm"):
            if os.path.exists(p):
                check(mode(p) == 0o600, f"{p}: {oct(mode(p))}")
        check(os.path.exists(db + "-wal"), "WAL file")
        for p in ("log/enrichd.log", "log/enrich-worker.log", "nginx/logs/error.log",
                  "nginx/logs/access.log"):
            check(mode(os.path.join(dep.var, p)) == 0o640, f"{p}: {oct(mode(os.path.join(dep.var, p)))}")
        for p in ("", "run", "log", "nginx", "tls"):
            check(mode(os.path.join(dep.var, p)) == 0o750, f"var/{p}: {oct(mode(os.path.join(dep.var, p)))}")
        check(mode(os.path.join(dep.d, "run", "enrichd.sock")) == 0o660, "socket mode")
        if os.getuid() == 0:
            import pwd
            users = {pwd.getpwuid(os.stat(f"/proc/{w}").st_uid).pw_name for w in dep.nginx_workers()}
            check(users and "root" not in users, f"nginx workers run as {users}")
            import grp
            check(grp.getgrgid(os.stat(os.path.join(dep.d, "run", "enrichd.sock")).st_gid).gr_name
                  == "www-data", "the socket is in the workers' group")
    finally:
        finish(dep)


# ---- install and package ------------------------------------------------------------

import shutil  # noqa: E402

from harness import BUILD  # noqa: E402


def host_snapshot():
    """What an install into a DESTDIR must not touch on this machine."""
    snap = {}
    for f in ("/etc/passwd", "/etc/group", "/etc/shadow"):
        with open(f, "rb") as fh:
            snap[f] = fh.read()
    for d in ("/var/lib/nginx", "/var/lib", "/etc/nginx/sites-enabled", "/etc/nginx",
              "/etc/systemd/system", "/etc", "/usr/local/sbin", "/usr/local/bin", "/run"):
        snap[d] = sorted(os.listdir(d)) if os.path.isdir(d) else None
    return snap


def exposure(root, unit):
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", unit],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(unit), p.stdout)
    check(m, f"systemd-analyze security {unit}: {p.stdout[-500:]} {p.stderr[-500:]}")
    return float(m.group(1))


def verify_units(root, unit_dir, units):
    """systemd-analyze verify inside a copy of root that also has the system's
    targets and /bin/kill (what a real machine has around the units)."""
    v = tempfile.mkdtemp(prefix="enrichd-verify-")
    try:
        shutil.copytree(root, v, symlinks=True, dirs_exist_ok=True)
        os.makedirs(os.path.join(v, "usr/lib/systemd"), exist_ok=True)
        shutil.copytree("/usr/lib/systemd/system", os.path.join(v, "usr/lib/systemd/system"),
                        symlinks=True, dirs_exist_ok=True)
        os.makedirs(os.path.join(v, "bin"), exist_ok=True)
        shutil.copy("/bin/kill", os.path.join(v, "bin", "kill"))
        p = subprocess.run(["systemd-analyze", "verify", f"--root={v}", *units],
                           capture_output=True, text=True)
        check(p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "",
              f"systemd-analyze verify: {p.returncode}\n{p.stdout}\n{p.stderr}")
        for u in units:
            check(os.path.exists(os.path.join(v, unit_dir.lstrip("/"), u)), f"{u} not in {unit_dir}")
    finally:
        shutil.rmtree(v, ignore_errors=True)


def test_install_into_destdir_is_clean_and_its_units_verify():
    d = tempfile.mkdtemp(prefix="enrichd-destdir-")
    before = host_snapshot()
    try:
        p = subprocess.run([DEPLOY, "install", f"DESTDIR={d}", "PREFIX=/usr/local"],
                           env=dict(os.environ, BUILD=os.path.relpath(BUILD, ROOT)),
                           capture_output=True, text=True, timeout=600)
        check(p.returncode == 0, f"deploy.sh install: {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        check(host_snapshot() == before, "deploy.sh install DESTDIR=... wrote outside DESTDIR")
        for rel in ("usr/local/sbin/enrichd", "usr/local/bin/enrich-worker", "etc/enrichd/enrichd.conf",
                    "etc/systemd/system/enrichd.service", "etc/systemd/system/enrich-worker.service",
                    "etc/nginx/enrichd/enrichd-site.conf", "etc/nginx/enrichd/enrichd-errors.conf",
                    "etc/nginx/enrichd/enrichd-fastcgi.conf", "usr/local/share/enrichd/service-setup.sh"):
            check(os.path.exists(os.path.join(d, rel)), f"missing {rel}")
        check(not os.path.exists(os.path.join(d, "var")), "state directories belong to the target machine")
        # No DESTDIR in any installed text or link.
        for dirpath, dirs, files in os.walk(os.path.join(d, "etc")):
            for f in files + dirs:
                p = os.path.join(dirpath, f)
                if os.path.islink(p):
                    check(d not in os.readlink(p), f"{p} -> {os.readlink(p)}")
                elif os.path.isfile(p):
                    check(d not in open(p, errors="replace").read(), f"DESTDIR baked into {p}")
        check(os.readlink(os.path.join(d, "etc/nginx/sites-enabled/enrichd")) == "../sites-available/enrichd", "link")
        check(os.readlink(os.path.join(d, "etc/nginx/sites-available/enrichd")) ==
              "/etc/nginx/enrichd/enrichd-site.conf", "link")
        site = open(os.path.join(d, "etc/nginx/enrichd/enrichd-site.conf")).read()
        check("include /etc/nginx/enrichd/enrichd-fastcgi.conf;" in site, "include lines name the final path")
        check("server_name _;" in site and "localhost" not in site, "server_name")
        check("ssl-cert-snakeoil" in site, site)
        # The certificate comes from ssl-cert, a dependency; service-setup.sh makes it
        # on the target when ssl-cert could not.
        check("ssl-cert" in open(DEPLOY).read().split("PACKAGES=(", 1)[1].split(")", 1)[0], "ssl-cert")
        check("make-ssl-cert generate-default-snakeoil" in
              open(os.path.join(d, "usr/local/share/enrichd/service-setup.sh")).read(), "snakeoil")
        conf = os.path.join(d, "etc/enrichd/enrichd.conf")
        check(os.stat(conf).st_mode & 0o777 == 0o640, oct(os.stat(conf).st_mode))
        text = open(conf).read()
        for line in ('state_dir = "/var/lib/enrichd";', 'listen = "/run/enrichd/enrichd.sock";',
                     'listen_group = "www-data";', 'store = "sqlite:/var/lib/enrichd/enrichd.db";',
                     'server_name = "_";'):
            check(line in text, f"installed configuration lacks {line}")
        p = subprocess.run([os.path.join(d, "usr/local/sbin/enrichd"), "-t", "-c", conf],
                           capture_output=True, text=True)
        check(p.returncode == 0, f"the installed configuration does not pass enrichd -t: {p.stderr}")
        verify_units(d, "/etc/systemd/system", ["enrichd.service", "enrich-worker.service"])
        for unit in ("enrichd.service", "enrich-worker.service"):
            score = exposure(d, unit)
            check(score <= 4.0, f"{unit}: exposure {score}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_debian_package_builds_and_installs_into_a_scratch_root():
    p = subprocess.run(["make", "deb", f"BUILD={os.path.relpath(BUILD, ROOT)}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    check(p.returncode == 0, f"make deb: {p.stdout[-1500:]} {p.stderr[-1500:]}")
    deb = p.stdout.strip().splitlines()[-1]
    check(deb.endswith(".deb") and os.path.exists(deb), p.stdout)
    info = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"^ (\w[\w-]*): (.*)$", info, re.M))
    check(fields.get("Package") == "enrichd" and fields.get("Version") == open(os.path.join(ROOT, "VERSION")).read().strip(), fields)
    for dep in ("libcurl4", "libjansson4", "libconfig9", "libsqlite3-0", "ssl-cert",
                "nginx-light | nginx"):
        check(dep in fields.get("Depends", ""), f"Depends lacks {dep}: {fields.get('Depends')}")
    # enrichd speaks FastCGI itself: only the benchmark's baseline uses libfcgi.
    check("libfcgi" not in fields.get("Depends", ""), fields.get("Depends"))
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        check(re.search(r"\s%s\s" % script, info), f"no {script} in the package")
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = {l.split()[-1]: l.split()[:2] for l in listing.splitlines()}
    want = {"./usr/sbin/enrichd": "-rwxr-xr-x", "./usr/bin/enrich-worker": "-rwxr-xr-x",
            "./usr/bin/enrichctl": "-rwxr-xr-x", "./etc/enrichd/enrichd.conf": "-rw-r-----",
            "./lib/systemd/system/enrichd.service": "-rw-r--r--",
            "./lib/systemd/system/enrich-worker.service": "-rw-r--r--",
            "./usr/share/enrichd/service-setup.sh": "-rwxr-xr-x"}
    for f, mode in want.items():
        check(f in files and files[f] == [mode, "root/root"], f"{f}: {files.get(f)}")
    check(not any(f.startswith("./var/") or f.startswith("./etc/nginx") for f in files),
          "state and the rendered site are made on the target")
    # Install it into a scratch root with the maintainer scripts run against it.
    r = tempfile.mkdtemp(prefix="enrichd-dpkg-root-")
    os.chmod(r, 0o755)
    before = host_snapshot()
    try:
        for sub in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
            os.makedirs(os.path.join(r, sub), exist_ok=True)
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
            open(os.path.join(r, f), "w").close()
        for f in ("passwd", "group", "shadow", "gshadow", "login.defs"):
            shutil.copy(f"/etc/{f}", os.path.join(r, "etc", f))
        dpkg = ["dpkg", f"--root={r}", "--force-script-chrootless", "--log=/dev/null"]
        p = subprocess.run(dpkg + ["--force-depends", "-i", deb], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"dpkg -i: {p.stdout[-1500:]} {p.stderr[-1500:]}")
        check(host_snapshot() == before, "installing into a scratch root touched this machine")
        pw = [l.split(":") for l in open(os.path.join(r, "etc/passwd")) if l.startswith("enrichd:")]
        gr = [l.split(":") for l in open(os.path.join(r, "etc/group")) if l.startswith("enrichd:")]
        check(len(pw) == 1 and len(gr) == 1 and pw[0][3] == gr[0][2], f"user and group: {pw} {gr}")
        uid, gid = int(pw[0][2]), int(gr[0][2])
        st = os.stat(os.path.join(r, "var/lib/enrichd"))
        check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o750), "state directory")
        conf = os.path.join(r, "etc/enrichd/enrichd.conf")
        st = os.stat(conf)
        check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o640), "configuration root:enrichd 0640")
        site = open(os.path.join(r, "etc/nginx/enrichd/enrichd-site.conf")).read()
        check("include /etc/nginx/enrichd/enrichd-errors.conf;" in site and r not in site, "site")
        check(os.readlink(os.path.join(r, "etc/nginx/sites-enabled/enrichd")) == "../sites-available/enrichd", "link")
        # The service's own check, as the service's user and group.
        p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                            os.path.join(r, "usr/sbin/enrichd"), "-t", "-c", conf],
                           capture_output=True, text=True)
        check(p.returncode == 0, f"enrichd -t as the enrichd user: {p.stdout} {p.stderr}")
        verify_units(r, "/lib/systemd/system", ["enrichd.service", "enrich-worker.service"])
        p = subprocess.run(dpkg + ["--purge", "enrichd"], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, f"dpkg --purge: {p.stdout} {p.stderr}")
        for gone in ("var/lib/enrichd", "etc/nginx/enrichd", "etc/nginx/sites-enabled/enrichd", "usr/sbin/enrichd"):
            check(not os.path.lexists(os.path.join(r, gone)), f"{gone} left after purge")
    finally:
        shutil.rmtree(r, ignore_errors=True)
