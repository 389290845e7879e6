#!/usr/bin/env python3
# Writes the named seeds of fuzz_region (see fuzz_region.c for the input
# format) into tests/fuzz/corpus/region/. The files named by a hash there
# are inputs that libFuzzer found from these seeds, minimized with
# -merge=1; they are kept so that the replay covers what the fuzzer
# reached.
import os
import struct
import sys

SB = [0, 4096]
IDX = [8192, 12288]
SLOT0 = 16384

def patch(off, data):
    return struct.pack('<I', off)[:3] + bytes([len(data)]) + data

def u32(v):
    return struct.pack('<I', v)

def u64(v):
    return struct.pack('<Q', v)

seeds = {
    'healthy': bytes([0]),
    'sb0-flip': bytes([0]) + patch(SB[0] + 30, b'\xff'),
    'sb1-differs': bytes([1]) + patch(SB[1] + 48, b'\x01'),
    'sb0-zero-repair': bytes([16]) + patch(SB[0], bytes(255)),
    'sb-version2': bytes([1]) + patch(SB[0] + 8, u32(2)) + patch(SB[1] + 8, u32(2)),
    'sb-region-huge': bytes([1]) + patch(SB[0] + 40, u64(1 << 60)) + patch(SB[1] + 40, u64(1 << 60)),
    'sb-data-off': bytes([1]) + patch(SB[0] + 96, u64(4096)) + patch(SB[1] + 96, u64(4096)),
    'idx-nused': bytes([2]) + patch(IDX[0] + 28, u32(9)),
    'idx-seq-parity': bytes([2]) + patch(IDX[1] + 16, u64(8)),
    'idx-bitmap': bytes([2]) + patch(IDX[0] + 48, b'\xff\xff') + patch(IDX[0] + 28, u32(16)),
    'idx-torn-repair': bytes([16]) + patch(IDX[0] + 200, b'\x55' * 64),
    'label-overlap': bytes([4]) + patch(SLOT0 + 88, u64(8 << 20)),
    'label-outside': bytes([4]) + patch(SLOT0 + 80, u64(0)),
    'label-name': bytes([4]) + patch(SLOT0 + 16, b'a b\x00x'),
    'label-dup-name': bytes([4]) + patch(SLOT0 + 128 + 16, b'a\x00'),
    'label-align': bytes([4]) + patch(SLOT0 + 96, u64(8192)),
    'label-mode': bytes([4]) + patch(SLOT0 + 104, u32(9)),
    'zeroed': bytes([8]),
    'zeroed-sb1-only': bytes([8 | 1]) + patch(SB[1], b'XMEMSB\r\n' + u32(1)),
    'all-fixed': bytes([1 | 2 | 4 | 16]) + patch(SLOT0 + 88, u64(0)) + patch(IDX[1] + 48, b'\x0f'),
    'size-4k-destroy': bytes([32, 0]),
    'size-8k-repair': bytes([32 | 16, 1]),
    'size-16k': bytes([32, 3]),
    'size-meta-end-repair': bytes([32 | 16, 9]),
    'size-2m-idx-torn': bytes([32 | 16, 12]) + patch(IDX[1] + 100, b'\x33' * 8),
}

out = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), 'corpus', 'region')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('%d seeds in %s' % (len(seeds), out))
