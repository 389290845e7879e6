#!/usr/bin/env python3
"""Adds up meson test logs and prints 'N passed, N failed, N skipped'.

The kernel-device suite's per-check lines (PASS/SKIP/FAIL ...) are shown
first, since that suite runs many checks inside one guest.

argv[1] is 1 when the format check passed, 0 when it failed; the rest are
meson-logs/testlog.json files. Exits 1 if anything failed.
"""
import json
import sys

passed = failed = skipped = 0
if sys.argv[1] == "1":
    passed += 1
else:
    failed += 1
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                r = t.get("result", "")
                if t.get("name", "").endswith("kernel"):
                    for out in (t.get("stdout") or "").splitlines():
                        if out.split(" ")[0] in ("PASS", "SKIP", "FAIL"):
                            print("kernel:", out)
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except OSError as e:
        print(f"missing test log {path}: {e}")
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
