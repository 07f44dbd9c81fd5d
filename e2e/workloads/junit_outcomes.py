"""Prints one line per test case of a regrtest junit XML file: its name and
outcome (ok, skipped, failure, error), and a count per outcome."""
import collections
import sys
import xml.etree.ElementTree as ET

counts = collections.Counter()
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    outcome = "ok"
    for kind in ("error", "failure", "skipped"):
        if case.find(kind) is not None:
            outcome = kind
            break
    counts[outcome] += 1
    print(case.get("name"), outcome)
print("outcomes:", ", ".join("%s %d" % kv for kv in sorted(counts.items())))
