#!/usr/bin/env python3
"""The xmem command line: exit codes, human and JSON listings, sizes, and
error messages that name the object and the cause.

Usage: cli_test.py PATH_TO_XMEM. Exits 0 pass, 1 fail.
"""
import json
import os
import subprocess
import sys

XMEM = sys.argv[1]
DEV = "/dev/shm/xmem-cli-test.%d" % os.getpid()
failures = 0


def run(*args, rc=0, device=True):
    """Runs xmem; checks the exit code; returns (stdout, stderr)."""
    global failures
    cmd = [XMEM] + (["-d", DEV] if device else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != rc:
        failures += 1
        print(f"FAIL: {' '.join(cmd)}: exit {p.returncode}, wanted {rc}\n"
              f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p.stdout, p.stderr


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def main():
    try:
        os.unlink(DEV)
    except FileNotFoundError:
        pass
    # Usage errors exit 2.
    run(rc=2, device=False)
    run("nosuch", rc=2)
    run("range", "create", "x", rc=2)             # no --size
    run("range", "create", "x", "-s", "12Q", rc=2)  # bad size
    run("range", "frobnicate", rc=2)
    out, _ = run("--help", device=False)
    check("region" in out and "range" in out, "help lists commands")

    # No region yet: failure, exit 1, naming the device.
    _, err = run("region", "info", rc=1)
    check(DEV in err, "region info names the device: " + err)

    # A region that cannot be made leaves no device file behind.
    run("region", "create", "-s", "2M", rc=1)
    check(not os.path.exists(DEV), "no file left by a failed create")
    run("region", "create", "-s", "4097", rc=1)
    check(not os.path.exists(DEV), "no file left by a bad size")
    run("region", "create", "-s", "0", rc=2)

    out, _ = run("region", "create", "-s", "1G")
    check("1 GiB" in out, "region create prints the size: " + out)
    run("region", "create", rc=1)  # exists already
    info = json.loads(run("region", "info", "--json")[0])
    check(info["size"] == 1 << 30 and info["ranges"] == 0, str(info))
    dev = json.loads(run("device", "info", "--json")[0])
    check(dev["kind"] == "file" and dev["size"] == 1 << 30, str(dev))

    run("range", "create", "db", "-s", "256M", "-a", "2M", "-m", "heap")
    run("range", "create", "log", "--size", "64M", "--align", "4K")
    _, err = run("range", "create", "db", "-s", "2M", rc=1)
    check("db" in err, "duplicate name is named: " + err)
    _, err = run("range", "create", "odd", "-s", "3M", "-a", "2M", rc=1)
    check("odd" in err, "size not a multiple of the alignment: " + err)
    _, err = run("range", "create", "big", "-s", "1G", "-a", "1G", rc=1)
    check("1 GiB" in err or "alignment" in err,
          "1 GiB alignment refused with the reason: " + err)
    run("range", "create", "m", "-s", "2M", "-m", "bogus", rc=2)
    _, err = run("range", "create", "z", "-s", "0", rc=2)
    check("must not be 0" in err, err)
    # Sizes are decimal: 010M is 10 MiB, not octal.
    run("range", "create", "dec", "-s", "010M", "-a", "4K")
    info = json.loads(run("range", "info", "dec", "--json")[0])
    check(info["size"] == 10 << 20, "decimal size: %s" % info)
    run("range", "destroy", "dec")

    ranges = json.loads(run("range", "list", "--json")[0])
    names = sorted(r["name"] for r in ranges)
    check(names == ["db", "log"], "list: %s" % names)
    db = [r for r in ranges if r["name"] == "db"][0]
    check(db["mode"] == "heap" and db["size"] == 256 << 20 and
          db["align"] == 2 << 20 and db["offset"] % (2 << 20) == 0, str(db))
    out, _ = run("range", "list")
    check("db" in out and "heap" in out and "256 MiB" in out, out)

    run("range", "write", "db", "-o", "4096", "--data", "hello")
    out, _ = run("range", "read", "db", "-o", "4096", "-l", "5")
    check(out == "hello", "read back: %r" % out)
    _, err = run("range", "read", "db", "-o", "256M", "-l", "1", rc=1)
    check("do not fit" in err, err)

    info = json.loads(run("range", "info", "db", "--json")[0])
    check("pmd_mapped" in info, str(info))
    check(info["pmd_mapped"] or info.get("pmd_reason"),
          "PMD status or its reason: %s" % info)

    run("range", "resize", "log", "-s", "96M")
    info = json.loads(run("range", "info", "log", "--json")[0])
    check(info["size"] == 96 << 20, str(info))
    run("range", "destroy", "log", "--scrub")
    _, err = run("range", "info", "log", rc=1)
    check("log" in err, err)
    _, err = run("range", "destroy", "nosuch", rc=1)
    check("nosuch" in err, err)

    out, _ = run("region", "check")
    check("clean" in out, out)
    chk = json.loads(run("region", "check", "--json")[0])
    check(chk["clean"] is True, str(chk))

    # Damage superblock copy 0 (its magic): check finds it, repair fixes it.
    with open(DEV, "r+b") as f:
        f.seek(0)
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 0xff]))
    _, err = run("region", "info", rc=1)
    check("superblock" in err, "corrupt superblock named: " + err)
    run("region", "check", rc=1)
    out, _ = run("region", "check", "--repair")
    check("repaired" in out, out)
    run("region", "info")

    run("region", "destroy", rc=1)  # ranges remain
    run("region", "destroy", "--force")
    run("region", "info", rc=1)
    os.unlink(DEV)
    print("cli: %s" % ("ok" if not failures else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
