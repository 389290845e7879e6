# SPDX-License-Identifier: MIT
# Run by nbdsh (libnbd's Python shell) with the handle `h` connected to a
# writable export and URI_RO naming a read-only one. libnbd's own checks
# are switched off (strict mode 0) so that it sends what a careless or
# hostile client would; every such request must fail with the protocol's
# error while the connection keeps serving.
import errno
import os

import nbd

URI_RO = os.environ["NBDSH_URI_RO"]
bad = []


def expect_error(what, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except nbd.Error as e:
        # libnbd gives the errno's name ("EINVAL") or its number.
        return errno.errorcode.get(e.errno, e.errno)
    bad.append(what + ": no error")
    return None


def still_serving(what):
    h.pwrite(b"\x5a" * 4096, 8192)
    if h.pread(4096, 8192) != b"\x5a" * 4096:
        bad.append(what + ": connection no longer serves")


h.set_strict_mode(0)
size = h.get_size()
cases = [
    ("read past the end", h.pread, (512, size), {}),
    ("read across the end", h.pread, (1024, size - 512), {}),
    ("write past the end", h.pwrite, (b"x" * 512, size), {}),
    ("trim past the end", h.trim, (4096, size), {}),
    ("zero across the end", h.zero, (8192, size - 4096), {}),
    ("zero-length read", h.pread, (0, 0), {}),
    ("read with an unknown flag", h.pread, (512, 0), {"flags": 0x40}),
    ("oversize read", h.pread, (48 << 20, 0), {}),
]
for what, fn, args, kw in cases:
    err = expect_error(what, fn, *args, **kw)
    if err not in ("EINVAL", "EOVERFLOW", "ERANGE"):
        bad.append("%s: errno %s" % (what, err))
    still_serving(what)

# Unaligned requests (under the advertised minimum) are served correctly.
h.pwrite(b"\x11" * 4096, 0)
h.pwrite(b"\x22" * 100, 1000)
got = h.pread(4096, 0)
if got != b"\x11" * 1000 + b"\x22" * 100 + b"\x11" * 2996:
    bad.append("unaligned write merged wrongly")
h.zero(50, 1010)
got = h.pread(100, 1000)
if got != b"\x22" * 10 + b"\0" * 50 + b"\x22" * 40:
    bad.append("unaligned zero merged wrongly")
h.flush()
h.pwrite(b"\x33" * 4096, 4096, flags=nbd.CMD_FLAG_FUA)
if h.pread(4096, 4096) != b"\x33" * 4096:
    bad.append("FUA write")

# A read-only export refuses writes, trims and zeroes with EPERM.
ro = nbd.NBD()
ro.set_strict_mode(0)
ro.connect_uri(URI_RO)
if not ro.is_read_only():
    bad.append("read-only flag not advertised")
for what, fn, args in [("write", ro.pwrite, (b"x" * 4096, 0)),
                       ("trim", ro.trim, (4096, 0)),
                       ("zero", ro.zero, (4096, 0))]:
    if expect_error("read-only " + what, fn, *args) != "EPERM":
        bad.append("read-only %s: not EPERM" % what)
ro.pread(4096, 0)
ro.shutdown()

still_serving("the end")
h.shutdown()
if bad:
    print("FAIL:", *bad, sep="\n  ")
    raise SystemExit(1)
print("nbdsh checks passed")
