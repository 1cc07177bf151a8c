"""The configuration file as the programs read it: paths relative to the file, values
nginx renders validated before nginx sees them, a store that cannot be opened named
with the reason."""

import os
import re
import subprocess
import tempfile

from harness import (BATCH, ENRICHCTL, ENRICHD, ROOT, WORKER, BASE_CONF, Env, check,
                     deep_merge, render_conf)
from providers import conf_with, keys_env


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_server_name_with_a_directive_is_refused_before_nginx():
    with tempfile.TemporaryDirectory(prefix="enrichd-conf-") as d:
        text = render_conf(deep_merge(BASE_CONF, {
            "listen": os.path.join(d, "s.sock"),
            "http": {"server_name": "localhost; bogus_directive on"}}))
        conf = write(os.path.join(d, "enrichd.conf"), text)
        line = 1 + [i for i, l in enumerate(text.splitlines()) if "bogus_directive" in l][0]
        p = subprocess.run([ENRICHD, "-t", "-c", conf], capture_output=True, text=True)
        check(p.returncode == 1, p)
        check(re.search(r"%s:%d: http\.server_name: \"localhost;\" is not a server name"
                        % (re.escape(conf), line), p.stderr), p.stderr)
        # render.sh reads the file through enrichd -p: it renders nothing.
        out = os.path.join(d, "nginx")
        r = subprocess.run([os.path.join(ROOT, "nginx", "render.sh"), out], cwd=ROOT,
                           env=dict(os.environ, ENRICHD=ENRICHD, ENRICHD_CONF=conf,
                                    CERT="/dev/null", CERT_KEY="/dev/null"),
                           capture_output=True, text=True)
        check(r.returncode != 0 and "http.server_name" in r.stderr, r)
        check(not os.path.exists(os.path.join(out, "enrichd-site.conf")), "a site was rendered")

        for bad, rx in (
                ('http = { cors_origins = [ "https://app.example.com/x" ]; };\n',
                 r":1: http\.cors_origins\[0\]: must be an origin"),
                ('http = { cors_origins = [ "https://app.example.com\\"; x" ]; };\n',
                 r":1: http\.cors_origins\[0\]: must be an origin"),
                ('listen = "/tmp/a b.sock";\n', r":1: listen: /tmp/a b\.sock has a space"),
                ('alerts = { webhook_url = "http://hooks.example.com/"; };\n',
                 r":1: alerts\.webhook_url: webhook_url must start with https://; http:// goes "
                 r"only to a loopback host")):
            write(conf, bad)
            p = subprocess.run([ENRICHD, "-t", "-c", conf], capture_output=True, text=True)
            check(p.returncode == 1 and re.search(re.escape(conf) + rx, p.stderr),
                  f"{bad!r}: {p.returncode} {p.stderr}")


def test_the_listen_backlog_is_rendered_and_checked():
    """nginx's queue of connections not yet accepted: 4096 unless LISTEN_BACKLOG
    says otherwise, on both listens; anything but a whole number is refused."""
    with tempfile.TemporaryDirectory(prefix="enrichd-conf-") as d:
        conf = write(os.path.join(d, "enrichd.conf"),
                     render_conf(deep_merge(BASE_CONF, {"listen": os.path.join(d, "s.sock")})))

        def render(**extra):
            out = os.path.join(d, "nginx")
            r = subprocess.run([os.path.join(ROOT, "nginx", "render.sh"), out], cwd=ROOT,
                               env=dict(os.environ, ENRICHD=ENRICHD, ENRICHD_CONF=conf,
                                        CERT="/dev/null", CERT_KEY="/dev/null", **extra),
                               capture_output=True, text=True)
            site = os.path.join(out, "enrichd-site.conf")
            return r, (open(site).read() if r.returncode == 0 else "")

        r, site = render()
        check(r.returncode == 0, r)
        listens = [ln.strip() for ln in site.splitlines() if ln.strip().startswith("listen ")]
        check(len(listens) == 2 and all(ln.endswith("backlog=4096;") for ln in listens), listens)
        r, site = render(LISTEN_BACKLOG="16384")
        check(r.returncode == 0 and site.count("backlog=16384;") == 2, (r, site[:300]))
        for bad in ("0", "4k", "1;ssl", "-1"):
            r, _ = render(LISTEN_BACKLOG=bad)
            check(r.returncode != 0 and "LISTEN_BACKLOG must be a whole number" in r.stderr,
                  (bad, r))


def test_relative_paths_follow_the_config_file():
    """A configuration with relative paths only: the responder (started from the
    repository root) and enrichctl (started from elsewhere) use the files beside it."""
    def conf(env):
        return {"listen": "enrichd.sock", "store": "sqlite:state/enrichd.db",
                "log_file": "enrichd.log",
                "data_dir": os.path.relpath(os.path.join(ROOT, "data"), env.tmp)}

    with tempfile.TemporaryDirectory(prefix="enrichd-elsewhere-") as elsewhere:
        env = Env(conf=conf, start=False)
        with env:
            os.mkdir(os.path.join(env.tmp, "state"))
            p = subprocess.run([ENRICHD, "-p", "-c", env.conf_path], capture_output=True,
                               text=True, cwd=elsewhere)
            check(p.returncode == 0, p)
            check(f"ENRICHD_LISTEN='{os.path.realpath(env.socket)}'" in p.stdout, p.stdout)
            env.start()  # nginx renders the socket from enrichd -p; /health answers
            r = env.request("GET", "/health")
            check(r.status == 200, r)
            db = os.path.join(env.tmp, "state", "enrichd.db")
            check(os.path.exists(db), "the store is beside the configuration file")
            check("mod=access" in env.log(), "the log file is beside the configuration file")
            c = subprocess.run([ENRICHCTL, "-c", env.conf_path, "account", "create", "far"],
                               capture_output=True, text=True, cwd=elsewhere, env=env.environ())
            check(c.returncode == 0, c)
            c = env.ctl("account", "list")  # from the repository root: the same store
            check("far" in c.stdout, c.stdout)
            check(os.listdir(elsewhere) == [], f"files made in the working directory: "
                                               f"{os.listdir(elsewhere)}")
            for name in ("enrichd.sock", "state", "enrichd.log"):
                check(not os.path.exists(os.path.join(ROOT, name)), f"{name} in the repository")


def test_enrich_batch_from_the_csv_folder_finds_its_store():
    def make(env):
        c = conf_with("pdl", 1)(env)
        c.update({"store": "sqlite:state/enrichd.db",
                  "data_dir": os.path.relpath(os.path.join(ROOT, "data"), env.tmp)})
        return c

    with Env(conf=make, sim=True, env=keys_env("pdl", 1), start=False) as env:
        os.mkdir(os.path.join(env.tmp, "state"))
        with tempfile.TemporaryDirectory(prefix="enrichd-csv-") as csvdir:
            write(os.path.join(csvdir, "in.csv"), "email\r\njohn.doe@acme.com\r\n")
            p = subprocess.run([BATCH, "-c", os.path.abspath(env.conf_path), "--input", "in.csv",
                                "--output", "out.csv", "--fields", "first_name,last_name"],
                               capture_output=True, text=True, cwd=csvdir, env=env.environ(),
                               timeout=120)
            check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
            check("cannot open" not in p.stderr, p.stderr)
            with open(os.path.join(csvdir, "out.csv"), encoding="utf-8") as f:
                rows = f.read().splitlines()
            check(len(rows) == 2 and rows[0].startswith("email,first_name,last_name"), rows)
            check(len(env.sim.calls(provider="pdl")) == 1, "the engine asked the provider")
            check(os.path.exists(os.path.join(env.tmp, "state", "enrichd.db")),
                  "the store beside the configuration file was used")
            check(not os.path.exists(os.path.join(csvdir, "state")), "no store in the CSV folder")


def test_store_that_cannot_be_opened_is_named_with_the_reason():
    with Env(start=False) as env:
        missing = os.path.join(env.tmp, "no", "such")
        db = os.path.join(missing, "x.db")
        env.write_conf(deep_merge(env.conf, {"store": "sqlite:" + db}))
        want = f"cannot open {db}: No such file or directory (directory {missing} does not exist)"
        for argv in ([ENRICHCTL, "-c", env.conf_path, "account", "list"],
                     [ENRICHCTL, "-c", env.conf_path, "migrate"],
                     [WORKER, "-c", env.conf_path],
                     [BATCH, "-c", env.conf_path, "--input", "x.csv", "--output", "y.csv"]):
            if argv[0] == BATCH:
                write(os.path.join(env.tmp, "x.csv"), "email\r\na@b.example\r\n")
            p = subprocess.run(argv, capture_output=True, text=True, cwd=env.tmp, timeout=60,
                               env=env.environ())
            name = os.path.basename(argv[0])
            check(p.returncode != 0, f"{name} exited 0: {p.stderr}")
            check(want in p.stderr, f"{name}: {p.stderr}")
            check("cannot answer right now" not in p.stderr, f"{name}: {p.stderr}")
        p = subprocess.run([ENRICHD, "-c", env.conf_path], capture_output=True, text=True,
                           timeout=20, cwd=ROOT)
        check(p.returncode == 1, p)
        check(want in env.log(), env.log()[-800:])
