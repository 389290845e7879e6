# SPDX-License-Identifier: MIT
# nbd_raw.py SOCKET EXPORT SIZE - hostile and malformed NBD messages sent
# over a raw socket (Python's standard library only). Each must get the
# protocol's error reply or a closed connection, and the server must keep
# serving: a well-formed client works after every case. Every socket has a
# timeout, so nothing here can hang.
import socket
import struct
import sys
import threading
import time

SOCK, EXPORT, SIZE = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def conn(flags=3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    greet = recvn(s, 18)
    check(greet[:16] == b"NBDMAGICIHAVEOPT", "greeting")
    s.sendall(struct.pack(">I", flags))
    return s


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, EOFError):
        return True
    except socket.timeout:
        return False


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)


def opt_reply(s):
    magic, o, typ, ln = struct.unpack(">QIII", recvn(s, 20))
    check(magic == REP_MAGIC, "option reply magic")
    return o, typ, recvn(s, ln)


def go(s, name=EXPORT):
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        o, typ, data = opt_reply(s)
        if typ != 3:
            return typ


def req(s, typ, off, ln, cookie, flags=0, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, ln)
              + payload)


def simple_reply(s):
    magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
    check(magic == 0x67446698, "simple reply magic")
    return err, cookie


def works():
    """A well-formed client still gets served."""
    s = conn()
    check(go(s) == 1, "GO after a bad client")
    req(s, 1, 4096, 4096, 7, payload=b"\xaa" * 4096)
    check(simple_reply(s) == (0, 7), "write after a bad client")
    req(s, 0, 4096, 4096, 8)
    check(simple_reply(s) == (0, 8), "read after a bad client")
    check(recvn(s, 4096) == b"\xaa" * 4096, "read data")
    req(s, 2, 0, 0, 9)
    s.close()


# Handshake: unknown client flags close the connection.
s = conn(flags=0x80)
check(closed(s), "unknown client flags must close")
works()

# Options: bad magic closes; unknown, malformed and oversize options get
# error replies and the handshake goes on.
s = conn()
s.sendall(struct.pack(">QII", 0x1234, 7, 0))
check(closed(s), "bad option magic must close")
s = conn()
opt(s, 99, b"abc")
check(opt_reply(s)[1] == 0x80000001, "unknown option -> ERR_UNSUP")
opt(s, 3, b"x")
check(opt_reply(s)[1] == 0x80000003, "LIST with data -> ERR_INVALID")
opt(s, 8, b"x")
check(opt_reply(s)[1] == 0x80000003, "STRUCTURED_REPLY with data")
opt(s, 7, struct.pack(">I", 1000) + b"ab")
check(opt_reply(s)[1] == 0x80000003, "GO with a name past its data")
opt(s, 6, struct.pack(">I", 2) + b"ab" + struct.pack(">H", 5))
check(opt_reply(s)[1] == 0x80000003, "INFO with missing requests")
opt(s, 7, struct.pack(">I", 7) + b"nothere" + struct.pack(">H", 0))
check(opt_reply(s)[1] == 0x80000006, "GO unknown export -> ERR_UNKNOWN")
opt(s, 6, b"\0" * 70000)
check(opt_reply(s)[1] == 0x80000009, "oversize option -> ERR_TOO_BIG")
opt(s, 3)
n = 0
while True:
    o, typ, data = opt_reply(s)
    if typ != 2:
        break
    n += 1
check(typ == 1 and n >= 1, "LIST lists the exports")
s.sendall(struct.pack(">QII", IHAVEOPT, 6, 0x7FFFFFFF))
check(closed(s), "a 2 GiB option must close")
works()

# EXPORT_NAME of an unknown export closes.
s = conn()
opt(s, 1, b"nothere")
check(closed(s), "EXPORT_NAME unknown must close")

# Transmission: errors for bad requests, and the connection goes on.
s = conn()
check(go(s) == 1, "GO")
cases = [
    (0, SIZE, 512, 22, "read past the end"),
    (0, SIZE - 512, 1024, 22, "read across the end"),
    (0, 2**64 - 512, 1024, 22, "read with offset overflow"),
    (0, 0, 0, 22, "zero-length read"),
    (0, 0, 64 << 20, 75, "oversize read"),
    (4, SIZE, 4096, 22, "trim past the end"),
    (6, SIZE - 4096, 8192, 22, "write-zeroes across the end"),
    (3, 4096, 0, 22, "flush with an offset"),
    (5, 0, 4096, 22, "CACHE (not negotiated)"),
    (7, 0, 4096, 22, "BLOCK_STATUS (not negotiated)"),
    (99, 0, 4096, 22, "unknown command"),
]
for i, (typ, off, ln, err, what) in enumerate(cases):
    req(s, typ, off, ln, 100 + i)
    check(simple_reply(s) == (err, 100 + i), what)
req(s, 0, 0, 512, 200, flags=0x8000)
check(simple_reply(s) == (22, 200), "unknown command flag")
req(s, 1, SIZE, 512, 201, payload=b"z" * 512)
check(simple_reply(s) == (22, 201), "write past the end")
# Many requests in flight at once (sent by a thread while replies are
# read, as a real client does): every reply comes back, once.


def sender():
    for i in range(200):
        if i % 2:
            req(s, 1, i * 4096, 4096, 1000 + i,
                payload=bytes([i & 0xFF]) * 4096)
        else:
            req(s, 0, i * 4096, 4096, 1000 + i)


t = threading.Thread(target=sender)
t.start()
seen = set()
for _ in range(200):
    err, cookie = simple_reply(s)
    check(err == 0, "pipelined request error")
    if cookie % 2 == 0:
        recvn(s, 4096)
    seen.add(cookie)
t.join()
check(seen == set(range(1000, 1200)), "every pipelined request answered")
# A write whose payload is over the limit ends this connection only.
req(s, 1, 0, 0x7FFFFFFF, 300)
check(closed(s), "oversize write must close")
works()

# Garbage instead of a request header closes the connection.
s = conn()
check(go(s) == 1, "GO")
s.sendall(b"\xde\xad\xbe\xef" * 7)
check(closed(s), "bad request magic must close")
# A client vanishing mid-request leaves the server serving.
s = conn()
check(go(s) == 1, "GO")
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, 0, 65536) + b"x" * 100)
s.close()
# The client limit (64): connections past it are closed at once, and the
# server serves again once they are gone.
socks = []
served = 0
for _ in range(70):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    for _ in range(100):  # the listen backlog may be full for a moment
        try:
            c.connect(SOCK)
            break
        except BlockingIOError:
            time.sleep(0.05)
    socks.append(c)
for c in socks:
    try:
        served += recvn(c, 18)[:8] == b"NBDMAGIC"
    except (EOFError, ConnectionResetError):
        pass
check(served == 64, "client limit: %d of 70 served, wanted 64" % served)
for c in socks:
    c.close()
time.sleep(0.5)
works()

# ABORT is acknowledged.
s = conn()
opt(s, 2)
check(opt_reply(s)[1] == 1, "ABORT -> ACK")
s.close()
works()
sys.exit(1 if failures else 0)
