#!/usr/bin/env python3
"""tools/hkstats_diff.py on known reports: both forms parse to the same
figures, several reports in one file pick the right one, and the diff
arithmetic and output are what they should be."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import hkstats_diff  # noqa: E402

TEXT = """some program output
hakmem: statistics (hakmem 0.1.0, variant balanced, pid 41)
hakmem:   bytes_in_use 2097152 (2.0 MiB)
hakmem:   bytes_committed 4194304 (4.0 MiB)
hakmem:   large_live 1
hakmem:   syscalls_mmap 3
hakmem:   size classes in use: class block_size blocks_in_use bytes_in_use blocks_free spans
hakmem:   class  3     64        1000         64000          24       1
hakmem:   class 31   1024          10         10240           6       1
more output
"""

JSON_BEFORE = {"hakmem": "hakmem 0.1.0", "variant": "balanced", "pid": 42, "bytes_in_use": 2097152,
               "bytes_committed": 4194304, "large_live": 1, "syscalls_mmap": 3,
               "classes": [{"class": 3, "block_size": 64, "blocks_in_use": 1000, "blocks_free": 24, "spans": 1},
                           {"class": 31, "block_size": 1024, "blocks_in_use": 10, "blocks_free": 6, "spans": 1}]}
JSON_AFTER = {"hakmem": "hakmem 0.1.0", "variant": "balanced", "pid": 43, "bytes_in_use": 3145728,
              "bytes_committed": 4194304, "large_live": 1, "syscalls_mmap": 5,
              "classes": [{"class": 3, "block_size": 64, "blocks_in_use": 3000, "blocks_free": 8, "spans": 3},
                          {"class": 40, "block_size": 2304, "blocks_in_use": 2, "blocks_free": 0, "spans": 1}]}


class ParseTest(unittest.TestCase):
    def test_text_and_json_forms_give_the_same_figures(self):
        (t,) = hkstats_diff.parse_reports(TEXT)
        (j,) = hkstats_diff.parse_reports(json.dumps(JSON_BEFORE))
        self.assertEqual(t["fields"], j["fields"])
        self.assertEqual(t["classes"], j["classes"])
        self.assertEqual((t["variant"], t["pid"]), ("balanced", 41))

    def test_last_report_or_the_one_of_a_pid(self):
        text = json.dumps(JSON_BEFORE) + "\n" + TEXT + json.dumps(JSON_AFTER) + "\n"
        reports = hkstats_diff.parse_reports(text)
        self.assertEqual([r["pid"] for r in reports], [42, 41, 43])
        self.assertEqual(hkstats_diff.pick(reports, None, "f")["pid"], 43)
        self.assertEqual(hkstats_diff.pick(reports, 41, "f")["fields"]["syscalls_mmap"], 3)
        with self.assertRaises(hkstats_diff.ReportError):
            hkstats_diff.pick(reports, 7, "f")

    def test_no_report_is_an_error(self):
        with self.assertRaises(hkstats_diff.ReportError):
            hkstats_diff.pick(hkstats_diff.parse_reports("nothing here\n"), None, "f")


class DiffTest(unittest.TestCase):
    def setUp(self):
        self.before = hkstats_diff.parse_reports(json.dumps(JSON_BEFORE))[0]
        self.after = hkstats_diff.parse_reports(json.dumps(JSON_AFTER))[0]

    def test_changed_fields_and_classes_only(self):
        d = hkstats_diff.diff(self.before, self.after)
        self.assertEqual([(f["name"], f["delta"]) for f in d["fields"]],
                         [("bytes_in_use", 1048576), ("syscalls_mmap", 2)])
        by_size = {c["block_size"]: c for c in d["classes"]}
        self.assertEqual(sorted(by_size), [64, 1024, 2304])
        self.assertEqual(by_size[64]["blocks_in_use"]["delta"], 2000)
        self.assertEqual(by_size[1024]["blocks_in_use"], {"before": 10, "after": 0, "delta": -10})
        self.assertEqual(by_size[2304]["spans"]["delta"], 1)

    def test_all_keeps_unchanged_rows(self):
        d = hkstats_diff.diff(self.before, self.after, show_all=True)
        self.assertIn("bytes_committed", [f["name"] for f in d["fields"]])

    def test_text_output(self):
        d = hkstats_diff.diff(self.before, self.after)
        out = hkstats_diff.format_text(d, self.before, self.after)
        self.assertIn("bytes_in_use", out)
        self.assertIn("+1048576", out)
        self.assertIn("(1.0 MiB)", out)
        self.assertIn("+50.0%", out)
        self.assertRegex(out, r"\n +64 +1000->3000 \(\+2000\)")
        same = hkstats_diff.format_text(hkstats_diff.diff(self.before, self.before), self.before, self.before)
        self.assertIn("no differences", same)

    def test_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.txt"), os.path.join(d, "b.json")
            with open(a, "w") as f:
                f.write(TEXT)
            with open(b, "w") as f:
                f.write(json.dumps(JSON_AFTER) + "\n")
            buf = io.StringIO()
            with redirect_stdout(buf):
                self.assertEqual(hkstats_diff.main([a, b, "--json"]), 0)
            self.assertEqual(json.loads(buf.getvalue())["fields"][0]["name"], "bytes_in_use")
            self.assertEqual(hkstats_diff.main([a, os.path.join(d, "missing")]), 2)


if __name__ == "__main__":
    unittest.main()
