#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gen_blk_corpus.py - writes the seed corpora of fuzz_nbd (client byte
# streams) and fuzz_btt (metadata patch lists) into corpus/nbd and
# corpus/btt. Run from tests/fuzz; the output is checked in.
import os
import struct

IHAVEOPT = 0x49484156454F5054


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def go(name, o=7, reqs=()):
    n = name.encode()
    return opt(o, struct.pack(">I", len(n)) + n + struct.pack(">H", len(reqs))
               + b"".join(struct.pack(">H", r) for r in reqs))


def req(typ, off, ln, cookie=1, flags=0, payload=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off,
                       ln) + payload


DISC = req(2, 0, 0)
nbd = {
    "go-rw": struct.pack(">I", 3) + opt(8) + go("a", reqs=(1, 2, 3))
    + req(1, 4096, 4096, 2, 1, b"\x11" * 4096) + req(0, 0, 8192, 3)
    + req(4, 8192, 4096, 4) + req(6, 0, 512, 5) + req(3, 0, 0, 6) + DISC,
    "go-unaligned": struct.pack(">I", 3) + go("a")
    + req(1, 1000, 300, 2, 0, b"\x22" * 300) + req(0, 999, 302, 3)
    + req(6, 1001, 10, 4, 2) + req(4, 5, 9000, 5) + DISC,
    "export-name": struct.pack(">I", 1) + opt(1, b"a")
    + req(0, 0, 512, 1) + req(1, 0, 512, 2, 0, b"x" * 512) + DISC,
    "list-info-abort": struct.pack(">I", 3) + opt(3) + go("ro", 6, (0, 3))
    + go("zz", 6) + opt(99, b"junk") + opt(2),
    "readonly-writes": struct.pack(">I", 3) + go("ro")
    + req(1, 0, 512, 1, 0, b"y" * 512) + req(4, 0, 512, 2)
    + req(0, 0, 1 << 21, 3) + req(0, 1 << 40, 512, 4) + DISC,
    "bad-request-magic": struct.pack(">I", 3) + go("a") + b"\xde\xad" * 20,
    "bad-flags": struct.pack(">I", 0xFF),
    "oversize-option": struct.pack(">I", 3) + opt(6, b"\0" * 5000) + opt(3),
    "huge-write": struct.pack(">I", 3) + go("a") + req(1, 0, 0x7FFFFFFF, 1),
    # one info type listed 2000 times (answered once), then GO
    "info-repeat": struct.pack(">I", 3) + go("a", 6, (2,) * 2000)
    + go("a", reqs=(1, 1, 2, 2, 9)) + req(0, 0, 4096, 1) + DISC,
    # DF without structured replies, and on a write with them
    "df-flags": struct.pack(">I", 3) + go("a") + req(0, 0, 4096, 1, 4)
    + req(6, 0, 4096, 2, 2) + req(1, 0, 512, 3, 2, b"z" * 512) + DISC,
    "df-structured": struct.pack(">I", 3) + opt(8) + go("a")
    + req(0, 0, 4096, 1, 4) + req(1, 0, 4096, 2, 4, b"q" * 4096)
    + req(3, 0, 0, 3, 4) + DISC,
    # large requests (queued to workers), partial sectors among them
    "large-mixed": struct.pack(">I", 3) + opt(8) + go("a")
    + req(1, 0, 200000, 1, 1, b"L" * 200000) + req(0, 100, 150000, 2)
    + req(1, 4000, 100, 3, 0, b"s" * 100) + req(6, 8000, 90000, 4)
    + req(0, 0, 300000, 5) + DISC,
}


def patch(region, off, val):
    return struct.pack("<BHB", region, off, val)


btt = {
    "pristine": b"\x00",
    "pristine-512": b"\x02",
    "pristine-v2": b"\x04",
    "sig": b"\x00" + patch(0, 2, 0x41),
    "lbasize-resealed": b"\x01" + patch(0, 56, 0x00) + patch(0, 57, 0x04),
    "nfree-resealed": b"\x01" + patch(0, 72, 0x00) + patch(0, 73, 0x00),
    "mapoff-resealed": b"\x01" + patch(0, 97, 0x00) + patch(0, 98, 0x10),
    "nextoff-resealed": b"\x01" + patch(0, 81, 0x10),
    "version-resealed": b"\x01" + patch(0, 52, 2),
    "nextoff-near-end": b"\x01" + patch(0, 83, 0x01),
    "flog-seq": b"\x00" + patch(2, 12, 0) + patch(2, 64 + 28, 3),
    "flog-pending": b"\x00" + patch(2, 16, 5) + patch(2, 20, 5)
    + patch(2, 24, 0xF0) + patch(2, 25, 0x0F) + patch(2, 28, 2),
    "flog-slot2": b"\x00" + patch(2, 32, 1) + patch(2, 44, 2),
    "map-out-of-range": b"\x00" + patch(3, 3, 0xFF) + patch(3, 2, 0xFF),
    "map-dup": b"\x02" + patch(3, 4, 0) + patch(3, 7, 0xC0),
    "backup": b"\x00" + patch(1, 100, 1),
    "short-namespace": b"\x30",
    # lane 2's free block is 5, which sector 5 owns
    "flog-free-mapped": b"\x00"
    + b"".join(patch(2, 128 + o, v) for o, v in
               ((4, 5), (5, 0), (6, 0), (7, 0), (8, 5), (9, 0), (10, 0),
                (11, 0))),
    # lanes 3 and 4 both claim block 9
    "flog-free-twice": b"\x02"
    + b"".join(patch(2, 64 * g + o, v) for g in (3, 4) for o, v in
               ((4, 9), (5, 0), (6, 0), (7, 0), (8, 9), (9, 0), (10, 0),
                (11, 0))),
}

for name, corpus in (("nbd", nbd), ("btt", btt)):
    os.makedirs(os.path.join("corpus", name), exist_ok=True)
    for k, v in corpus.items():
        with open(os.path.join("corpus", name, k), "wb") as f:
            f.write(v)
