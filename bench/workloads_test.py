#!/usr/bin/env python3
"""Each bench/ workload run with tiny parameters proves its own bookkeeping:
it exits 0, prints exactly one RESULT line, frees every block it allocated,
and its consistency checks (stamps, sample counts) hold.

Run by Bazel as //bench:workloads_test (binaries from the runfiles), or by
hand after a build: BENCH_BIN_DIR=bazel-bin/bench python3 bench/workloads_test.py
The process's own malloc is used (no LD_PRELOAD), so under --config=asan or
--config=tsan the workloads themselves are checked for memory errors and races.
"""

import os
import subprocess
import sys
import unittest

ROOT = os.getcwd()  # Bazel runs tests from the runfiles root of the workspace
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import benchlib  # noqa: E402

BIN_DIR = os.environ.get("BENCH_BIN_DIR", os.path.join(ROOT, "bench"))


def run(binary, *args, expect_rc=0):
    """Runs a workload; returns (result fields, STEP list, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run([os.path.join(BIN_DIR, binary)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=60, env=env)
    if proc.returncode != expect_rc:
        raise AssertionError(f"{binary} {' '.join(map(str, args))} exited {proc.returncode}, "
                             f"want {expect_rc}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    parsed = benchlib.parse_output(proc.stdout)
    if expect_rc == 0 and parsed["results"] != 1:
        raise AssertionError(f"{binary} printed {parsed['results']} RESULT lines, want 1:\n{proc.stdout}")
    return parsed["result"], parsed["steps"], proc.stderr


class WorkloadTest(unittest.TestCase):
    def assertFreesEverything(self, r):
        self.assertGreater(r["mallocs"], 0, "no allocation happened at all")
        self.assertEqual(r["frees"], r["mallocs"], "blocks left allocated (or freed twice)")

    def assertCommonFields(self, r, workload):
        self.assertEqual(r["workload"], workload)
        for key in ("ops", "seconds", "ops_per_s", "peak_rss_kb"):
            self.assertIn(key, r, f"RESULT lacks {key}")
        self.assertGreater(r["ops"], 0)
        self.assertGreater(r["peak_rss_kb"], 0)

    def test_random_mixed_frees_everything_and_counts_timed_calls(self):
        r, _, _ = run("random_mixed", 20000, 64, 7, 16, 1024)
        self.assertCommonFields(r, "random_mixed")
        self.assertFreesEverything(r)
        # ops = the main loop's iterations + the final frees of at most ws slots
        self.assertGreaterEqual(r["ops"], 20000)
        self.assertLessEqual(r["ops"], 20000 + 64)
        # the prefault pass (iterations/10) ran too, so more calls than the loop alone
        self.assertGreater(r["mallocs"] + r["frees"], r["ops"])

    def test_random_mixed_is_deterministic_per_seed(self):
        a, _, _ = run("random_mixed", 5000, 32, 3)
        b, _, _ = run("random_mixed", 5000, 32, 3)
        c, _, _ = run("random_mixed", 5000, 32, 4)
        self.assertEqual((a["mallocs"], a["ops"]), (b["mallocs"], b["ops"]))
        self.assertNotEqual(a["mallocs"], c["mallocs"], "the seed does not change the stream")

    def test_fixed_size_is_random_mixed_with_min_equal_max(self):
        r, _, _ = run("random_mixed", 10000, 64, 1, 4096, 4096)
        self.assertCommonFields(r, "fixed")
        self.assertEqual((r["min"], r["max"]), (4096, 4096))
        self.assertFreesEverything(r)

    def test_bad_arguments_print_usage_and_exit_2(self):
        _, _, err = run("random_mixed", 100, 0, expect_rc=2)
        self.assertIn("usage:", err)
        _, _, err = run("larson", "two", expect_rc=2)
        self.assertIn("usage:", err)

    def test_larson_hands_lanes_to_new_threads_and_frees_everything(self):
        # 64 chunks x 10 rounds: a hand-off every 640 operations
        r, _, _ = run("larson", 2, 0.2, 8, 128, 64, 10)
        self.assertCommonFields(r, "larson")
        self.assertFreesEverything(r)
        self.assertGreater(r["threads_started"], 2, "no lane was handed to a new thread")

    def test_larson_four_threads_1024_chunks_exits_cleanly(self):
        # The configuration that crashed hakmem's predecessor.
        r, _, _ = run("larson", 4, 0.2, 8, 128, 1024, 1)
        self.assertEqual(r["threads"], 4)
        self.assertFreesEverything(r)

    def test_prodcons_consumer_frees_every_block_intact(self):
        r, _, _ = run("prodcons", 2, 5000, 16, 256, 1, 64)
        self.assertCommonFields(r, "prodcons")
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["mallocs"], 2 * 5000)
        self.assertEqual(r["ops"], 2 * 2 * 5000)
        self.assertFreesEverything(r)

    def test_realloc_heavy_keeps_contents_and_frees_everything(self):
        r, _, _ = run("realloc_heavy", 20000, 32)
        self.assertCommonFields(r, "realloc")
        self.assertEqual(r["errors"], 0, "realloc lost a buffer's contents")
        self.assertGreater(r["reallocs"], r["mallocs"], "not realloc-heavy")
        self.assertFreesEverything(r)

    def test_churn_runs_rounds_of_new_threads_and_frees_everything(self):
        # 4 threads x 3 rounds x 3000 steps on 256 shared slots
        r, _, _ = run("churn", 4, 3, 3000, 256, 1 << 20)
        self.assertCommonFields(r, "churn")
        self.assertEqual(r["errors"], 0, "a block lost its stamp between two threads")
        self.assertGreater(r["mallocs"], 4 * 3 * 3000, "one malloc per step, plus one per growing buffer started")
        self.assertFreesEverything(r)
        self.assertGreater(r["reallocs"], 0, "no buffer was grown with realloc")
        self.assertEqual(r["ops"], r["mallocs"] + r["reallocs"] + r["frees"])
        self.assertIn("minflt", r)
        self.assertIn("minflt_per_kop", r)

    def test_realloc_large_grows_to_max_keeping_contents(self):
        r, _, _ = run("realloc_large", 2, 1 << 20, 32 << 20)
        self.assertCommonFields(r, "realloc_large")
        self.assertEqual(r["errors"], 0, "realloc lost a buffer's contents")
        self.assertEqual(r["reallocs"], 2 * 5, "1 MiB doubled to 32 MiB is 5 reallocs per round")
        self.assertEqual(r["mallocs"], r["frees"])
        self.assertEqual(r["ops"], r["mallocs"] + r["reallocs"] + r["frees"])

    def test_large_spans_the_size_range_and_frees_everything(self):
        r, _, _ = run("large", 200, 4, 1, 65536, 1 << 20, 0)
        self.assertCommonFields(r, "large")
        self.assertFreesEverything(r)

    def test_soak_prints_one_step_line_per_step(self):
        r, steps, _ = run("soak", 0.2, 5000, 64)
        self.assertCommonFields(r, "soak")
        self.assertGreaterEqual(len(steps), 1)
        self.assertEqual(r["steps"], len(steps))
        self.assertEqual([s["step"] for s in steps], list(range(len(steps))))
        self.assertTrue(all(s["rss_kb"] > 0 and s["ops_per_s"] > 0 for s in steps))
        self.assertFreesEverything(r)

    def test_soak_max_steps_bounds_the_run(self):
        # The harness's steady-state syscall count relies on this.
        r, steps, _ = run("soak", 1e9, 3000, 64, 1, 16, 1024, 3)
        self.assertEqual(len(steps), 3)
        self.assertEqual(r["ops"], 3 * 3000)

    def test_latency_percentiles_are_ordered_and_count_every_op(self):
        r, _, _ = run("latency", 20000, 64)
        self.assertCommonFields(r, "latency")
        self.assertEqual(r["malloc_samples"] + r["free_samples"], 20000)
        for kind in ("malloc", "free"):
            p = [r[f"{kind}_{q}_ns"] for q in ("p50", "p99", "p999", "max")]
            self.assertEqual(p, sorted(p), f"{kind} percentiles out of order: {p}")
        self.assertFreesEverything(r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
