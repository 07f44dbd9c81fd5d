#!/usr/bin/env python3
"""The matrix's checks can fail: each reason matrix.py gives for failing a
variant's run, first on made-up runs (check_variant), then end to end on a
real program (sqlite3) preloaded with a library that is not the variant it
is named as: jemalloc (no hakmem report at all) and hakmem's speed variant
passed as balanced (reports name the wrong variant).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix  # noqa: E402

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def run(status=0, stdout="same\n", stderr="", peak_kb=10000, timed_out=False):
    return {"label": "x", "status": status, "timed_out": timed_out, "stdout": stdout,
            "stderr": stderr, "peak_kb": peak_kb, "cpu_s": 0.0, "wall_s": 0.0}


class CheckVariantTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        for _ in range(matrix.MIN_SERVED):
            self.report(variant="balanced", syscalls_mmap=3, thread_refills=40)

    def report(self, **fields):
        path = os.path.join(self.dir, "%d.json" % len(os.listdir(self.dir)))
        with open(path, "w") as f:
            f.write(json.dumps(fields) + "\n")

    def problems(self, got, ref=None):
        return matrix.check_variant("prog", "balanced", ref or run(), got, self.dir)

    def test_a_run_like_glibcs_with_hakmem_reports_passes(self):
        self.assertEqual(self.problems(run()), [])

    def test_another_exit_status_fails(self):
        (p,) = self.problems(run(status=1, stdout="same\n"))
        self.assertEqual(p, "exit status 1, glibc's run exit status 0")

    def test_a_signal_fails_and_is_named(self):
        (p,) = self.problems(run(status=-6))
        self.assertEqual(p, "killed by signal 6, glibc's run exit status 0")

    def test_different_stdout_fails_with_the_diff(self):
        (p,) = self.problems(run(stdout="other\n"))
        self.assertIn("stdout differs from glibc's run", p)
        self.assertIn("-same", p)
        self.assertIn("+other", p)

    def test_rss_past_twice_glibcs_plus_32_mib_fails(self):
        bound = 2 * 10000 + 32 * 1024
        self.assertEqual(self.problems(run(peak_kb=bound)), [])
        (p,) = self.problems(run(peak_kb=bound + 1))
        self.assertEqual(p, "peak RSS %d KiB exceeds the bound 2 x glibc's 10000 KiB + 32768 KiB = %d KiB"
                         % (bound + 1, bound))

    def test_hakmem_on_stderr_fails(self):
        (p,) = self.problems(run(stderr="prog: fine\nhakmem: double free of 0x10 in free()\n"))
        self.assertIn("hakmem wrote to stderr", p)
        self.assertIn("hakmem: double free of 0x10 in free()", p)

    def test_a_hang_fails(self):
        problems = self.problems(run(status=-9, timed_out=True))
        self.assertIn("timed out after %d s (a hang?)" % matrix.TIME_LIMIT_S, problems)

    def clear_reports(self):
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))

    def test_no_report_fails(self):
        self.clear_reports()
        (p,) = self.problems(run())
        self.assertEqual(p, "no hakmem statistics report: no process of the run had hakmem loaded")

    def test_a_report_of_another_variant_fails(self):
        self.report(variant="speed", syscalls_mmap=1, thread_refills=1)
        (p,) = self.problems(run())
        self.assertEqual(p, "reports from variant(s) speed, not balanced: the wrong library was loaded")

    def test_reports_that_served_nothing_fail(self):
        self.clear_reports()
        for _ in range(matrix.MIN_SERVED):
            self.report(variant="balanced", syscalls_mmap=0, thread_refills=0)
        (p,) = self.problems(run())
        self.assertEqual(p, "3 statistics reports, 0 with memory mapped and blocks handed out (want 3:"
                         " /usr/bin/time's, the workload shell's and the program's)")

    def test_only_time_and_the_shell_reporting_fails(self):
        self.clear_reports()
        for _ in range(matrix.MIN_SERVED - 1):
            self.report(variant="balanced", syscalls_mmap=3, thread_refills=40)
        (p,) = self.problems(run())
        self.assertIn("2 statistics reports, 2 with memory mapped", p)


class EndToEndTest(unittest.TestCase):
    def matrix(self, *libs):
        env = dict(os.environ)
        env["TEST_TMPDIR"] = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        return subprocess.run([sys.executable, os.path.join(HERE, "matrix.py"), "sqlite3"] + list(libs),
                              capture_output=True, text=True, env=env, timeout=300)

    def test_a_peer_allocator_named_as_a_variant_fails(self):
        if not os.path.exists(JEMALLOC):
            self.fail("%s missing (tools/setup.sh installs libjemalloc2)" % JEMALLOC)
        proc = self.matrix("balanced=" + JEMALLOC)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("FAIL sqlite3 [balanced]:", proc.stdout)
        self.assertIn("no hakmem statistics report", proc.stdout)

    def test_the_wrong_variant_fails(self):
        proc = self.matrix("balanced=" + os.path.abspath("alloc/libhakmem_speed.so"))
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("FAIL sqlite3 [balanced]:", proc.stdout)
        self.assertIn("reports from variant(s) speed, not balanced", proc.stdout)


if __name__ == "__main__":
    unittest.main()
