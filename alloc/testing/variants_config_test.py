#!/usr/bin/env python3
"""HAKMEM_* environment variables and HAKMEM_SHOW_CONFIG, in real processes
started with each variant preloaded: each variable's good values take
effect and are shown as coming from the environment; each bad value gets one
stderr line naming the variable, the value and what is accepted, and the
variant's value stays. The table below must cover every variable hakmem
prints, so a new variable cannot go untested.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_lib import VARIANTS, clean_env, run, variant_lib  # noqa: E402

# Each variant's modules and defaults, as alloc/policies/variant_*.c define
# them (and README's variant table documents them).
EXPECTED = {
    "speed": {
        "modules": "backend linux, release delayed, decommit to-target, prewarm hot-classes",
        "HAKMEM_DECOMMIT": "dontneed", "HAKMEM_RELEASE_DELAY_MS": "10000", "HAKMEM_CACHE_MB": "1024",
        "HAKMEM_RESIDENT_TARGET_MB": "1024", "HAKMEM_PREWARM_KB": "64", "HAKMEM_RECLAIM_THREAD": "0",
        "HAKMEM_PARK_GRACE_MS": "10", "HAKMEM_PARKED_MAX": "64", "HAKMEM_HEAP_IDLE_MS": "1000",
        "HAKMEM_MEMORY_LIMIT_MB": "0", "HAKMEM_THP": "default",
        "unused": set(),
    },
    "balanced": {
        "modules": "backend linux, release delayed, decommit to-target, prewarm none",
        "HAKMEM_DECOMMIT": "dontneed", "HAKMEM_RELEASE_DELAY_MS": "1000", "HAKMEM_CACHE_MB": "1024",
        "HAKMEM_RESIDENT_TARGET_MB": "8", "HAKMEM_PREWARM_KB": "0", "HAKMEM_RECLAIM_THREAD": "1",
        "HAKMEM_PARK_GRACE_MS": "10", "HAKMEM_PARKED_MAX": "64", "HAKMEM_HEAP_IDLE_MS": "50",
        "HAKMEM_MEMORY_LIMIT_MB": "0", "HAKMEM_THP": "default",
        "unused": {"HAKMEM_PREWARM_KB"},
    },
    "lean": {
        "modules": "backend linux, release delayed, decommit to-target, prewarm none",
        "HAKMEM_DECOMMIT": "dontneed", "HAKMEM_RELEASE_DELAY_MS": "100", "HAKMEM_CACHE_MB": "1024",
        "HAKMEM_RESIDENT_TARGET_MB": "16", "HAKMEM_PREWARM_KB": "0", "HAKMEM_RECLAIM_THREAD": "1",
        "HAKMEM_PARK_GRACE_MS": "10", "HAKMEM_PARKED_MAX": "64", "HAKMEM_HEAP_IDLE_MS": "50",
        "HAKMEM_MEMORY_LIMIT_MB": "0", "HAKMEM_THP": "never",
        "unused": {"HAKMEM_PREWARM_KB"},
    },
}

# Every variable: (process default or None when the variant sets it,
#                  good values, bad values, what the rejection says is accepted).
U64_BAD = ["", "-1", "1e3", "12ms", " 5", "0x10", "99999999999999999999999"]
VARIABLES = {
    "HAKMEM_DECOMMIT": (None, ["off", "free", "dontneed"], ["", "FREE", "yes", "madv_free", "1"],
                        "off, free or dontneed"),
    "HAKMEM_RELEASE_DELAY_MS": (None, ["0", "250", "3600000"], U64_BAD + ["3600001"], "an integer 0..3600000"),
    "HAKMEM_CACHE_MB": (None, ["0", "8", "1048576"], U64_BAD + ["1048577"], "an integer 0..1048576"),
    "HAKMEM_RESIDENT_TARGET_MB": (None, ["0", "32", "1048576"], U64_BAD + ["1048577"], "an integer 0..1048576"),
    "HAKMEM_PREWARM_KB": (None, ["0", "16", "65536"], U64_BAD + ["65537"], "an integer 0..65536"),
    "HAKMEM_RECLAIM_THREAD": (None, ["0", "1"], U64_BAD + ["2"], "0 or 1"),
    "HAKMEM_PARK_GRACE_MS": (None, ["0", "100", "3600000"], U64_BAD + ["3600001"], "an integer 0..3600000"),
    "HAKMEM_HEAP_IDLE_MS": (None, ["0", "50", "3600000"], U64_BAD + ["3600001"], "an integer 0..3600000 (0: never)"),
    "HAKMEM_PARKED_MAX": (None, ["0", "8", "4096"], U64_BAD + ["4097"], "an integer 0..4096"),
    "HAKMEM_MEMORY_LIMIT_MB": (None, ["0", "256", "1048576", "cgroup"], U64_BAD + ["1048577", "Cgroup", "max"],
                               "an integer 0..1048576 (0: none) or cgroup"),
    "HAKMEM_THP": (None, ["default", "never", "madvise"], ["", "always", "Never", "1"], "default, never or madvise"),
    "HAKMEM_ON_ERROR": ("abort", ["abort", "warn"], ["", "Abort", "ignore", "0"], "abort or warn"),
    "HAKMEM_STATS": ("0", ["0", "1", "json"], ["", "yes", "2", "true", "JSON"], "0, 1 or json"),
    "HAKMEM_STATS_FILE": ("", [os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "stats-%p.txt")],
                          ["", "/" + "x" * 600], "a file path (%p: the process id)"),
    "HAKMEM_SHOW_CONFIG": ("0", ["0", "1"], ["", "on", "01"], "0 or 1"),
    "HAKMEM_PROF_SAMPLE": ("0", ["0", "524288", "1099511627776"], U64_BAD + ["1099511627777"],
                           "an integer 0..1099511627776 (bytes; 0: off)"),
    "HAKMEM_PROF_FILE": ("", [os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "heap-%p.prof")],
                         ["", "/" + "x" * 600], "a file path (%p: the process id)"),
    "HAKMEM_THREAD_STATS": ("0", ["0", "1"], U64_BAD + ["2"], "0 or 1"),
}

LINE = re.compile(r"^hakmem:   (HAKMEM_\w+)=(\S*) \((default|variant|environment)(; unused by this variant's modules)?\)$")


def show_config(variant, **env):
    """Runs the probe with HAKMEM_SHOW_CONFIG=1 (unless overridden); returns
    (header line, {name: (value, source, unused)}, other stderr lines)."""
    settings = {"HAKMEM_SHOW_CONFIG": "1"}
    settings.update(env)
    proc = run(("config",), preload=variant_lib(variant), env=clean_env(**settings))
    header, config, other = None, {}, []
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if m:
            config[m.group(1)] = (m.group(2), m.group(3), bool(m.group(4)))
        elif line.startswith("hakmem: variant "):
            header = line
        else:
            other.append(line)
    return header, config, other


class ShowConfigTest(unittest.TestCase):
    def test_shows_every_variable_once_with_its_source(self):
        for variant in VARIANTS:
            with self.subTest(variant=variant):
                header, config, other = show_config(variant)
                want = EXPECTED[variant]
                self.assertEqual(header, "hakmem: variant %s (%s)" % (variant, want["modules"]))
                self.assertEqual(set(config), set(VARIABLES), "the test's table must cover every variable shown")
                self.assertEqual(other, [], "unexpected stderr lines")
                for name, (default, _, _, _) in VARIABLES.items():
                    value, source, unused = config[name]
                    if name == "HAKMEM_SHOW_CONFIG":
                        self.assertEqual((value, source), ("1", "environment"))
                    elif default is None:
                        self.assertEqual((value, source), (want[name], "variant"), name)
                    else:
                        self.assertEqual((value, source), (default, "default"), name)
                    self.assertEqual(unused, name in want["unused"], "%s: unused marker" % name)

    def test_nothing_is_printed_without_show_config(self):
        proc = run(("config",), preload=variant_lib("balanced"), env=clean_env())
        self.assertEqual(proc.stderr, "")


class EnvironmentTest(unittest.TestCase):
    def test_good_values_are_taken_and_shown_as_environment(self):
        for name, (_, good, _, _) in VARIABLES.items():
            for value in good:
                if name == "HAKMEM_SHOW_CONFIG" and value == "0":
                    continue  # would hide the printout this test reads
                with self.subTest(name=name, value=value):
                    _, config, other = show_config("balanced", **{name: value})
                    self.assertEqual(config[name][:2], (value, "environment"))
                    self.assertFalse([l for l in other if "ignoring" in l], "a good value was rejected")

    def test_bad_values_get_one_line_and_the_variant_value_stays(self):
        for variant in ("speed", "lean"):
            _, defaults, _ = show_config(variant)
            for name, (_, _, bad, accepted) in VARIABLES.items():
                if name == "HAKMEM_SHOW_CONFIG":
                    continue  # a rejected SHOW_CONFIG would hide the printout: tested below
                for value in bad:
                    with self.subTest(variant=variant, name=name, value=value):
                        _, config, other = show_config(variant, **{name: value})
                        self.assertEqual(other, ['hakmem: ignoring %s="%s": expected %s; keeping the variant\'s value'
                                                 % (name, value, accepted)])
                        self.assertEqual(config[name], defaults[name], "the rejected value changed the setting")

    def test_bad_show_config_is_reported_and_prints_nothing(self):
        for value in VARIABLES["HAKMEM_SHOW_CONFIG"][2]:
            with self.subTest(value=value):
                proc = run(("config",), preload=variant_lib("lean"), env=clean_env(HAKMEM_SHOW_CONFIG=value))
                self.assertEqual(proc.stderr, 'hakmem: ignoring HAKMEM_SHOW_CONFIG="%s": expected 0 or 1; '
                                              "keeping the variant's value\n" % value)

    def test_limit_and_thp_reach_the_statistics(self):
        def report(variant, **env):
            proc = run(("config",), preload=variant_lib(variant), env=clean_env(HAKMEM_STATS="1", **env))
            return dict(re.findall(r"^hakmem:   (\w+) (\d+)", proc.stderr, re.M))
        self.assertEqual(report("balanced", HAKMEM_MEMORY_LIMIT_MB="256")["bytes_limit"], str(256 << 20))
        self.assertEqual(report("balanced")["bytes_limit"], "0", "no variant has a limit of its own")
        lean = report("lean")
        self.assertGreaterEqual(int(lean["syscalls_madvise_nohugepage"]), 1, "lean refuses huge pages")
        self.assertEqual(lean["syscalls_madvise_hugepage"], "0")
        self.assertEqual(report("lean", HAKMEM_THP="default")["syscalls_madvise_nohugepage"], "0")

    def test_stats_prints_the_report_at_exit(self):
        proc = run(("config",), preload=variant_lib("lean"), env=clean_env(HAKMEM_STATS=1))
        self.assertIn("hakmem: statistics (", proc.stderr)
        self.assertIn("variant lean", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
