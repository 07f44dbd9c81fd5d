#!/usr/bin/env python3
"""hakmem's syscall counters against the kernel's view, and the steady-state
syscall budget of every variant.

- strace counts mmap, munmap and madvise after a marker the probe writes;
  libc and ld.so map memory too, but only before the marker (the probe runs
  one thread, no stdio and no dlopen after it), so every call strace sees
  after it is hakmem's. hakmem's HAKMEM_STATS=1 exit report minus the
  counters the probe printed just before the marker must match exactly.
- random_mixed in steady state makes under 1e-8 syscalls per operation in
  every variant.
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_lib import VARIANTS, clean_env, fields, probe, run, variant_lib  # noqa: E402

CALLS = ("mmap", "munmap", "madvise")


def strace_counts(trace):
    """Calls strace saw between the probe's marker and hakmem's exit report."""
    counts = dict.fromkeys(CALLS, 0)
    started = False
    for line in trace.splitlines():
        line = re.sub(r"^\[pid +\d+\] |^\d+ +", "", line)
        if not started:
            started = line.startswith('write(-1, "probe-begin"')
            continue
        if line.startswith("write(") and "hakmem: statistics" in line:
            return counts
        name = line.split("(", 1)[0]
        if name in counts:
            counts[name] += 1
    raise AssertionError("trace lacks the marker or hakmem's report:\n" + trace[-3000:])


def report_counts(stderr):
    """The syscall counters of hakmem's HAKMEM_STATS=1 report."""
    got = {}
    for call in CALLS:
        m = re.search(r"^hakmem:\s+syscalls_%s (\d+)$" % call, stderr, re.M)
        if not m:
            raise AssertionError("no syscalls_%s in hakmem's report:\n%s" % (call, stderr))
        got[call] = int(m.group(1))
    return got


@unittest.skipIf(shutil.which("strace") is None, "strace is not installed")
class StraceAgreementTest(unittest.TestCase):
    def check(self, variant, **env):
        # No reclaimer: its pthread_create maps a stack, a syscall the
        # backend does not make and so does not count.
        settings = dict(env, HAKMEM_STATS=1, HAKMEM_RECLAIM_THREAD=0, LD_PRELOAD=variant_lib(variant))
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
            trace_path = os.path.join(tmp, "trace")
            # -E: hakmem and its settings go to the probe only, not to strace.
            prefix = ["strace", "-f", "-qq", "-s", "24", "-e", "trace=mmap,munmap,madvise,write", "-o", trace_path]
            for k, v in sorted(settings.items()):
                prefix += ["-E", "%s=%s" % (k, v)]
            proc = run(("syscalls", 48), env=clean_env(), prefix=prefix)
            with open(trace_path) as f:
                kernel = strace_counts(f.read())
        at_marker = fields(proc.stdout, "syscalls")
        at_exit = report_counts(proc.stderr)
        hakmem = {c: at_exit[c] - int(at_marker[c]) for c in CALLS}
        self.assertEqual(hakmem, kernel, "hakmem counted %s, strace saw %s" % (hakmem, kernel))
        return hakmem

    def test_counters_match_strace_lean(self):
        # No cache: freed memory goes back at once, so every kind of call happens.
        counted = self.check("lean", HAKMEM_CACHE_MB=0)
        for call in CALLS:
            self.assertGreater(counted[call], 0, "the workload made no %s: the comparison proves little" % call)

    def test_counters_match_strace_balanced_with_madv_free(self):
        counted = self.check("balanced", HAKMEM_RESIDENT_TARGET_MB=0, HAKMEM_CACHE_MB=0)
        self.assertGreater(counted["madvise"], 0)

    def test_counters_match_strace_speed(self):
        counted = self.check("speed")
        self.assertEqual(counted["madvise"], 0, "speed must never decommit")


class SteadyStateTest(unittest.TestCase):
    ITERATIONS = 4000000

    def test_random_mixed_makes_under_1e8_syscalls_per_op_in_every_variant(self):
        for variant in VARIANTS:
            for ws in (400, 8192):
                with self.subTest(variant=variant, ws=ws):
                    r = probe("steady", ws, self.ITERATIONS, variant=variant)
                    per_op = r["syscalls"] / r["ops"]
                    self.assertLess(per_op, 1e-8, "%s ws=%d: %d syscalls in %d operations"
                                    % (variant, ws, r["syscalls"], r["ops"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
