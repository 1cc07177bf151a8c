"""enrich-batch, the command-line batch runner: the real binary on the real engine,
store and HTTP client against the provider simulator (no nginx needed).

Every scenario asserts the output file byte for byte or row by row, the exit status,
the messages, and the upstream calls the simulator saw."""

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import urllib.parse

from harness import BATCH, Env, check, wait_for
from providers import conf_with, keys_env

PDL = "pdl"
PERSON_PATH = "/pdl/v5/person/enrich"


def batch_env(n=2, rotation=None, **kw):
    rot = {"strategy": "ordered"}
    rot.update(rotation or {})
    return Env(conf=conf_with(PDL, n, rotation=rot, **kw), sim=True, env=keys_env(PDL, n),
               start=False)


def run_batch(env, *args, environ=None, timeout=180):
    e = env.environ() if environ is None else environ
    return subprocess.run([BATCH, "-c", env.conf_path, *args], env=e, capture_output=True,
                          text=True, cwd=env.tmp, timeout=timeout)


def start_batch(env, *args):
    err = open(os.path.join(env.tmp, "batch.err"), "w+")
    p = subprocess.Popen([BATCH, "-c", env.conf_path, *args], env=env.environ(),
                         stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=env.tmp)
    p.errfile = err
    return p


def finish(p, timeout=60):
    p.wait(timeout)
    p.errfile.seek(0)
    return p.returncode, p.errfile.read()


def path(env, name):
    return os.path.join(env.tmp, name)


def write(env, name, data):
    with open(path(env, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path(env, name)


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


def read_csv(p):
    with open(p, newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def emails_csv(emails, header="email"):
    return header + "\r\n" + "".join(e + "\r\n" for e in emails)


def person_emails(env):
    """E-mail addresses of the person lookups the simulator answered, in order."""
    return [c["query"].get("email") for c in env.sim.calls(provider=PDL) if c["path"] == PERSON_PATH]


def expected(env, email):
    q = urllib.parse.urlencode({"provider": PDL, "kind": "person", "email": email})
    return env.sim._call("GET", "/_sim/expected?" + q)["fields"]


def ckpt_rows(p):
    """Rows in a checkpoint, read the way any other program would; None while the
    file or its table does not exist yet."""
    if not os.path.exists(p):
        return None
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5)
        try:
            return dict(db.execute("SELECT n, state FROM rows").fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return None


def interrupted_run(env, name, out, ck, *args):
    """Start a slow run of 40 rows into checkpoint ck with args, stop it with SIGINT
    once two rows are in, and return (input path, exit status, stderr)."""
    env.sim.config(delay_ms=30)
    inp = write(env, name, emails_csv([f"{name[:2]}{i}.x@{name[:2]}co{i}.com" for i in range(40)]))
    p = start_batch(env, "--input", inp, "--output", out, *args, "--checkpoint", ck,
                    "--workers", "1")
    wait_for(lambda: p.poll() is not None or len(ckpt_rows(ck) or {}) >= 2, timeout=60,
             what="rows in the checkpoint")
    p.send_signal(signal.SIGINT)
    return (inp,) + finish(p)


def check_progress_lines(stderr):
    lines = [l for l in stderr.splitlines() if l.startswith("enrich-batch: progress ")]
    check(lines, f"no progress line on stderr: {stderr}")
    check("\r" not in stderr and "\033" not in stderr, "terminal control codes on a non-terminal")
    return lines


RESUME_RX = re.compile(r"interrupted: (\d+) of (\d+) rows done; resume with: (enrich-batch --input .* --output .* --resume)$",
                       re.M)


def test_nasty_rows_come_out_in_order_with_their_status():
    with batch_env() as env:
        data = ("\ufeffE-mail,Notes,Company,Title,Extra Col\r\n"
                "john.doe@acme.com,\"hello, world\",Acme,CEO,x1\r\n"
                "jane.roe@globex.com,\"line one\nline two\",Globex,,x2\r\n"
                "not-an-email,bad,Foo,,x3\r\n"
                "miss.someone@acme.com,,,,x4\r\n"
                "only,three,fields\r\n"
                "\"bob.smith@initech.com\",\"she said \"\"hi\"\"\",Initech,,x6\n"
                "junk-only,,,,x7\r\n"
                "st\"ray@x.com,n,,,x8\r\n"
                "z.z@zz.com,1,2,3,4,5\r\n")
        inp = write(env, "in.csv", data)
        out, rep, errs = path(env, "out.csv"), path(env, "report.json"), path(env, "errors.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields",
                      "first_name, last_name,title,company_name,phone", "--workers", "3",
                      "--report", rep, "--errors", errs)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        check(p.stdout == "", f"stdout is not for messages: {p.stdout!r}")

        raw = read_bytes(out)
        check(raw.startswith(b"\xef\xbb\xbf"), "the input's byte order mark is kept")
        rows = read_csv(out)
        # Added columns take their field's name unless an input column has it (the
        # job results' rule): "Title" is taken, "Company" is another name.
        check(rows[0] == ["E-mail", "Notes", "Company", "Title", "Extra Col", "first_name",
                          "last_name", "company_name", "title_enriched", "phone",
                          "_status", "_error"], rows[0])
        check(len(rows) == 10, rows)
        john, jane, bob = (expected(env, e) for e in
                           ("john.doe@acme.com", "jane.roe@globex.com", "bob.smith@initech.com"))

        def enriched(x):
            # A phone number starts with "+": the cell gets its quote (--formulas).
            return [x["first_name"], x["last_name"], x["company_name"], x["title"], "'" + x["phone"]]

        ignored = "email ignored: not a valid e-mail address"
        check(rows[1] == ["john.doe@acme.com", "hello, world", "Acme", "CEO", "x1"] + enriched(john) +
              ["complete", ""], rows[1])
        check(rows[2] == ["jane.roe@globex.com", "line one\nline two", "Globex", "", "x2"] +
              enriched(jane) + ["complete", ""], rows[2])
        # A junk e-mail beside a company name: the row runs on the company and says so;
        # the company lookup (keyed by the name) answers the company's fields.
        check(rows[3] == ["not-an-email", "bad", "Foo", "", "x3"] + ["", "", "Foo", "", ""] +
              ["partial", ignored], rows[3])
        # Nobody by that address, but the company is known: its fields are filled.
        check(rows[4] == ["miss.someone@acme.com", "", "", "", "x4"] + ["", "", "Acme Inc", "", ""] +
              ["partial", ""], rows[4])
        # A short row is padded and keeps its values.
        check(rows[5] == ["only", "three", "fields", "", ""] + ["", "", "fields", "", ""] +
              ["partial", ignored], rows[5])
        check(rows[6] == ["bob.smith@initech.com", 'she said "hi"', "Initech", "", "x6"] +
              enriched(bob) + ["complete", ""], rows[6])
        # Nothing valid left: invalid, input carried.
        check(rows[7][:10] == ["junk-only", "", "", "", "x7"] + [""] * 5 and rows[7][10] == "invalid" and
              rows[7][11].startswith("invalid_email: "), rows[7])
        # Rows the reader rejects keep the cells it could split.
        check(rows[8] == ['st"ray@x.com', "n", "", "", "x8"] + [""] * 5 +
              ["invalid", "csv_row: quote inside an unquoted field (line 10)"], rows[8])
        check(rows[9] == ["z.z@zz.com", "1", "2", "3", "4"] + [""] * 5 +
              ["invalid", "csv_row: 6 fields, the header has 5 (line 11)"], rows[9])
        check(john["first_name"] == "John" and john["phone"].startswith("+1 555 01"), john)
        # Quoting on the way out follows RFC 4180 and CRLF line ends.
        check(b'"hello, world"' in raw and b'"line one\nline two"' in raw and
              b'"she said ""hi"""' in raw and raw.endswith(b"\r\n"), raw[:400])

        r = json.load(open(rep))
        for k, v in {"rows": 9, "done": 9, "complete": 3, "partial": 3, "not_found": 0,
                     "failed": 0, "invalid": 3, "interrupted": False, "exit_status": 0}.items():
            check(r[k] == v, f"report {k} = {r[k]!r}, want {v!r}: {r}")
        check(r["errors"] == {"csv_row": 2, "invalid_email": 1}, r["errors"])
        # Four person lookups (three hits), three company lookups (Foo, fields, acme.com).
        check(r["upstream_calls"] == len(env.sim.calls(provider=PDL)) == 7 and r["credits"] == 6, r)
        check(r["options"]["fields"] == ["first_name", "last_name", "company_name", "title", "phone"]
              and r["options"]["workers"] == 3, r["options"])
        check(read_csv(errs) == [["row", "line", "status", "code", "reason"],
                                 ["7", "9", "invalid", "invalid_email", rows[7][11][len("invalid_email: "):]],
                                 ["8", "10", "invalid", "csv_row", "quote inside an unquoted field (line 10)"],
                                 ["9", "11", "invalid", "csv_row", "6 fields, the header has 5 (line 11)"]],
              read_csv(errs))
        # The miss was asked once; invalid rows and ignored identifiers never reach a provider.
        check(sorted(person_emails(env)) == sorted(["john.doe@acme.com", "jane.roe@globex.com",
                                                    "miss.someone@acme.com", "bob.smith@initech.com"]),
              person_emails(env))
        check("9 rows: 3 complete, 3 partial, 0 not found, 0 failed, 3 invalid" in p.stderr, p.stderr)
        check_progress_lines(p.stderr)
        # Finished without failures: no checkpoint and no temporary file stay behind.
        check(not os.path.exists(out + ".checkpoint") and not os.path.exists(out + ".tmp"),
              os.listdir(env.tmp))


def test_interrupt_then_resume_equals_an_uninterrupted_run():
    emails = [f"person{i}.x{i}@co{i}.com" for i in range(200)]
    fields = "first_name,last_name,title,city"
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        out = path(env, "out.csv")
        ckpt = out + ".checkpoint"
        env.sim.config(delay_ms=50)
        p = start_batch(env, "--input", inp, "--output", out, "--fields", fields, "--workers", "4")
        wait_for(lambda: p.poll() is not None or len(ckpt_rows(ckpt) or {}) >= 20, timeout=60,
                 what="20 rows in the checkpoint")
        check(p.poll() is None, "the run ended before it could be interrupted")
        p.send_signal(signal.SIGINT)
        rc, err = finish(p)
        check(rc == 130, f"exit {rc}: {err}")
        m = RESUME_RX.search(err)
        check(m, f"no resume message: {err}")
        done = int(m.group(1))
        check(m.group(2) == "200" and 20 <= done < 200, m.group(0))
        check(m.group(3).startswith(f"enrich-batch --input {inp} --output {out} --fields {fields} "),
              m.group(3))
        check(not os.path.exists(out) and not os.path.exists(out + ".tmp"),
              "an interrupted run writes no output")
        rows = ckpt_rows(ckpt)
        check(len(rows) == done, f"checkpoint holds {len(rows)} rows, message says {done}")
        first = person_emails(env)
        # Rows in flight finished and were committed: every call belongs to a done row.
        check(len(first) == len(set(first)) == done, f"{len(first)} calls for {done} rows")
        check(set(first) == {emails[n - 1] for n in rows}, "calls and checkpoint rows differ")

        env.sim.clear_calls()
        env.sim.config(delay_ms=0)
        p2 = run_batch(env, "--input", inp, "--output", out, "--fields", fields, "--workers", "4",
                       "--resume")
        check(p2.returncode == 0, f"resume exit {p2.returncode}: {p2.stderr}")
        check(f"resuming: {done} of 200 rows done by an earlier run, {200 - done} to go" in p2.stderr,
              p2.stderr)
        second = person_emails(env)
        check(len(second) == len(set(second)) == 200 - done, f"{len(second)} calls on resume")
        check(not set(first) & set(second), "a row finished before the interrupt was paid twice")
        check(set(first) | set(second) == set(emails), "some rows were never looked up")
        check(not os.path.exists(ckpt), "a finished run without failures keeps no checkpoint")
        resumed = read_bytes(out)

    # The same input, uninterrupted, on a fresh store and simulator: nothing in the output
    # depends on timing, key choice, the cache or the run, so the bytes must match.
    with batch_env() as env2:
        inp2 = write(env2, "in.csv", emails_csv(emails))
        out2 = path(env2, "whole.csv")
        p3 = run_batch(env2, "--input", inp2, "--output", out2, "--fields", fields, "--workers", "7")
        check(p3.returncode == 0, p3.stderr)
        check(read_bytes(out2) == resumed, "resumed output differs from an uninterrupted run")
        rows = read_csv(out2)
        check([r[0] for r in rows[1:]] == emails, "rows out of input order")
        check(all(r[-2] == "complete" for r in rows[1:]), rows[:3])
        # A second run on the warm cache: same bytes, no upstream call.
        env2.sim.clear_calls()
        out3 = path(env2, "again.csv")
        p4 = run_batch(env2, "--input", inp2, "--output", out3, "--fields", fields)
        check(p4.returncode == 0 and read_bytes(out3) == resumed, p4.stderr)
        check(env2.sim.calls(provider=PDL) == [], "cached rows were paid again")
        check("200 rows from the cache" in p4.stderr, p4.stderr)


def test_dry_run_calls_nobody_and_sees_the_cache():
    emails = [f"dry{i}.run@dryco{i}.com" for i in range(30)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails + ["broken@"]))
        rep = path(env, "dry.json")
        # A dry run needs no provider secret: none is in its environment.
        bare = {k: v for k, v in env.environ().items() if not k.startswith("PDL_KEY_")}
        p = run_batch(env, "--input", inp, "--dry-run", "--report", rep, environ=bare)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        check(env.sim.calls() == [], f"a dry run called upstream: {env.sim.calls()[:2]}")
        check(re.search(r"would call a provider\s+30\b", p.stdout), p.stdout)
        check(re.search(r"\bpdl\s+30\s+60\s+1\s+60\b", p.stdout), p.stdout)
        r = json.load(open(rep))
        for k, v in {"dry_run": True, "rows": 31, "invalid": 1, "cached_rows": 0,
                     "rows_needing_calls": 30, "credits_max": 60, "upstream_calls": 0}.items():
            check(r[k] == v, f"dry report {k} = {r[k]!r}, want {v!r}")
        check(r["providers"] == {"pdl": {"rows": 30, "lookups_max": 60, "credits_per_hit": 1,
                                         "credits_max": 60}}, r["providers"])
        check(r["errors"] == {"invalid_email": 1}, r["errors"])
        check(not [f for f in os.listdir(env.tmp) if "checkpoint" in f], "a dry run writes no checkpoint")

        out = path(env, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out)
        check(p.returncode == 0, p.stderr)
        real = read_csv(out)
        check(sum(1 for row in real[1:] if row[-2] == "complete") == 30, real[:2])
        paid = sum(1 for c in env.sim.calls(provider=PDL) if c["status"] == 200)
        check(paid <= 60, f"the dry run's bound was {60}, the run made {paid} paid calls")

        env.sim.clear_calls()
        p = run_batch(env, "--input", inp, "--dry-run", "--report", rep)
        check(p.returncode == 0, p.stderr)
        check(env.sim.calls() == [], "the second dry run called upstream")
        r = json.load(open(rep))
        check(r["cached_rows"] == 30 and r["rows_needing_calls"] == 0 and r["credits_max"] == 0 and
              r["providers"] == {}, r)
        check(re.search(r"answered from the cache\s+30\b", p.stdout), p.stdout)


def test_retry_failed_runs_only_the_failed_rows():
    emails = [f"retry{i}.x@rfirm{i}.com" for i in range(20)]
    # A breaker that never trips keeps the failures to exactly the scripted calls.
    with batch_env(rotation={"breaker_threshold": 1000}) as env:
        for i in (1, 2):
            env.sim.script(PDL, keys_env(PDL, 2)[f"PDL_KEY_{i}"], [{"kind": "error", "status": 503}] * 3)
        inp = write(env, "in.csv", emails_csv(emails))
        out, errs = path(env, "out.csv"), path(env, "errors.csv")
        args = ("--input", inp, "--output", out, "--fields", "first_name,title", "--errors", errs)
        p = run_batch(env, *args, "--workers", "4")
        # Rows failed: exit 3 ("some rows failed"), everything else as usual.
        check(p.returncode == 3, f"exit {p.returncode}: {p.stderr}")
        failed = read_csv(errs)[1:]
        # Every row asks pdl-1 first, then pdl-2: three rows meet a 503 on both.
        check(len(failed) == 3 and all(f[2] == "failed" and f[3] == "upstream_failed" for f in failed),
              failed)
        failed_emails = {emails[int(f[0]) - 1] for f in failed}
        rows = read_csv(out)
        check({r[0] for r in rows[1:] if r[-2] == "failed"} == failed_emails, rows)
        check(all(r[-1].startswith("upstream_failed: ") for r in rows[1:] if r[-2] == "failed"), rows)
        check(f"{len(failed)} rows failed" in p.stderr and "--retry-failed" in p.stderr, p.stderr)
        check(os.path.exists(out + ".checkpoint"), "failed rows keep the checkpoint")

        # --resume alone has nothing to do: failed is a result of that run.
        env.sim.clear_calls()
        p = run_batch(env, *args, "--resume")
        check(p.returncode == 3 and person_emails(env) == [], p.stderr)
        check(len(read_csv(errs)) == len(failed) + 1, "resume lost the failures")

        p = run_batch(env, *args, "--retry-failed")
        check(p.returncode == 0, p.stderr)
        again = person_emails(env)
        check(sorted(again) == sorted(failed_emails), f"retried {again}, failed were {failed_emails}")
        rows = read_csv(out)
        check(len(rows) == 21 and all(r[-2] == "complete" for r in rows[1:]), rows)
        check([r[0] for r in rows[1:]] == emails, "rows out of order after the retry")
        check(read_csv(errs) == [["row", "line", "status", "code", "reason"]], read_csv(errs))
        check(not os.path.exists(out + ".checkpoint"), "nothing left to retry, yet a checkpoint")


def test_checkpoint_mismatch_and_leftover_are_refused():
    emails = [f"ck{i}.x@ckfirm{i}.com" for i in range(120)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        out = path(env, "out.csv")
        ckpt = out + ".checkpoint"
        env.sim.config(delay_ms=40)
        p = start_batch(env, "--input", inp, "--output", out, "--fields", "title", "--workers", "2")
        wait_for(lambda: p.poll() is not None or len(ckpt_rows(ckpt) or {}) >= 4, timeout=60,
                 what="rows in the checkpoint")
        p.send_signal(signal.SIGTERM)
        rc, err = finish(p)
        check(rc == 143, f"SIGTERM exit {rc}: {err}")
        check(RESUME_RX.search(err), err)
        before = ckpt_rows(ckpt)
        env.sim.config(delay_ms=0)
        env.sim.clear_calls()

        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title")
        check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
        check("a checkpoint of an earlier run exists" in p.stderr and "--resume" in p.stderr and
              f"rm {ckpt}" in p.stderr, p.stderr)

        other = write(env, "other.csv", emails_csv(emails[:-1] + ["someone.else@ckfirm.com"]))
        p = run_batch(env, "--input", other, "--output", out, "--fields", "title", "--resume")
        check(p.returncode == 1 and "belongs to another input" in p.stderr and inp in p.stderr, p.stderr)

        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title,phone", "--resume")
        check(p.returncode == 1 and "was made with --fields title, this run asks for title,phone"
              in p.stderr, p.stderr)

        p = run_batch(env, "--input", inp, "--output", path(env, "elsewhere.csv"), "--resume")
        check(p.returncode == 1 and "nothing to resume" in p.stderr, p.stderr)

        notckpt = write(env, "notes.txt", "just some text\n")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--checkpoint",
                      notckpt, "--resume")
        check(p.returncode == 1 and "is not an enrich-batch checkpoint" in p.stderr, p.stderr)
        check(read_bytes(notckpt) == b"just some text\n", "a foreign file was changed")

        check(env.sim.calls() == [] and ckpt_rows(ckpt) == before and not os.path.exists(out),
              "a refused run touched something")
        # The same input moved elsewhere still resumes: the content is what counts.
        moved = write(env, "moved.csv", read_bytes(inp))
        p = run_batch(env, "--input", moved, "--output", out, "--fields", "title", "--resume")
        check(p.returncode == 0 and "has the same content" in p.stderr, p.stderr)
        check(len(read_csv(out)) == 121, "resumed output is incomplete")


def test_bad_input_and_usage_are_reported_clearly():
    with batch_env() as env:
        out = path(env, "out.csv")
        cases = [
            ("missing.csv", None, 1, "cannot read the input"),
            ("empty.csv", "", 1, "is empty"),
            ("header.csv", "email\r\n", 1, "has a header but no rows"),
            ("noident.csv", "foo,bar\r\n1,2\r\n", 1, "has no identifier column"),
            ("open.csv", "email,notes\r\na@b.com,x\r\nc@d.com,\"never closed\r\nmore\r\n", 1,
             "cannot be read past line 3"),
            ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", 1,
             "is not a readable CSV file: line 1"),
        ]
        for name, data, want_rc, msg in cases:
            inp = path(env, name) if data is None else write(env, name, data)
            p = run_batch(env, "--input", inp, "--output", out)
            check(p.returncode == want_rc and msg in p.stderr, f"{name}: exit {p.returncode}: {p.stderr}")
        big = write(env, "big.csv", emails_csv(["a.b@c.com"] * 10))
        p = run_batch(env, "--input", big, "--output", out, "--max-bytes", "20")
        check(p.returncode == 1 and "larger than 20 bytes" in p.stderr, p.stderr)
        p = run_batch(env, "--input", big, "--output", os.path.join(env.tmp, "no", "such", "dir.csv"))
        check(p.returncode == 1 and "cannot write the output" in p.stderr, p.stderr)
        for args, msg in ((("--output", out), "--input is required"),
                          (("--input", big), "--output is required"),
                          (("--input", big, "--output", out, "--fields", "title,shoe_size"),
                           '"shoe_size" is not a field that can be enriched'),
                          (("--input", big, "--output", out, "--fields", "title,,phone"),
                           "an empty entry in the list of fields"),
                          (("--input", big, "--output", out, "--workers", "0"), "--workers"),
                          (("--input", big, "--output", big), "--output names the same file as --input"),
                          (("--input", big, "--dry-run", "--resume"), "--dry-run")):
            p = run_batch(env, *args)
            check(p.returncode == 2 and msg in p.stderr, f"{args}: exit {p.returncode}: {p.stderr}")
        bad_conf = write(env, "bad.conf", "threads = \"many\";\n")
        p = subprocess.run([BATCH, "-c", bad_conf, "--input", big, "--output", out],
                           capture_output=True, text=True, env=env.environ())
        check(p.returncode == 1 and "bad.conf:1: threads" in p.stderr, p.stderr)
        check(env.sim.calls() == [] and not os.path.exists(out), "bad input reached a provider")


def test_progress_lines_on_a_non_terminal():
    emails = [f"prog{i}.x@progco{i}.com" for i in range(60)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        env.sim.config(delay_ms=40)
        p = run_batch(env, "--input", inp, "--output", path(env, "out.csv"), "--fields", "title",
                      "--workers", "1", "--progress-interval", "1")
        check(p.returncode == 0, p.stderr)
        lines = check_progress_lines(p.stderr)
        check(len(lines) >= 2, f"want a line a second and one at the end: {lines}")
        rx = re.compile(r"^enrich-batch: progress (\d+)/60 rows \(\d+\.\d%\), 0 failed, \d+ rows?/min, "
                        r"elapsed \S+, ETA \S+, \d+ credits?$")
        counts = []
        for line in lines:
            m = rx.match(line)
            check(m, f"progress line {line!r}")
            counts.append(int(m.group(1)))
        check(counts == sorted(counts) and counts[-1] == 60 and counts[0] < 60, counts)


def test_rows_wait_for_a_rate_limited_pool_instead_of_failing():
    emails = [f"rl{i}.x@rlfirm{i}.com" for i in range(12)]
    with batch_env() as env:
        secrets = keys_env(PDL, 2)
        for i in (1, 2):
            env.sim.script(PDL, secrets[f"PDL_KEY_{i}"], [{"kind": "rate_limited", "reset_s": 1}])
        inp = write(env, "in.csv", emails_csv(emails))
        out = path(env, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--workers", "3")
        check(p.returncode == 0, p.stderr)
        rows = read_csv(out)
        check(all(r[-2] == "complete" for r in rows[1:]), rows)
        statuses = [c["status"] for c in env.sim.calls(provider=PDL)]
        check(statuses.count(429) == 2 and statuses.count(200) == 12, statuses)

        # Without waiting, the rows that met the dry pool are failed with the reason.
        for i in (1, 2):
            env.sim.script(PDL, secrets[f"PDL_KEY_{i}"], [{"kind": "rate_limited", "reset_s": 30}])
        inp2 = write(env, "in2.csv", emails_csv([e.replace("rl", "nw") for e in emails]))
        out2 = path(env, "out2.csv")
        p = run_batch(env, "--input", inp2, "--output", out2, "--fields", "title", "--workers", "1",
                      "--max-key-wait", "0")
        check(p.returncode == 3, p.stderr)
        rows = read_csv(out2)
        check(all(r[-2] == "failed" and r[-1] == "no_key: no usable key for pdl" for r in rows[1:]), rows)
        check(os.path.exists(out2 + ".checkpoint"), "failed rows keep the checkpoint")


def test_a_killed_run_resumes_from_its_committed_rows():
    emails = [f"kill{i}.x@killco{i}.com" for i in range(80)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        out = path(env, "out.csv")
        ckpt = out + ".checkpoint"
        env.sim.config(delay_ms=30)
        p = start_batch(env, "--input", inp, "--output", out, "--fields", "title", "--workers", "4")
        wait_for(lambda: p.poll() is not None or len(ckpt_rows(ckpt) or {}) >= 10, timeout=60,
                 what="rows in the checkpoint")
        p.kill()
        finish(p)
        committed = ckpt_rows(ckpt)
        first = person_emails(env)
        env.sim.config(delay_ms=0)
        env.sim.clear_calls()
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--workers", "4",
                      "--resume")
        check(p.returncode == 0, p.stderr)
        rows = read_csv(out)
        check([r[0] for r in rows[1:]] == emails and all(r[-2] == "complete" for r in rows[1:]),
              "the resumed output is not every row once, in order")
        second = person_emails(env)
        # Finished rows were cached even when their commit was lost; only rows whose
        # call was in flight at the kill may be asked again.
        again = set(first) & set(second)
        check(len(again) <= 4, f"{len(again)} rows paid twice after a kill: {sorted(again)}")
        check(not again & {emails[n - 1] for n in committed}, "a committed row was asked again")
        check(set(first) | set(second) == set(emails), "rows were never looked up")


def test_progress_bar_on_a_terminal():
    emails = [f"tty{i}.x@ttyco{i}.com" for i in range(40)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        env.sim.config(delay_ms=25)
        rc, text = run_on_terminal(env, ["--input", inp, "--output", path(env, "out.csv"),
                                         "--fields", "title", "--workers", "1"])
        check(rc == 0, text)
        bars = re.findall(r"\r\033\[K\[([#-]{10,40})\] +(\d+)/40 ", text)
        check(len(bars) >= 3, f"want a line redrawn in place: {text!r}")
        check([int(n) for _, n in bars] == sorted(int(n) for _, n in bars) and
              set(bars[-1][0]) == {"#"} and bars[-1][1] == "40", bars)
        check("enrich-batch: progress" not in text, "plain progress lines on a terminal")
        check("40 rows: 40 complete" in text, text)


def test_failed_rows_exit_3_unless_allowed():
    emails = [f"ex{i}.x@exfirm{i}.com" for i in range(6)]
    with batch_env(rotation={"breaker_threshold": 1000}) as env:
        for i in (1, 2):
            env.sim.script(PDL, keys_env(PDL, 2)[f"PDL_KEY_{i}"], [{"kind": "error", "status": 503}])
        inp = write(env, "in.csv", emails_csv(emails))
        out, rep = path(env, "out.csv"), path(env, "report.json")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--workers", "1",
                      "--report", rep)
        check(p.returncode == 3, f"exit {p.returncode}: {p.stderr}")
        check("1 row failed for reasons that may pass; run it again with: " in p.stderr, p.stderr)
        r = json.load(open(rep))
        check(r["exit_status"] == 3 and r["failed"] == 1 and r["checkpoint_kept"] is True, r)
        check(len(read_csv(out)) == 7, "the output is written all the same")
        # --allow-failures: the same result, exit 0; the checkpoint stays for a retry.
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--resume",
                      "--allow-failures")
        check(p.returncode == 0 and os.path.exists(out + ".checkpoint"), p.stderr)
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--retry-failed")
        check(p.returncode == 0 and not os.path.exists(out + ".checkpoint"), p.stderr)
        check("exit status: 0 every row processed and none failed" in
              run_batch(env, "--help").stdout.lower().replace("\n", " "), "--help documents exit 3")
        h = run_batch(env, "--help").stdout
        check("3 some rows failed" in h and "--allow-failures" in h, h)


def test_limit_tries_the_first_rows_and_resume_continues():
    emails = [f"lim{i}.x@limco{i}.com" for i in range(30)]
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(emails))
        out = path(env, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--limit", "5",
                      "--workers", "3")
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
        rows = read_csv(out)
        check([r[0] for r in rows[1:]] == emails[:5] and all(r[-2] == "complete" for r in rows[1:]),
              rows)
        check(sorted(person_emails(env)) == sorted(emails[:5]), person_emails(env))
        check("5 rows (the first 5 of 30)" in p.stderr and "continue the run with: " in p.stderr and
              "--resume" in p.stderr, p.stderr)
        check(os.path.exists(out + ".checkpoint"), "a limited run keeps its checkpoint")
        # A full run without --resume is refused like any leftover checkpoint.
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title")
        check(p.returncode == 1 and "a checkpoint of an earlier run exists" in p.stderr, p.stderr)
        # A larger limit, then the rest: nothing is asked twice.
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--limit", "12",
                      "--resume")
        check(p.returncode == 0 and len(read_csv(out)) == 13, p.stderr)
        check("resuming: 5 of 12 rows done by an earlier run, 7 to go" in p.stderr, p.stderr)
        env.sim.clear_calls()
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--resume")
        check(p.returncode == 0, p.stderr)
        check(sorted(person_emails(env)) == sorted(emails[12:]), person_emails(env))
        rows = read_csv(out)
        check([r[0] for r in rows[1:]] == emails, "the full output is every row once, in order")
        check(not os.path.exists(out + ".checkpoint"), "the full run removed the checkpoint")
        # A limit beyond the file is the whole file.
        out2 = path(env, "out2.csv")
        p = run_batch(env, "--input", inp, "--output", out2, "--fields", "title", "--limit", "1000")
        check(p.returncode == 0 and len(read_csv(out2)) == 31 and
              not os.path.exists(out2 + ".checkpoint"), p.stderr)
        for bad in ("0", "-3", "x"):
            p = run_batch(env, "--input", inp, "--output", out2, "--limit", bad)
            check(p.returncode == 2 and "--limit" in p.stderr, p.stderr)


def test_source_and_confidence_columns():
    with batch_env() as env:
        inp = write(env, "in.csv", "email,_source\r\njohn.doe@acme.com,from a fair\r\n"
                                   "nobody.here@acme.com,x\r\n")
        out = path(env, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "first_name,title",
                      "--sources", "--confidence")
        check(p.returncode == 0, p.stderr)
        rows = read_csv(out)
        check(rows[0] == ["email", "_source", "first_name", "title", "_source_enriched",
                          "_confidence", "_status", "_error"], rows[0])
        john = expected(env, "john.doe@acme.com")
        check(rows[1][:4] == ["john.doe@acme.com", "from a fair", john["first_name"], john["title"]],
              rows[1])
        check(rows[1][4] == "first_name=pdl; title=pdl", rows[1])
        check(re.fullmatch(r"0\.\d\d|1\.00", rows[1][5]) and rows[1][6] == "complete", rows[1])
        check(rows[2][4:7] == ["", "", "not_found"], rows[2])
        # A resume must shape its rows the same way.
        ck = path(env, "keep.ckpt")
        inp2, rc, err = interrupted_run(env, "sc.csv", out, ck, "--sources")
        check(rc == 130 and " --sources " in err, err)
        p = run_batch(env, "--input", inp2, "--output", out, "--checkpoint", ck, "--resume")
        check(p.returncode == 1 and 'added columns "_source", this run asks for ""' in p.stderr,
              p.stderr)


def test_formulas_are_neutralised_unless_raw():
    """Cells a spreadsheet would run get a quote in front, from the input and from a
    provider, as in the job results; --formulas=raw writes them as they are."""
    with batch_env() as env:
        evil_title = '=HYPERLINK("http://evil.example/x","click")'
        env.sim.records(provider=PDL, match={"email": "ann.lee@acme.com"},
                        fields={"title": evil_title}, merge=True)
        inp = write(env, "in.csv", "Email,Notes,=cmd\r\n"
                                   "ann.lee@acme.com,+1 555 0100,@SUM(A1)\r\n"
                                   "bob.ray@acme.com,-2,\tlead\r\n"
                                   "=bad\r\n")
        out, raw_out = path(env, "out.csv"), path(env, "raw.csv")
        errs, raw_errs = path(env, "errors.csv"), path(env, "raw-errors.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "title", "--errors", errs)
        check(p.returncode == 0, p.stderr)
        safe = read_csv(out)
        check(safe[0] == ["Email", "Notes", "'=cmd", "title", "_status", "_error"], safe[0])
        check(safe[1] == ["ann.lee@acme.com", "'+1 555 0100", "'@SUM(A1)", "'" + evil_title,
                          "complete", ""], safe[1])
        check(safe[2][:3] == ["bob.ray@acme.com", "'-2", "'\tlead"], safe[2])
        check(safe[3][:3] == ["'=bad", "", ""] and safe[3][4] == "invalid", safe[3])
        check(read_csv(errs)[1][:3] == ["3", "4", "invalid"], read_csv(errs))
        p = run_batch(env, "--input", inp, "--output", raw_out, "--fields", "title",
                      "--errors", raw_errs, "--formulas=raw")
        check(p.returncode == 0, p.stderr)
        raw = read_csv(raw_out)
        check(raw[0][2] == "=cmd" and raw[1][1:4] == ["+1 555 0100", "@SUM(A1)", evil_title], raw)
        check(raw[2][1:3] == ["-2", "\tlead"] and raw[3][0] == "=bad", raw)
        # The only difference between the two files is the quote in front.
        check([[c[1:] if c.startswith("'") else c for c in r] for r in safe] == raw, (safe, raw))
        # --formulas takes the words of the job results' ?formulas=.
        p = run_batch(env, "--input", inp, "--output", out, "--formulas", "neutralise")
        check(p.returncode == 0, p.stderr)
        p = run_batch(env, "--input", inp, "--output", out, "--formulas=off")
        check(p.returncode == 2 and '--formulas: "off" is not neutralise or raw' in p.stderr,
              p.stderr)
        # A run's checkpoint holds its rows as written: a resume must write them alike.
        ck = path(env, "f.ckpt")
        inp2, rc, err = interrupted_run(env, "fo.csv", out, ck, "--formulas=raw")
        check(rc == 130 and " --formulas=raw " in err, err)
        p = run_batch(env, "--input", inp2, "--output", out, "--checkpoint", ck, "--resume")
        check(p.returncode == 1 and "holds rows written with --formulas=raw, this run writes "
              "--formulas=neutralise" in p.stderr, p.stderr)
        p = run_batch(env, "--input", inp2, "--output", out, "--checkpoint", ck, "--resume",
                      "--formulas=raw")
        check(p.returncode == 0, p.stderr)


def test_junk_email_with_a_valid_linkedin_url_is_enriched():
    with batch_env() as env:
        inp = write(env, "in.csv", "Email,LinkedIn URL\r\nnot-an-email,linkedin.com/in/jane-roe\r\n"
                                   "also junk\r\n")
        out = path(env, "out.csv")
        p = run_batch(env, "--input", inp, "--output", out, "--fields", "first_name,last_name")
        check(p.returncode == 0, p.stderr)
        rows = read_csv(out)
        check(rows[1][:2] == ["not-an-email", "linkedin.com/in/jane-roe"] and
              rows[1][2:4] == ["Jane", "Roe"] and rows[1][4] == "complete" and
              rows[1][5] == "email ignored: not a valid e-mail address", rows[1])
        check(rows[2][:2] == ["also junk", ""] and rows[2][4] == "invalid" and
              rows[2][5].startswith("invalid_email: "), rows[2])
        calls = env.sim.calls(provider=PDL)
        check(len(calls) == 1 and "email" not in calls[0]["query"], calls)
        check("1 row:" not in p.stderr and "2 rows: 1 complete" in p.stderr, p.stderr)


def test_one_row_is_one_row():
    with batch_env() as env:
        inp = write(env, "in.csv", emails_csv(["solo.one@soloco.com"]))
        p = run_batch(env, "--input", inp, "--output", path(env, "out.csv"), "--fields", "title",
                      "--workers", "1")
        check(p.returncode == 0, p.stderr)
        check("enriching 1 row with 1 worker\n" in p.stderr, p.stderr)
        check("progress 1/1 row (100.0%)" in p.stderr and "1 credit\n" in p.stderr, p.stderr)
        check("1 row: 1 complete" in p.stderr and "this run: 1 row in " in p.stderr and
              "1 upstream call," in p.stderr, p.stderr)
        # "561 rows/min" is a rate, not a count: match whole words.
        check(not re.search(r"\b1 rows\b|\b1 credits\b", p.stderr), p.stderr)


def run_on_terminal(env, args, cols=None):
    """Run enrich-batch with standard error on a pseudo-terminal of cols columns."""
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    if cols:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    try:
        p = subprocess.Popen([BATCH, "-c", env.conf_path, *args], env=env.environ(),
                             stdout=subprocess.DEVNULL, stderr=slave, cwd=env.tmp)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not b:
                break
            chunks.append(b)
        rc = p.wait(60)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    return rc, b"".join(chunks).decode()


def test_terminal_bar_fits_the_width_and_log_lines_go_above_it():
    emails = [f"wd{i}.x@wdco{i}.com" for i in range(40)]
    # No log file: the engine's log lines go to standard error, where the bar is.
    with batch_env(extra_conf={"log_file": ""}) as env:
        # The first key is refused after 15 rows: the engine logs a warning in the
        # middle of the run, while the bar is on the screen.
        env.sim.script(PDL, keys_env(PDL, 2)["PDL_KEY_1"], [{"kind": "hit"}] * 15 + [{"kind": "invalid_key"}])
        inp = write(env, "in.csv", emails_csv(emails))
        env.sim.config(delay_ms=25)
        rc, text = run_on_terminal(env, ["--input", inp, "--output", path(env, "out.csv"),
                                         "--fields", "title", "--workers", "1"], cols=60)
        check(rc == 0, text)
        draws = [d for d in re.split(r"\r\033\[K", text) if d.startswith("[")]
        check(len(draws) >= 3, text)
        for d in draws:
            line = d.split("\r\n")[0]
            check(len(line) <= 59, f"{len(line)} columns on a 60-column terminal: {line!r}")
            check(re.match(r"\[[#-]{10,40}\] +\d+/40 ", line), line)
            check("ETA" in line or "100.0%" in line, line)
        # Every log line starts on a cleared line and is followed by the bar again.
        logs = [m.start() for m in re.finditer(r"\d{4}-\d\d-\d\dT[^ ]+Z level=warn", text)]
        check(logs, f"no warning logged: {text!r}")
        for at in logs:
            check(text[at - 4:at] == "\r\033[K" and text[:at].count("\r\033[K[") >= 1,
                  f"log line inside the bar: {text[at - 80:at + 40]!r}")
            end = text.index("\r\n", at)
            check(text[end + 2:end + 3] == "[", f"bar not redrawn after a log line: "
                                                f"{text[at:end + 40]!r}")
        rc, wide = run_on_terminal(env, ["--input", inp, "--output", path(env, "out2.csv"),
                                         "--fields", "title", "--workers", "1"], cols=120)
        check(rc == 0, wide)
        last = [d for d in re.split(r"\r\033\[K", wide) if d.startswith("[")][-1].split("\r\n")[0]
        check(len(last) <= 119 and "elapsed" in last and "credit" in last and "rows/min" in last,
              last)
