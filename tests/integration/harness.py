"""Integration test harness: a real nginx, the real enrichd (and worker), and the
provider simulator, each in its own temporary directory on free loopback ports.

    with Env(conf={"threads": 4}) as env:
        r = env.request("GET", "/health")
        assert r.status == 200, r

Every wait is a condition polled until a timeout; nothing sleeps for a guessed time.
"""

import atexit
import collections
import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import openapi

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
FASTUP = os.path.join(BUILD, "bench", "fastup")
ENRICHD = os.path.join(BUILD, "enrichd")
ENRICHCTL = os.path.join(BUILD, "enrichctl")
WORKER = os.path.join(BUILD, "enrich-worker")
BATCH = os.path.join(BUILD, "enrich-batch")

_session_dir = None
_pg_url = None
_pg_dbs = 0

# The store the scenarios run on: "sqlite" (default) or "postgresql" (a server
# started once per session by tests/pg.sh, a fresh database per Env).
STORE_KIND = os.environ.get("ENRICHD_TEST_STORE", "sqlite")


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that cannot check anything on this machine (a tool or
    resource it needs is missing): run.py prints "SKIP file:test (reason)" and
    counts it neither passed nor failed.  Never for a check that failed."""


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def wait_for(cond, timeout=10.0, interval=0.02, what="condition"):
    """Poll cond() until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def in_threads(fn, n, timeout=30):
    """Run fn(i) for i in range(n) on n threads at once; wait for all of them."""
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)


def session_dir():
    global _session_dir
    if _session_dir is None:
        _session_dir = tempfile.mkdtemp(prefix="enrichd-session-")
    return _session_dir


def pg_server():
    """The session's PostgreSQL server (started on first use, stopped at exit);
    returns the URL of its "postgres" database."""
    global _pg_url
    if isinstance(_pg_url, TestFailure):
        raise _pg_url
    if _pg_url is None:
        # Its own directory under /tmp: the server may run as another user
        # (postgres, under root), who must be able to reach it.
        d = tempfile.mkdtemp(prefix="enrichd-pg-")
        p = subprocess.run([os.path.join(ROOT, "tests", "pg.sh"), "start", d],
                           capture_output=True, text=True)
        if p.returncode != 0:
            _pg_url = TestFailure(f"tests/pg.sh start failed:\n{p.stderr[-3000:]}")
            raise _pg_url
        _pg_url = p.stdout.strip()
        atexit.register(lambda: subprocess.run([os.path.join(ROOT, "tests", "pg.sh"), "stop", d],
                                               capture_output=True))
    return _pg_url


def pg_database():
    """A new empty database on the session's server; returns its URL."""
    global _pg_dbs
    base = pg_server()
    _pg_dbs += 1
    name = f"it_{os.getpid()}_{_pg_dbs}"
    subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    return base.replace("/postgres?", f"/{name}?")


def tls_cert():
    d = session_dir()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def port_from(proc, port_file, what):
    """The port a server started as proc wrote to port_file; None while it has not."""
    if proc.poll() is not None:
        raise TestFailure(f"{what} exited at start")
    try:
        with open(port_file) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


class FastUp:
    """bench/fastup.c on a free port: PDL answers after delay_ms over HTTP/1.1; with
    tls over TLS (its own certificate for 127.0.0.1, the CA file enrichd is given),
    HTTP/1.1 or, with h2 too, HTTP/2 (ALPN)."""

    def __init__(self, tmp, delay_ms, threads=1, tls=False, h2=False, max_streams=None):
        self.tls, self.h2 = tls or h2, h2
        name = f"fastup{delay_ms}{'h2' if h2 else 'tls' if tls else ''}"
        self.port_file = os.path.join(tmp, name + ".port")
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "wb")
        args = [FASTUP, "--port-file", self.port_file, "--delay-ms", str(delay_ms),
                "--threads", str(threads)]
        if self.tls:
            self.cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", self.cert],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            args += ["--tls-cert", self.cert, "--tls-key", key] + (["--h2"] if h2 else [])
        if max_streams:
            args += ["--max-streams", str(max_streams)]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(wait_for(lambda: port_from(self.proc, self.port_file, "fastup"),
                                 timeout=10, what="fastup port"))

    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/pdl"

    def close(self):
        """Stop it; then connections and answers are what it says it accepted and
        gave (None when it did not say)."""
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        with open(self.log_path) as f:
            m = re.search(r"fastup: (\d+) connections, (\d+) answers", f.read())
        self.connections, self.answers = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        return self.connections


_ports_given = collections.deque(maxlen=64)


def free_port():
    """A loopback port nothing listens on, and not one of the last ports handed out:
    the kernel may give a just-closed port again, and two servers of one nginx on
    the same port would make its plain server an ssl one."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given:
            _ports_given.append(port)
            return port


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def to_libconfig(value, indent=0):
    """Render a Python value as libconfig text (dict: group, list of dicts: list,
    other lists: array)."""
    pad = "  " * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -2**31 <= value < 2**31 else f"{value}L"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {k} = {to_libconfig(v, indent + 1)};\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return "(\n" + ",\n".join(pad + "  " + to_libconfig(v, indent + 1) for v in value) + "\n" + pad + ")"
        if not value:
            return "[ ]"
        return "[ " + ", ".join(to_libconfig(v, indent) for v in value) + " ]"
    raise TypeError(f"cannot render {value!r}")


def render_conf(conf):
    return "".join(f"{k} = {to_libconfig(v)};\n" for k, v in conf.items())


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise TestFailure(f"body is not JSON ({e}): {self.body[:300]!r}")

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:500]!r}>"


def _ssl_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client:
    """One keep-alive HTTPS connection (not thread-safe; one per thread).  Every
    response is checked against docs/openapi.json (tests/integration/openapi.py;
    run.py checks a test's responses when it ends): one the document does not
    describe fails the test."""

    def __init__(self, port, timeout=30):
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.ctx = _ssl_context()

    def _connect(self):
        self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout,
                                                context=self.ctx)

    def request(self, method, path, body=None, headers=None, json_body=None):
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                hdrs = [(k.lower(), v) for k, v in r.getheaders()]
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    openapi.record(method, path, r.status, hdrs, data)
                except openapi.Mismatch as e:
                    raise TestFailure(str(e)) from None
                return Response(r.status, hdrs, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # nginx may close an idle keep-alive connection; retry once on a new one.
                self.close()
                if attempt == 1:
                    raise
        raise TestFailure("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


BASE_CONF = {
    "threads": 8,
    "log_level": "info",
    "http": {"cors_origins": ["https://app.example.com"]},
    "limits": {"body_max_bytes": 65536},
    "accounts_default": {"requests_per_minute": 6000, "burst": 1000,
                         "records_per_hour": 100000, "records_per_day": 1000000},
}


class Sim:
    """The provider simulator (tests/sim/providersim.py) on a free port: one from
    free_port, so that no nginx of the tests is handed the same one (with port 0
    the kernel could give the simulator the port just chosen for an nginx that
    binds it later)."""

    def __init__(self, tmp, delay_ms=0):
        self.port_file = os.path.join(tmp, "sim.port")
        self.log = open(os.path.join(tmp, "sim.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "sim", "providersim.py"),
             "--port", str(free_port()), "--port-file", self.port_file,
             "--delay-ms", str(delay_ms)],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(wait_for(lambda: port_from(self.proc, self.port_file,
                                                   "provider simulator"),
                                 timeout=10, what="simulator port"))
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, kind):
        return f"{self.base}/{kind}"

    def _call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        out = r.read()
        conn.close()
        if r.status >= 300:
            raise TestFailure(f"simulator {method} {path}: {r.status} {out[:200]!r}")
        return json.loads(out) if out else None

    def reset(self):
        return self._call("POST", "/_sim/reset", {})

    def config(self, **kw):
        return self._call("POST", "/_sim/config", kw)

    def script(self, provider, key, steps, then="default"):
        return self._call("POST", "/_sim/script",
                          {"provider": provider, "key": key, "steps": steps, "then": then})

    def limits(self, **kw):
        return self._call("POST", "/_sim/limits", kw)

    def records(self, **kw):
        return self._call("POST", "/_sim/records", kw)

    def calls(self, provider=None, key=None, since_seq=None):
        q = []
        if provider:
            q.append(f"provider={provider}")
        if key:
            q.append(f"key={key}")
        if since_seq is not None:
            q.append(f"since_seq={since_seq}")
        return self._call("GET", "/_sim/calls" + ("?" + "&".join(q) if q else ""))["calls"]

    def clear_calls(self):
        return self._call("DELETE", "/_sim/calls")

    def stats(self):
        return self._call("GET", "/_sim/stats")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Env:
    """nginx + enrichd (+ optionally the simulator) in a temporary directory."""

    def __init__(self, conf=None, sim=False, sim_delay_ms=0, cgi=False, env=None,
                 start=True, worker=False, store_url=None, share_sim=None, store_kind=None):
        """store_url: use this store instead of a fresh one (a second "host" on the
        same PostgreSQL database); share_sim: another Env whose simulator this one
        calls (and does not stop); store_kind: "sqlite" or "postgresql" whatever
        ENRICHD_TEST_STORE says."""
        self.tmp = tempfile.mkdtemp(prefix="enrichd-it-")
        self.own_sim = share_sim is None
        self.cgi = cgi
        self.extra_env = dict(env or {})
        self.sim = None
        self.enrichd = None
        self.nginx = None
        self.fcgiwrap = None
        self.workers = []
        self.https_port = free_port()
        self.http_port = free_port()
        self.conf_path = os.path.join(self.tmp, "enrichd.conf")
        self.log_path = os.path.join(self.tmp, "enrichd.log")
        self.socket = os.path.join(self.tmp, "enrichd.sock")
        self.db_path = os.path.join(self.tmp, "enrichd.db")
        self.last_good = os.path.join(self.tmp, "state", "last-good.conf")
        if store_url:
            self.store_url = store_url
        elif (store_kind or STORE_KIND) == "postgresql":
            self.store_url = pg_database()
        else:
            self.store_url = "sqlite:" + self.db_path
        self._clients = threading.local()
        self.ok = False
        try:
            if share_sim is not None:
                self.sim = share_sim.sim
            elif sim:
                self.sim = Sim(self.tmp, delay_ms=sim_delay_ms)
            self.conf = deep_merge(BASE_CONF, {
                "listen": self.socket,
                "log_file": self.log_path,
                "store": self.store_url,
                "data_dir": os.path.join(ROOT, "data"),
                "state_dir": os.path.join(self.tmp, "state"),
            })
            if conf:
                self.conf = deep_merge(self.conf, conf(self) if callable(conf) else conf)
            self.write_conf(self.conf)
            if start:
                self.start()
                if worker:
                    self.start_worker()
        except BaseException:
            self.close()
            raise

    # -- configuration --------------------------------------------------------
    def write_conf(self, conf):
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(render_conf(conf))
        os.replace(tmp, self.conf_path)

    def write_conf_text(self, text):
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)

    def environ(self):
        e = dict(os.environ)
        e.update(self.extra_env)
        return e

    # -- processes --------------------------------------------------------------
    def start(self):
        cert, key = tls_cert()
        ngx = os.path.join(self.tmp, "nginx")
        render_env = self.environ()
        render_env.update({
            "ENRICHD": ENRICHD, "ENRICHD_CONF": self.conf_path, "PREFIX": ngx,
            "HTTP_PORT": str(self.http_port), "HTTPS_PORT": str(self.https_port),
            "CERT": cert, "CERT_KEY": key, "WORKERS": "1", "DAEMON": "off",
        })
        if self.cgi:
            wrap_sock = os.path.join(self.tmp, "fcgiwrap.sock")
            render_env.update({"CGI_WRAPPER_SOCKET": wrap_sock, "CGI_SCRIPT": ENRICHD})
            # fcgiwrap forks children: give it its own process group to stop them all.
            self.fcgiwrap = subprocess.Popen(
                ["/usr/sbin/fcgiwrap", "-c", "4", "-s", "unix:" + wrap_sock],
                env=self.environ(), stdout=subprocess.DEVNULL, start_new_session=True,
                stderr=open(os.path.join(self.tmp, "fcgiwrap.log"), "wb"))
            wait_for(lambda: os.path.exists(wrap_sock), what="fcgiwrap socket")
        subprocess.run([os.path.join(ROOT, "nginx", "render.sh"), ngx], env=render_env,
                       check=True, cwd=ROOT)
        if not self.cgi:
            self.start_enrichd()
        self.nginx_log = open(os.path.join(self.tmp, "nginx.out"), "wb")
        self.nginx = subprocess.Popen(["nginx", "-p", ngx, "-c", os.path.join(ngx, "nginx.conf")],
                                      stdout=self.nginx_log, stderr=subprocess.STDOUT)
        wait_for(self._nginx_up, timeout=10, what="nginx to listen")
        if not self.cgi:
            try:
                wait_for(self._health_ok, timeout=10, what="/health through nginx")
            except TestFailure as e:
                raise TestFailure(f"{e}\n--- enrichd.log (end) ---\n{self.log()[-3000:]}"
                                  f"\n--- nginx error.log (end) ---\n{self._nginx_errors()[-2000:]}"
                                  f"\n--- enrichd.out ---\n{self.output()[-1000:]}") from None

    def _nginx_errors(self):
        try:
            with open(os.path.join(self.tmp, "nginx", "logs", "error.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _health_ok(self):
        """/health answers 200 through nginx; a refused or reset connection (nginx
        still starting its worker) is a "not yet", not a failure."""
        if self.nginx.poll() is not None:
            raise TestFailure("nginx exited: " + open(self.nginx_log.name).read())
        try:
            return self.request("GET", "/health").status == 200
        except OSError:
            self.client().close()
            return False

    def start_enrichd(self):
        self.enrichd_out = open(os.path.join(self.tmp, "enrichd.out"), "ab")
        self.enrichd = subprocess.Popen([ENRICHD, "-c", self.conf_path], env=self.environ(),
                                        stdout=self.enrichd_out, stderr=subprocess.STDOUT,
                                        cwd=ROOT)
        wait_for(self._socket_up, timeout=10, what="enrichd socket")

    def _socket_up(self):
        if self.enrichd.poll() is not None:
            raise TestFailure(f"enrichd exited with {self.enrichd.returncode}: {self.output()}")
        if not os.path.exists(self.socket):
            return False
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _nginx_up(self):
        if self.nginx.poll() is not None:
            raise TestFailure("nginx exited: " + open(self.nginx_log.name).read())
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", self.https_port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def start_worker(self, args=(), env=None):
        e = self.environ()
        e.update(env or {})
        out = open(os.path.join(self.tmp, f"worker{len(self.workers)}.log"), "ab")
        p = subprocess.Popen([WORKER, "-c", self.conf_path, *args], env=e, stdout=out,
                             stderr=subprocess.STDOUT, cwd=ROOT)
        p.logfile = out.name
        self.workers.append(p)
        return p

    def signal(self, sig):
        self.enrichd.send_signal(sig)

    def reload(self, conf=None, text=None, expect="reloaded", timeout=10):
        """Write a new configuration and SIGHUP; wait for the reload verdict in the log."""
        marker = {"reloaded": "msg=\"reloaded", "refused": "msg=\"reload refused"}[expect]
        before = self.log().count(marker)
        if text is not None:
            self.write_conf_text(text)
        elif conf is not None:
            self.conf = conf
            self.write_conf(conf)
        self.signal(signal.SIGHUP)
        wait_for(lambda: self.log().count(marker) > before, timeout=timeout,
                 what=f"log line {marker}")

    def ctl(self, *args, check_rc=True, input=None):
        p = subprocess.run([ENRICHCTL, "-c", self.conf_path, *args], env=self.environ(),
                           capture_output=True, text=True, cwd=ROOT, input=input)
        if check_rc and p.returncode != 0:
            raise TestFailure(f"enrichctl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def sql(self, statement):
        """Run one SQL statement on the store behind the service's back (sqlite3 or
        psql); returns its output."""
        if self.store_url.startswith("sqlite:"):
            cmd = ["sqlite3", self.db_path, statement]
        else:
            cmd = ["psql", self.store_url, "-qAt", "-c", statement]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    # -- HTTP -----------------------------------------------------------------
    def client(self):
        c = getattr(self._clients, "c", None)
        if c is None:
            c = Client(self.https_port)
            self._clients.c = c
        return c

    def request(self, method, path, body=None, headers=None, json_body=None):
        return self.client().request(method, path, body=body, headers=headers,
                                     json_body=json_body)

    def new_client(self):
        return Client(self.https_port)

    def http_plain(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        conn.request(method, path)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)

    # -- logs -----------------------------------------------------------------
    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def output(self):
        try:
            with open(os.path.join(self.tmp, "enrichd.out"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout=timeout, what=f"log /{pattern}/")

    def dump(self):
        out = []
        for name in sorted(os.listdir(self.tmp)):
            p = os.path.join(self.tmp, name)
            if name.endswith((".log", ".out")) and os.path.isfile(p):
                with open(p, errors="replace") as f:
                    tail = f.read()[-4000:]
                out.append(f"--- {name} ---\n{tail}")
        return "\n".join(out)

    # -- teardown -------------------------------------------------------------
    def stop_enrichd(self, timeout=40):
        if self.enrichd and self.enrichd.poll() is None:
            self.enrichd.send_signal(signal.SIGTERM)
            try:
                self.enrichd.wait(timeout)
            except subprocess.TimeoutExpired:
                self.enrichd.kill()
                self.enrichd.wait()
        return self.enrichd.returncode if self.enrichd else None

    def close(self):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        self.stop_enrichd()
        if self.fcgiwrap and self.fcgiwrap.poll() is None:
            os.killpg(self.fcgiwrap.pid, signal.SIGTERM)
            self.fcgiwrap.wait()
        if self.sim and self.own_sim:
            self.sim.close()
        if self.ok or os.environ.get("KEEP_TMP") is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            sys.stdout.write(self.dump() + "\n")
        else:
            self.ok = True
        self.close()
        return False


class Load:
    """Background load: N threads each with its own keep-alive connection,
    counting every status and every transport error."""

    def __init__(self, env, n=4, method="GET", path="/health", headers=None, body=None):
        self.env = env
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(method, path, headers, body),
                                         daemon=True) for _ in range(n)]

    def _run(self, method, path, headers, body):
        c = self.env.new_client()
        while not self.stop_flag.is_set():
            try:
                r = c.request(method, path, body=body, headers=headers)
                with self.lock:
                    self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure is counted
                with self.lock:
                    self.errors.append(repr(e))
                c.close()
        c.close()

    def total(self):
        with self.lock:
            return sum(self.statuses.values()) + len(self.errors)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        return False
