#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/ (seed-*.bin).

The seeds are small programs in each target's input language, one scenario
each, so libFuzzer starts from inputs that already reach the interesting
paths (and the replay tests exercise them in the normal build). The
encodings mirror the decoders in ops_model.c, policy_fuzzer.c,
size_class_fuzzer.c, options_fuzzer.c, threads_fuzzer.c and freelist_fuzzer.c;
keep them in step.
Inputs the fuzzers found are added beside these under other names.

    python3 fuzz/make_seeds.py      # rewrites fuzz/corpus/*/seed-*
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- ops / policy (ops_model.c) ---------------------------------------------
MALLOC, CALLOC, REALLOC, REALLOCARRAY, ALIGNED_ALLOC, POSIX_MEMALIGN, MEMALIGN, \
    VALLOC, PVALLOC, FREE, CHECK, CHECK_ALL, NOT_OURS = range(13)
# policy_fuzzer.c's events follow the engine's 13 opcodes.
TRIM, COLLECT, OPTION, FAULT, CLEAR = range(13, 18)


def size_small(n):      # decode_size case 0: 0..31
    assert n < 32
    return bytes([n << 3])


def size_u16(n):        # case 4: 0..65535
    return bytes([4]) + struct.pack("<H", n)


def size_class(c, d=0):  # case 3: class c's size + d (-2..2)
    return bytes([3, c, d + 2])


def size_large(v, shift):  # case 6: v << shift (shift 0..8)
    return bytes([6]) + struct.pack("<H", v) + bytes([shift])


def size_near_max(k):   # case 7 with bit 3: SIZE_MAX - k
    return bytes([7 | 8]) + struct.pack("<H", k)


def size_huge_pow2(k):  # case 7: 1 << (47 + k)
    return bytes([7, k])


def align_pow2(shift):  # decode_align cases 0/1: 1 << shift (shift <= 21)
    return bytes([shift << 2])


def align_small(v):     # case 2: v (0..63), mostly not a power of two
    return bytes([(v << 2) | 2])


def op(code, slot, *args):
    return bytes([code, slot]) + b"".join(args)


def ev(code, *args):    # a policy event: no slot byte
    return bytes([code]) + b"".join(args)


def ops_seeds():
    return {
        # malloc of tiny, class-edge and small/large-border sizes, then frees.
        "seed-malloc-free": op(MALLOC, 0, size_small(0)) + op(MALLOC, 1, size_small(17))
        + op(MALLOC, 2, size_class(40, -1)) + op(MALLOC, 3, size_u16(32768))
        + op(MALLOC, 4, size_u16(32769)) + op(CHECK_ALL, 0) + op(FREE, 1, b"\x00")
        + op(FREE, 2, b"\x01") + op(FREE, 3, b"\x02"),
        # calloc, then realloc growing through the classes into a large block
        # and back, checking contents every time.
        "seed-calloc-realloc": bytes([CALLOC, 5, 3 << 3]) + size_u16(1000)
        + op(REALLOC, 5, size_u16(5000)) + op(REALLOC, 5, size_large(40000, 2))
        + op(REALLOC, 5, size_small(9)) + op(REALLOCARRAY, 5, bytes([2 << 3]), size_u16(300))
        + op(CHECK, 5) + op(REALLOC, 5, size_small(0)),
        # Every alignment up to 2 MiB through the three aligned calls, and a
        # few bad alignments (EINVAL).
        "seed-aligned": b"".join(op(ALIGNED_ALLOC, s, align_pow2(s), size_u16(100 + s)) for s in range(0, 22, 3))
        + op(POSIX_MEMALIGN, 30, align_pow2(16), size_large(35000, 1))
        + op(POSIX_MEMALIGN, 31, align_small(3), size_small(8))
        + op(MEMALIGN, 32, align_small(48), size_u16(4000))
        + op(ALIGNED_ALLOC, 33, align_small(24), size_small(1))
        + op(VALLOC, 34, size_u16(5000)) + op(PVALLOC, 35, size_small(0)) + op(CHECK_ALL, 0),
        # Requests that must fail cleanly: near SIZE_MAX, past the address
        # space, calloc overflow; the live block survives them.
        "seed-huge": op(MALLOC, 0, size_u16(64)) + op(MALLOC, 1, size_near_max(0))
        + op(MALLOC, 2, size_huge_pow2(0)) + op(REALLOC, 0, size_near_max(100))
        + bytes([CALLOC, 3, 7]) + size_u16(4096) + b"\x00" + op(PVALLOC, 4, size_near_max(1))
        + op(ALIGNED_ALLOC, 5, bytes([(63 << 2) | 3]), size_small(1)) + op(NOT_OURS, 0)
        + op(CHECK, 0),
    }


def policy_seeds():
    seeds = ops_seeds()
    return {
        "seed-trim-collect": seeds["seed-malloc-free"] + ev(TRIM, b"\x00")
        + op(MALLOC, 9, size_large(60000, 3)) + op(FREE, 9, b"\x00") + ev(COLLECT) + ev(TRIM, b"\x00")
        + op(MALLOC, 10, size_u16(200)) + ev(TRIM, b"\x00"),
        # decommit eagerly (dontneed, resident target 0, no delay, no cache)
        # while blocks come and go.
        "seed-decommit": ev(OPTION, bytes([0 | 2 << 2])) + ev(OPTION, bytes([1 | 0 << 2]))
        + ev(OPTION, bytes([2 | 0 << 2])) + ev(OPTION, bytes([3 | 0 << 2]))
        + b"".join(op(MALLOC, i, size_u16(3000 * i + 1)) for i in range(12))
        + b"".join(op(FREE, i, b"\x00") for i in range(0, 12, 2)) + ev(COLLECT)
        + op(CALLOC, 20, bytes([1 << 3]), size_u16(20000)) + ev(TRIM, b"\x00") + op(CHECK_ALL, 0),
        # Backend failures: fail the 1st reserve, then every 2nd call of any
        # kind, then a random plan; allocations in between may fail.
        "seed-faults": op(MALLOC, 0, size_u16(100)) + ev(FAULT, bytes([0x01, 0])) + op(MALLOC, 1, size_large(65535, 8))
        + op(MALLOC, 2, size_u16(40000)) + ev(CLEAR) + op(MALLOC, 3, size_large(65535, 8))
        + ev(FAULT, bytes([0x10, 1])) + b"".join(op(MALLOC, 4 + i, size_u16(9000 * i)) for i in range(6))
        + ev(TRIM, b"\x00") + ev(FAULT, bytes([0x30]) + struct.pack("<I", 12345) + b"\x80")
        + op(REALLOC, 0, size_large(50000, 4)) + op(FREE, 3, b"\x00") + ev(TRIM, b"\x00") + ev(CLEAR),
        # The heap profiler on (every byte sampled, then every 4 KiB) while
        # blocks of many classes and big ones come, move and go, with a trim
        # and a collect in between; then off again with blocks still live.
        "seed-profiled": ev(OPTION, bytes([0xC0 | 1 << 2]))
        + b"".join(op(MALLOC, i, size_class(i * 7 % 96)) for i in range(20))
        + op(MALLOC, 20, size_large(60000, 3)) + op(REALLOC, 3, size_u16(50000)) + op(FREE, 5, b"\x00")
        + ev(OPTION, bytes([0xC0 | 2 << 2]))
        + b"".join(op(MALLOC, 21 + i, size_u16(24 * i + 1)) for i in range(40))
        + b"".join(op(FREE, 21 + i, b"\x00") for i in range(0, 40, 3)) + ev(TRIM, b"\x00") + ev(COLLECT)
        + op(CALLOC, 2, bytes([1 << 3]), size_u16(700)) + ev(OPTION, bytes([0xC0])) + op(REALLOC, 4, size_u16(9000))
        + op(CHECK_ALL, 0),
        # A byte budget: reserves fail once the backend would pass it.
        "seed-budget": ev(FAULT, bytes([0x21, 8])) + b"".join(op(MALLOC, i, size_large(65535, 7)) for i in range(8))
        + ev(CLEAR) + ev(TRIM, b"\x00"),
    }


# ---- size_class (size_class_fuzzer.c) ---------------------------------------
def size_class_seeds():
    def rec(kind, *args):
        return bytes([kind]) + b"".join(args)

    u16 = lambda v: struct.pack("<H", v)
    u64 = lambda v: struct.pack("<Q", v)
    return {
        "seed-tables": b"".join(rec(0, u16(n)) for n in (0, 1, 16, 17, 128, 129, 1000, 32767, 32768))
        + b"".join(rec(1, u16(n), bytes([s])) for n, s in ((1, 4), (100, 6), (5000, 12), (32768, 15), (0, 16))),
        "seed-api-edges": rec(2, b"\x01", u16(0)) + rec(2, b"\x00", u64(2**64 - 1)) + rec(2, b"\x05", u16(0))
        + rec(3, b"\x00", u64(2**33), b"\x00", u64(2**33), b"\x00")
        + rec(4, b"\x00", b"\x00", u64(2**63 + 1), b"\x00") + rec(5, b"\x10", b"\x01", u16(3), b"\x00")
        + rec(6, b"\x01", u16(0xfff), b"\x00") + rec(7, b"\x00", u64(40000), b"\x04"),
    }


# ---- options (options_fuzzer.c) ---------------------------------------------
def options_seeds():
    return {
        "seed-decommit": b"HAKMEM_DECOMMIT=dontneed",
        "seed-delay-max": b"HAKMEM_RELEASE_DELAY_MS=3600000",
        "seed-delay-over": b"HAKMEM_RELEASE_DELAY_MS=3600001",
        "seed-cache-zeros": b"\x03" + b"0000000000001048576",
        "seed-bool": b"HAKMEM_SHOW_CONFIG=1",
        "seed-stats-json": b"HAKMEM_STATS=json",
        "seed-stats-file": b"HAKMEM_STATS_FILE=/tmp/hakmem-%p.stats",
        "seed-stats-file-long": b"\x08" + b"/x" * 300,
        "seed-on-error": b"\x06warn",
        "seed-unknown": b"HAKMEM_NOPE=1",
        "seed-nul": b"HAKMEM_STATS=1\x00junk",
    }


# ---- threads (threads_fuzzer.c) ---------------------------------------------
def threads_seeds():
    # op byte: low digit (op % 10) is the step kind, (op >> 4) % 4 the worker.
    def step(kind, worker, slot, *args):
        code = next(c for c in range(256) if c % 10 == kind and (c >> 4) % 4 == worker)
        return bytes([code, slot]) + b"".join(args)

    ALLOC, GIVE, FREE, REALLOC, CHECK, COLLECT, EXIT, BURST = 0, 2, 3, 4, 5, 6, 7, 8
    sz = lambda n: bytes([1, n // 4])  # decode_size case 1: n (multiple of 4, < 1 KiB)
    big = lambda v, s: bytes([3 | s << 6]) + struct.pack("<H", v)  # case 3: v << s
    return {
        # Worker 0 allocates, hands each block to another worker, who frees it.
        "seed-handoff": b"".join(step(ALLOC, 0, i, sz(16 * i + 8)) + step(GIVE, 1 + i % 3, i) for i in range(8))
        + b"".join(step(FREE, 0, i) for i in range(8)),
        # Blocks outlive their thread: worker 1 exits with blocks live; others
        # free them and allocate (adopting the abandoned segment).
        "seed-exit": b"".join(step(ALLOC, 1, i, sz(40)) for i in range(6)) + step(ALLOC, 1, 6, big(20000, 1))
        + step(EXIT, 1, 0) + b"".join(step(GIVE, 2, i) for i in range(7)) + step(FREE, 2, 0) + step(FREE, 2, 6)
        + step(ALLOC, 3, 10, sz(40)) + step(COLLECT, 1, 0) + step(CHECK, 0, 2),
        # Concurrent bursts of remote frees and allocations, with reallocs of
        # remote blocks in between.
        "seed-burst": b"".join(step(ALLOC, i % 4, i, sz(64)) + step(GIVE, (i + 1) % 4, i) for i in range(16))
        + step(BURST, 0, 0, bytes([8]), *[sz(32)] * 8) + step(REALLOC, 2, 3, sz(900))
        + step(BURST, 3, 5, bytes([12]), *[sz(100)] * 12) + step(EXIT, 2, 0) + step(BURST, 1, 9, bytes([4]), *[sz(8)] * 4),
    }


# ---- freelist (freelist_fuzzer.c) -------------------------------------------
def freelist_seeds():
    def malloc(slot, b): return bytes([0, slot, b])          # size 16 * (1 + b % 64) - b / 64
    def free(slot): return bytes([3, slot])
    def rfree(slot): return bytes([5, slot])                 # freed by another thread
    def corrupt(which, kind, v): return bytes([6, which, kind]) + struct.pack("<Q", v)
    def burst(slot, n, b): return bytes([7, slot, n, b])
    return {
        # a live block's address over the newest freed block's link
        "seed-local-live": malloc(0, 3) + malloc(1, 3) + malloc(2, 3) + free(1) + free(2) + corrupt(255, 1, 0) + burst(10, 40, 3),
        # one byte of the link (an off-by-one overflow from the block before)
        "seed-local-byte": malloc(0, 3) + malloc(1, 3) + free(1) + corrupt(0, 0, 0) + burst(10, 20, 3),
        # remote list: a wild word, then bursts drain the span's local list
        "seed-remote-wild": malloc(0, 3) + malloc(1, 3) + rfree(1) + corrupt(0, 3 << 6, 0x7F1234567890) + burst(10, 63, 3) + burst(20, 63, 3),
        "seed-fill": malloc(0, 8) + malloc(1, 8) + free(0) + corrupt(0, 3, 0) + burst(5, 30, 8),
        # another freed block's address
        "seed-forged": malloc(0, 2) + malloc(1, 2) + malloc(2, 2) + free(0) + free(1) + corrupt(1, 2, 1 << 8) + burst(5, 30, 2),
    }


def main():
    targets = {
        "freelist": freelist_seeds(),
        "ops": ops_seeds(),
        "policy": policy_seeds(),
        "size_class": size_class_seeds(),
        "options": options_seeds(),
        "threads": threads_seeds(),
    }
    for target, seeds in targets.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.startswith("seed-"):
                os.remove(os.path.join(d, name))
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (target, len(seeds)))


if __name__ == "__main__":
    main()
