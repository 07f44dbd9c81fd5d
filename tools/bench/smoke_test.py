#!/usr/bin/env python3
"""End-to-end test of the harness: hakbench.py's smoke profile (every workload,
seconds-long) against glibc and mimalloc, into a scratch directory. Proves the
pipeline holds together: runs, strace pass, CSV/JSON/Markdown, charts.

Run by Bazel as //tools/bench:harness_smoke_test (binaries from the runfiles),
or by hand: BENCH_BIN_DIR=bazel-bin/bench python3 tools/bench/smoke_test.py
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import hakbench  # noqa: E402

BIN_DIR = os.environ.get("BENCH_BIN_DIR", os.path.join(os.getcwd(), "bench"))
MIMALLOC = os.path.exists(dict((n, l) for n, l, _ in hakbench.PEERS)["mimalloc"])


class SmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="hakbench-smoke-", dir=os.environ.get("TEST_TMPDIR"))
        allocs = "glibc,mimalloc" if MIMALLOC else "glibc"
        rc = hakbench.main(["--profile", "smoke", "--reps", "1", "--bin-dir", BIN_DIR,
                            "--lib-dir", os.path.join(cls.out, "no-hakmem-here"),
                            "--allocators", allocs, "--subject", "glibc", "--out", cls.out])
        if rc != 0:
            raise AssertionError(f"hakbench exited {rc}")
        with open(os.path.join(cls.out, "results.json")) as f:
            cls.data = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_every_run_succeeded(self):
        bad = [(r["case"], r["alloc"], r["status"]) for r in self.data["runs"] if r["status"] != "ok"]
        self.assertEqual(bad, [], "runs failed; logs are in the output's logs/")

    def test_every_case_has_a_median_for_every_allocator(self):
        for case, per in self.data["summary"].items():
            for alloc, s in per.items():
                self.assertIsNotNone(s["metrics"]["ops_per_s"]["median"], f"{case} / {alloc}")

    def test_strace_pass_counted_syscalls(self):
        if not shutil.which("strace"):
            self.skipTest("strace not installed")
        soak = [c["name"] for c in self.data["cases"] if c["strace"] == "steady"][0]
        entry = self.data["syscalls"][soak]["glibc"]
        self.assertEqual(entry["status"], "ok")
        self.assertIsNotNone(entry["steady_per_op"])
        whole = self.data["syscalls"]["random_mixed ws=400"]["glibc"]
        self.assertGreater(whole["counts"].get("mmap", 0), 0, "strace saw no mmap at all")

    def test_tables_and_charts_were_written(self):
        with open(os.path.join(self.out, "results.md")) as f:
            md = f.read()
        for title in ("Throughput", "Peak RSS", "working-set sweep", "Soak", "Latency"):
            self.assertIn(title, md)
        if MIMALLOC:
            self.assertIn("glibc ÷ mimalloc", md)
        for name in ("runs.csv", "summary.csv", "syscalls.csv"):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name)) > 0, name)
        if shutil.which("gnuplot"):
            for chart in ("ratios", "sweep", "soak_rss", "soak_ops", "latency"):
                path = os.path.join(self.out, "charts", chart + ".svg")
                self.assertTrue(os.path.exists(path), f"{chart}.svg missing")
                self.assertIn(f"charts/{chart}.svg", md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
