#!/usr/bin/env python3
"""Tests of the benchmark harness's parsing and arithmetic on known inputs.

Run by Bazel as //tools/bench:harness_test, or by hand:
  python3 tools/bench/test_harness.py
"""

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import hakbench  # noqa: E402
import report  # noqa: E402

# A real `strace -f -c` summary (jemalloc running larson), plus an openat row
# with an errors column, which shifts nothing but must still parse.
STRACE_SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 96.53    0.002557          14       171           madvise
  2.83    0.000075           1        44           mmap
  0.64    0.000017           1        11           mprotect
  0.00    0.000000           0         6           munmap
  0.00    0.000000           0         2           brk
  0.00    0.000000           0         4         2 openat
------ ----------- ----------- --------- --------- ----------------
100.00    0.002649          11       238         2 total
"""


class ParseTest(unittest.TestCase):
    def test_result_line_values_become_ints_floats_and_strings(self):
        tag, fields = benchlib.parse_kv_line(
            "RESULT workload=random_mixed ops=20000204 seconds=0.2995 ops_per_s=6.67e+07 ws=400")
        self.assertEqual(tag, "RESULT")
        self.assertEqual(fields, {"workload": "random_mixed", "ops": 20000204, "seconds": 0.2995,
                                  "ops_per_s": 6.67e7, "ws": 400})
        self.assertIsInstance(fields["ops"], int)

    def test_line_with_a_bare_word_is_not_a_result(self):
        self.assertIsNone(benchlib.parse_kv_line("RESULT of the day: nothing"))
        self.assertIsNone(benchlib.parse_kv_line("RESULT"))
        self.assertIsNone(benchlib.parse_kv_line(""))

    def test_output_keeps_the_result_and_steps_and_counts_results(self):
        out = ("noise from the allocator\n"
               "STEP step=0 t_s=0.1 ops_per_s=100 rss_kb=2048\n"
               "STEP step=1 t_s=0.2 ops_per_s=110 rss_kb=2050\n"
               "RESULT workload=soak ops=200 steps=2\n")
        parsed = benchlib.parse_output(out)
        self.assertEqual(parsed["results"], 1)
        self.assertEqual(parsed["result"]["steps"], 2)
        self.assertEqual([s["rss_kb"] for s in parsed["steps"]], [2048, 2050])

    def test_output_with_two_results_is_flagged(self):
        parsed = benchlib.parse_output("RESULT a=1\nRESULT a=2\n")
        self.assertEqual(parsed["results"], 2)
        self.assertEqual(benchlib.parse_output("nothing here\n")["results"], 0)

    def test_strace_summary_counts_calls_per_syscall_without_total(self):
        counts = benchlib.parse_strace_summary(STRACE_SUMMARY)
        self.assertEqual(counts, {"madvise": 171, "mmap": 44, "mprotect": 11, "munmap": 6,
                                  "brk": 2, "openat": 4})

    def test_budget_counts_only_mmap_munmap_madvise_mprotect(self):
        counts = benchlib.parse_strace_summary(STRACE_SUMMARY)
        self.assertEqual(benchlib.budget_calls(counts), 171 + 44 + 11 + 6)
        self.assertAlmostEqual(benchlib.per_op(benchlib.budget_calls(counts), 2320000), 1e-4)
        self.assertIsNone(benchlib.per_op(10, 0))


class ArithmeticTest(unittest.TestCase):
    def test_median_of_odd_and_even_counts(self):
        self.assertEqual(benchlib.median([3, 1, 2]), 2)
        self.assertEqual(benchlib.median([4, 1, 3, 2]), 2.5)
        self.assertIsNone(benchlib.median([]))

    def test_summary_gives_median_and_spread_ignoring_non_numbers(self):
        s = benchlib.summarize([10.0, None, 30.0, float("nan"), 20.0, "x"])
        self.assertEqual(s, {"median": 20.0, "min": 10.0, "max": 30.0, "n": 3})
        self.assertEqual(benchlib.summarize([])["n"], 0)

    def test_ratio_guards_missing_and_zero_references(self):
        self.assertAlmostEqual(benchlib.ratio(110, 100), 1.1)
        self.assertIsNone(benchlib.ratio(None, 100))
        self.assertIsNone(benchlib.ratio(1, 0))

    def test_best_peer_depends_on_direction_and_skips_missing(self):
        values = {"glibc": 80, "mimalloc": 120, "jemalloc": None, "hakmem": 150}
        peers = ["glibc", "mimalloc", "jemalloc"]
        self.assertEqual(benchlib.best_peer(values, peers, True), ("mimalloc", 120))
        self.assertEqual(benchlib.best_peer(values, peers, False), ("glibc", 80))
        self.assertEqual(benchlib.best_peer({}, peers, True), (None, None))

    def test_steady_syscalls_are_the_difference_of_two_runs(self):
        short = {"mmap": 30, "munmap": 5, "brk": 9}
        long_ = {"mmap": 32, "munmap": 6, "madvise": 2, "brk": 90}
        per_op, ops = benchlib.steady_per_op(short, 1_000_000, long_, 101_000_000)
        self.assertEqual(ops, 100_000_000)
        self.assertAlmostEqual(per_op, 5 / 1e8)  # brk is not budgeted
        # fewer calls in the longer run (noise) is clamped to 0, not negative
        self.assertEqual(benchlib.steady_per_op(long_, 1, short, 2)[0], 0)
        self.assertIsNone(benchlib.steady_per_op(short, 5, long_, 5)[0])

    def test_slowdown_is_small_ws_throughput_over_large(self):
        self.assertAlmostEqual(benchlib.slowdown({256: 96.0, 8192: 20.0}, 256, 8192), 4.8)
        self.assertIsNone(benchlib.slowdown({256: 96.0}, 256, 8192))

    def test_number_formatting(self):
        self.assertEqual(benchlib.fmt_num(122.6), "123")
        self.assertEqual(benchlib.fmt_num(1.234), "1.23")
        self.assertEqual(benchlib.fmt_num(0.0456), "0.0456")
        self.assertEqual(benchlib.fmt_num(None), "–")
        self.assertEqual(benchlib.fmt_ratio(1.104), "1.10×")


def fake_data():
    """Two cases, a hakmem subject and three peers, medians easy to check."""
    def summ(values, failures=0, status="ok"):
        return {"status": status, "runs": 3, "failures": failures, "steps": [],
                "metrics": {"ops_per_s": benchlib.summarize(values),
                            "peak_rss_kb": benchlib.summarize([2048] * len(values))}}
    return {
        "meta": {"subjects": ["hakmem"], "reference": "mimalloc"},
        "allocators": [{"name": n, "hakmem": n == "hakmem", "lib": None}
                       for n in ("hakmem", "glibc", "mimalloc", "jemalloc")],
        "cases": [{"name": "random_mixed ws=400", "group": "headline", "strace": "whole", "x": 400,
                   "args": []},
                  {"name": "larson 4T", "group": "headline", "strace": "whole", "x": None, "args": []}],
        "summary": {
            "random_mixed ws=400": {"hakmem": summ([130e6, 132e6, 140e6]),
                                    "glibc": summ([80e6, 85e6, 86e6]),
                                    "mimalloc": summ([118e6, 120e6, 125e6]),
                                    "jemalloc": summ([100e6, 100e6, 101e6])},
            "larson 4T": {"hakmem": summ([], failures=3, status="crash:SIGSEGV"),
                          "glibc": summ([50e6]), "mimalloc": summ([90e6]), "jemalloc": summ([95e6])},
        },
        "syscalls": {},
        "runs": [],
    }


class ReportTest(unittest.TestCase):
    def test_ratios_use_medians_against_mimalloc_and_best_peer(self):
        cells = report.ratio_cells(fake_data(), "random_mixed ws=400", report.THROUGHPUTS["wall"], "hakmem")
        self.assertEqual(cells, ["1.10×", "1.10× (mimalloc)"])  # 132 / 120

    def test_best_peer_never_includes_the_subject_or_other_hakmem_variants(self):
        data = fake_data()
        data["allocators"].append({"name": "hakmem_speed", "hakmem": True, "lib": None})
        self.assertEqual(report.peers_of(data, "hakmem"), ["glibc", "mimalloc", "jemalloc"])
        self.assertEqual(report.peers_of(data, "glibc"), ["mimalloc", "jemalloc"])

    def test_cell_shows_median_with_spread_in_display_units(self):
        s = fake_data()["summary"]["random_mixed ws=400"]["mimalloc"]
        self.assertEqual(report.cell(s, "ops_per_s", 1e-6), "120 [118–125]")
        self.assertEqual(report.cell(s, "ops_per_s", 1e-6, with_spread=False), "120")

    def test_crashed_case_shows_the_failure_and_no_ratio(self):
        data = fake_data()
        self.assertEqual(report.cell(data["summary"]["larson 4T"]["hakmem"], "ops_per_s", 1e-6),
                         "CRASH:SIGSEGV")
        self.assertEqual(report.ratio_cells(data, "larson 4T", report.THROUGHPUTS["wall"], "hakmem"), ["–", "–"])

    def test_markdown_table_has_a_row_per_case_and_ratio_columns(self):
        table = report.metric_table(fake_data(), report.throughput(fake_data()))
        lines = [l for l in table.splitlines() if l.startswith("| ")]
        self.assertEqual(len(lines), 3)  # header + 2 cases
        self.assertIn("hakmem ÷ mimalloc", lines[0])
        self.assertIn("hakmem ÷ best peer", lines[0])
        self.assertIn("1.10×", lines[1])

    def test_cpu_metric_ranks_by_operations_per_cpu_second(self):
        data = fake_data()
        self.assertEqual(report.throughput(data).field, "ops_per_s")
        data["meta"]["metric"] = "cpu"
        self.assertEqual(report.throughput(data).field, "ops_per_cpu_s")
        self.assertIn("CPU", report.metric_table(data, report.throughput(data)).splitlines()[0])

    def test_steady_zero_syscalls_state_the_resolution(self):
        self.assertEqual(report.syscall_cell({"status": "ok", "steady_per_op": 0, "steady_ops": 10**8}),
                         "0 (< 1e-08)")
        self.assertEqual(report.syscall_cell({"status": "ok", "per_op": 2.5e-7}), "2.5e-07")
        self.assertEqual(report.syscall_cell({"status": "timeout"}), "TIMEOUT")


class HonestRatioTest(unittest.TestCase):
    def test_ratio_of_an_allocator_with_one_failed_run_is_blank(self):
        data = fake_data()
        # 1 of 3 runs crashed; the two good ones still give a median
        data["summary"]["random_mixed ws=400"]["hakmem"].update(failures=1, status="crash:SIGSEGV")
        self.assertEqual(report.ratio_cells(data, "random_mixed ws=400", report.THROUGHPUTS["wall"],
                                            "hakmem"), ["–", "–"])
        self.assertIn("⚠1/3", report.cell(data["summary"]["random_mixed ws=400"]["hakmem"],
                                          "ops_per_s", 1e-6))

    def test_failed_reference_blanks_its_ratio_and_best_peer_is_one_that_never_failed(self):
        data = fake_data()
        data["summary"]["random_mixed ws=400"]["mimalloc"].update(failures=1, status="exit:1")
        cells = report.ratio_cells(data, "random_mixed ws=400", report.THROUGHPUTS["wall"], "hakmem")
        self.assertEqual(cells[0], "–")
        self.assertEqual(cells[1], "1.32× (jemalloc)")  # 132 / 100: mimalloc is not eligible

    def test_overlapping_ranges_print_tie(self):
        data = fake_data()
        case = data["summary"]["random_mixed ws=400"]
        case["hakmem"]["metrics"]["ops_per_s"] = benchlib.summarize([119e6, 122e6, 126e6])
        cells = report.ratio_cells(data, "random_mixed ws=400", report.THROUGHPUTS["wall"], "hakmem")
        self.assertEqual(cells, ["1.02× (tie)", "1.02× (tie, mimalloc)"])  # 122/120; 119..126 vs 118..125

    def test_separate_ranges_are_not_a_tie(self):
        cells = report.ratio_cells(fake_data(), "random_mixed ws=400", report.THROUGHPUTS["wall"], "hakmem")
        self.assertNotIn("tie", " ".join(cells))  # 130..140 vs 118..125

    def test_range_overlap(self):
        self.assertTrue(benchlib.ranges_overlap({"min": 1, "max": 3}, {"min": 3, "max": 5}))
        self.assertFalse(benchlib.ranges_overlap({"min": 1, "max": 2}, {"min": 3, "max": 5}))
        self.assertFalse(benchlib.ranges_overlap({"min": None, "max": None}, {"min": 3, "max": 5}))


class EnvironmentTest(unittest.TestCase):
    def test_allocator_variables_are_recognised(self):
        for name in ("HAKMEM_FOO", "MALLOC_CONF", "MALLOC_ARENA_MAX", "JE_MALLOC_CONF", "MIMALLOC_VERBOSE",
                     "TCMALLOC_RELEASE_RATE", "GLIBC_TUNABLES", "LD_PRELOAD"):
            self.assertTrue(benchlib.is_allocator_var(name), name)
        for name in ("PATH", "HOME", "LD_LIBRARY_PATH", "TEST_TMPDIR"):
            self.assertFalse(benchlib.is_allocator_var(name), name)

    def test_every_allocator_is_preloaded_the_same_way(self):
        hakmem = hakbench.Allocator("hakmem", "/x/libhakmem.so", True)
        peer = hakbench.Allocator("mimalloc", "/x/libmimalloc.so.2", False)
        glibc = hakbench.Allocator("glibc", None, False)
        self.assertEqual(hakmem.run_env(), {"LD_PRELOAD": "/x/libhakmem.so"})
        self.assertEqual(peer.run_env(), {"LD_PRELOAD": "/x/libmimalloc.so.2"})
        self.assertEqual(glibc.run_env(), {})
        # under strace: the tracee's environment only
        cmd = hakbench.strace_command(hakmem.run_env(), "/tmp/out", False)
        self.assertEqual(cmd[-2:], ["-E", "LD_PRELOAD=/x/libhakmem.so"])

    def test_a_configured_hakmem_carries_its_options_and_only_when_asked(self):
        prof = hakbench.Allocator("hakmem_prof", "/x/libhakmem.so", True, options={"HAKMEM_PROF_SAMPLE": "524288"})
        self.assertEqual(prof.run_env(), {"LD_PRELOAD": "/x/libhakmem.so", "HAKMEM_PROF_SAMPLE": "524288"})
        cmd = hakbench.strace_command(prof.run_env(), "/tmp/out", False)
        self.assertIn("HAKMEM_PROF_SAMPLE=524288", cmd)
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "libhakmem.so"), "w").close()
            default, _ = hakbench.discover_allocators(d, None)
            self.assertNotIn("hakmem_prof", [a.name for a in default])
            asked, _ = hakbench.discover_allocators(d, "hakmem,hakmem_prof,hakmem_counting")
            self.assertEqual([a.name for a in asked], ["hakmem", "hakmem_prof", "hakmem_counting"])
            self.assertEqual(asked[2].run_env()["HAKMEM_THREAD_STATS"], "1")

    def test_allocators_rotate_between_repetitions(self):
        allocs = [hakbench.Allocator(n, None, False) for n in ("a", "b", "c")]
        cases = [hakbench.Case("one", "x", []), hakbench.Case("two", "x", [])]
        jobs = hakbench.schedule(cases, allocs, 3)
        firsts = [alloc.name for rep, case, alloc in jobs if case.name == "one"][::3]
        self.assertEqual(firsts, ["a", "b", "c"])  # each leads one repetition
        for rep in range(3):
            pairs = sorted((c.name, a.name) for r, c, a in jobs if r == rep)
            self.assertEqual(pairs, sorted((c, a) for c in ("one", "two") for a in "abc"))


def harmless_library():
    """A shared object that changes nothing when preloaded: the libm this
    Python process has mapped. Stands in for an allocator's library."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libm.so"):
                return path
    return None


# A fake workload: prints a RESULT line naming the allocator variables it got.
# FAKE_FAIL_ONCE=<file>: the first preloaded run exits 3 (and creates the file).
FAKE_WORKLOAD = """#!{python}
import os, re, sys
seen = sorted(k for k in os.environ
              if re.match(r"(HAKMEM_|MALLOC_|JE_MALLOC_|MIMALLOC_|TCMALLOC_|GLIBC_TUNABLES|LD_PRELOAD)", k))
flag = os.environ.get("FAKE_FAIL_ONCE")
if flag and "LD_PRELOAD" in os.environ and not os.path.exists(flag):
    open(flag, "w").close()
    sys.exit(3)
print("RESULT workload=fake ops=1000 seconds=0.001 ops_per_s=1000000 peak_rss_kb=1000 seen="
      + ",".join(seen) + " preload=" + os.path.basename(os.environ.get("LD_PRELOAD", "none")))
"""


class HarnessRunTest(unittest.TestCase):
    """hakbench.main end to end on a fake workload and a fake hakmem."""

    def setUp(self):
        lib = harmless_library()
        if not lib:
            self.skipTest("no libm mapped to stand in for an allocator")
        self.tmp = tempfile.mkdtemp(prefix="hakbench-test-", dir=os.environ.get("TEST_TMPDIR"))
        self.bin_dir = os.path.join(self.tmp, "bin")
        self.lib_dir = os.path.join(self.tmp, "lib")
        os.makedirs(self.bin_dir)
        os.makedirs(self.lib_dir)
        shutil.copy(lib, os.path.join(self.lib_dir, "libhakmem.so"))
        fake = os.path.join(self.bin_dir, "larson")
        with open(fake, "w") as f:
            f.write(FAKE_WORKLOAD.format(python=sys.executable))
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
        self.saved_env = dict(os.environ)
        self.addCleanup(self.restore)
        self.preload = lib

    def restore(self):
        os.environ.clear()
        os.environ.update(self.saved_env)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_harness(self):
        out = os.path.join(self.tmp, "out")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = hakbench.main(["--profile", "smoke", "--only", "^larson", "--reps", "2",
                                "--allocators", "hakmem,glibc", "--bin-dir", self.bin_dir,
                                "--lib-dir", self.lib_dir, "--out", out, "--no-strace", "--no-charts",
                                "--no-pin"])
        with open(os.path.join(out, "results.json")) as f:
            data = json.load(f)
        with open(os.path.join(out, "results.md")) as f:
            md = f.read()
        return rc, data, md

    def test_callers_allocator_variables_do_not_reach_a_run(self):
        os.environ.update(HAKMEM_FOO="1", MALLOC_CONF="junk:true", MIMALLOC_VERBOSE="1",
                          TCMALLOC_RELEASE_RATE="0", JE_MALLOC_CONF="junk:true",
                          GLIBC_TUNABLES="glibc.malloc.arena_max=1", LD_PRELOAD=self.preload)
        rc, data, md = self.run_harness()
        self.assertEqual(rc, 0)
        runs = {(r["alloc"], r["rep"]): r for r in data["runs"]}
        self.assertEqual(len(runs), 4)
        for (alloc, _), r in runs.items():
            self.assertEqual(r["status"], "ok")
            if alloc == "hakmem":  # only what the harness set on purpose, and it is recorded
                self.assertEqual(r["result"]["seen"], "LD_PRELOAD")
                self.assertEqual(r["result"]["preload"], "libhakmem.so")
                self.assertEqual(r["env"], {"LD_PRELOAD": data["allocators"][0]["lib"]})
            else:
                self.assertEqual(r["result"]["seen"], "", "a caller's variable reached the glibc run")
                self.assertEqual(r["env"], {})
        self.assertEqual(data["meta"]["env_cleared"],
                         ["GLIBC_TUNABLES", "HAKMEM_FOO", "JE_MALLOC_CONF", "LD_PRELOAD", "MALLOC_CONF",
                          "MIMALLOC_VERBOSE", "TCMALLOC_RELEASE_RATE"])
        self.assertIn("`HAKMEM_FOO`", md)

    def test_a_failed_run_makes_the_harness_exit_1_and_blanks_that_ratio(self):
        os.environ["FAKE_FAIL_ONCE"] = os.path.join(self.tmp, "failed-once")
        rc, data, md = self.run_harness()
        self.assertEqual(rc, 1)
        statuses = sorted(r["status"] for r in data["runs"] if r["alloc"] == "hakmem")
        self.assertEqual(statuses, ["exit:3", "ok"])
        row = [l for l in md.splitlines() if l.startswith("| larson")][0].split(" | ")
        # workload, hakmem, glibc, hakmem ÷ mimalloc, hakmem ÷ best peer
        self.assertIn("⚠1/2", row[1])
        self.assertEqual(row[4].rstrip(" |"), "–", "the ratio of an allocator with a failed run is shown")

    def test_clean_runs_exit_0_with_equal_figures_a_tie(self):
        rc, _, md = self.run_harness()
        self.assertEqual(rc, 0)
        row = [l for l in md.splitlines() if l.startswith("| larson")][0]
        self.assertIn("1.00× (tie, glibc)", row)


class RawResultsTest(unittest.TestCase):
    def test_published_report_is_made_from_the_committed_raw_file(self):
        tmp = tempfile.mkdtemp(prefix="hakbench-publish-", dir=os.environ.get("TEST_TMPDIR"))
        self.addCleanup(shutil.rmtree, tmp, True)
        data = fake_data()
        data["meta"].update(date="2026-01-01", profile="full", reps=3, cpu="cpu", cpus=2, kernel="k",
                            glibc="g", duration_s=1, load_before=0.1, load_after=0.2)
        md_path = report.publish(data, [], tmp)
        self.assertEqual(md_path, os.path.join(tmp, "RESULTS.md"))
        with open(os.path.join(tmp, "RESULTS.json")) as f:
            raw = json.load(f)
        with open(md_path) as f:
            published = f.read()
        self.assertEqual(published, report.markdown(raw, raw["charts"]))
        self.assertIn("1.10×", published)
        # report.py rebuilds the same report from the raw file alone
        os.rename(md_path, md_path + ".old")
        subprocess.run([sys.executable, os.path.join(HERE, "report.py"), os.path.join(tmp, "RESULTS.json")],
                       check=True, capture_output=True)
        with open(md_path) as f:
            self.assertEqual(f.read(), published)


if __name__ == "__main__":
    unittest.main(verbosity=2)
