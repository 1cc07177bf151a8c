#!/usr/bin/env python3
"""Run the integration scenarios: every function test_* in tests/integration/test_*.py,
in file order.  Prints "PASS file:test (1.2s)", "FAIL file:test" or, for a test that
raised harness.Skip because it could not check anything here, "SKIP file:test (reason)"
per test and a summary; exits 1 when anything failed.

    tests/integration/run.py                 all of them
    tests/integration/run.py reload cors     only tests whose name contains a word
    tests/integration/run.py --exclude=test_deploy
                                             all but the tests whose name contains it
"""

import importlib.util
import inspect
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Skip  # noqa: E402
import openapi  # noqa: E402


def undocumented(problems):
    for p in problems[:10]:
        print("    " + p)
    if len(problems) > 10:
        print(f"    ... and {len(problems) - 10} more")


def main(argv):
    words = [a for a in argv[1:] if not a.startswith("--exclude=")]
    excluded = [a[len("--exclude="):] for a in argv[1:] if a.startswith("--exclude=")]
    passed = failed = skipped = 0
    files = sorted(f for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    for fname in files:
        spec = importlib.util.spec_from_file_location(fname[:-3], os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001
            print(f"FAIL {fname}:import")
            traceback.print_exc(file=sys.stdout)
            failed += 1
            continue
        tests = [(n, f) for n, f in vars(mod).items()
                 if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod.__name__]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        for name, fn in tests:
            full = f"{fname[:-3]}:{name}"
            if words and not any(w in full for w in words):
                continue
            if any(w in full for w in excluded):
                continue
            t0 = time.monotonic()
            openapi.drain()  # what came before belongs to no test
            try:
                fn()
            except Skip as e:
                skipped += 1
                print(f"SKIP {full} ({e})")
                undocumented(openapi.drain())
            except Exception:  # noqa: BLE001
                failed += 1
                print(f"FAIL {full} ({time.monotonic() - t0:.1f}s)")
                traceback.print_exc(file=sys.stdout)
                undocumented(openapi.drain())
            else:
                problems = openapi.drain()
                if problems:
                    failed += 1
                    print(f"FAIL {full} ({time.monotonic() - t0:.1f}s): responses the OpenAPI "
                          f"document does not describe")
                    undocumented(problems)
                else:
                    passed += 1
                    print(f"PASS {full} ({time.monotonic() - t0:.1f}s)")
            sys.stdout.flush()
    print(f"# openapi: {openapi.validated()} responses validated against docs/openapi.json")
    print(f"# integration: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
