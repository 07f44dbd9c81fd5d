#!/usr/bin/env python3
"""What each variant does with memory, measured from outside the allocator:
RSS from /proc/self/statm and smaps_rollup, page faults from getrusage, and
hakmem's own counters, for the probe program under LD_PRELOAD of each
variant's shared object.

- lean returns a freed 256 MB burst of mixed small and large blocks to within
  its resident target at once, and unmaps what it cached within its delay even
  though the program stopped allocating; speed keeps the burst resident and
  allocates it again without page faults, faster;
- MADV_FREE and MADV_DONTNEED show in the backend counters and in RSS;
- prewarm saves a fresh thread's first allocations their page faults and
  costs no more resident memory than its budget.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_lib import probe  # noqa: E402

MB = 1024  # kB
BURST_MB = 256


class BurstTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Lean's release delay is 100 ms; wait 2.5x that before the late free.
        cls.lean = probe("burst", BURST_MB, 250, variant="lean")
        cls.speed = probe("burst", BURST_MB, 250, variant="speed")

    def test_lean_variant_returns_burst_within_its_resident_target_after_its_delay(self):
        r = self.lean
        self.assertGreater(r["peak_kb"] - r["rss0_kb"], 0.9 * BURST_MB * MB, "the burst was not resident: %s" % r)
        # 250 ms after the free (lean's delay is 100 ms): target 16 MB, plus
        # what stays live (current spans, headers) and the page tables of the
        # 256 MB just touched.
        kept = r["waited_kb"] - r["rss0_kb"]
        self.assertLess(kept, 16 * MB + 8 * MB,
                        "lean kept %d kB resident after freeing the burst; its target is 16 MB" % kept)

    def test_lean_variant_purges_down_to_its_target_within_the_delay_without_more_allocations(self):
        r = self.lean
        self.assertGreater(r["freed_cached_kb"], 0, "nothing was cached: the delay was not exercised")
        # After the delay one free (no allocation) ran the release clock: what
        # the burst left went back down to the 16 MB resident target.
        # Committed bytes count whole slots of the spans lean keeps (a class's
        # emptied current span of one slot), far more than they hold
        # resident: RSS is what the target is about.
        self.assertLess(r["waited_kb"] - r["rss0_kb"], 16 * MB,
                        "lean still holds %d kB more than before the burst after twice the 100 ms delay; "
                        "its target is 16 MB" % (r["waited_kb"] - r["rss0_kb"]))
        self.assertLess(r["waited_cached_kb"], r["freed_cached_kb"], "nothing went back after the delay: %s" % r)
        self.assertLess(r["waited_kb"] - r["rss0_kb"], 16 * MB + 8 * MB)

    def test_speed_variant_keeps_the_burst_and_reallocates_it_faster(self):
        s, l = self.speed, self.lean
        self.assertGreater(s["freed_kb"] - s["rss0_kb"], 0.8 * BURST_MB * MB,
                           "speed gave back memory it should keep: %s" % s)
        self.assertEqual(s["freed_madvise"], 0, "speed must never decommit")
        # Lean faults every page in again; speed reuses resident memory.
        self.assertLess(s["again_minflt"] * 10, l["again_minflt"],
                        "speed took %d page faults to reallocate the burst, lean %d"
                        % (s["again_minflt"], l["again_minflt"]))
        # CPU time, not wall time: other processes on the machine must not decide it.
        self.assertLess(s["again_cpu_ms"], l["again_cpu_ms"],
                        "speed (%.1f ms of CPU) was not faster than lean (%.1f ms) at reallocating the burst"
                        % (s["again_cpu_ms"], l["again_cpu_ms"]))


class DecommitModeTest(unittest.TestCase):
    """balanced with no delay and target 0, so freed memory goes back at
    once: free slots decommitted in the chosen mode (arena runs always with
    MADV_DONTNEED), empty segments and big mappings unmapped."""

    def burst(self, mode):
        return probe("burst", 64, 0, variant="balanced", HAKMEM_DECOMMIT=mode, HAKMEM_RESIDENT_TARGET_MB=0,
                     HAKMEM_RELEASE_DELAY_MS=0)

    def test_madv_dontneed_drops_rss_at_once(self):
        r = self.burst("dontneed")
        self.assertGreater(r["freed_madvise_dontneed"], 0)
        self.assertEqual(r["freed_madvise_free"], 0)
        self.assertLess(r["freed_kb"] - r["rss0_kb"], 8 * MB, "RSS did not drop after MADV_DONTNEED: %s" % r)
        self.assertLess(r["lazyfree_kb"], 1 * MB)

    def test_madv_free_leaves_pages_for_the_kernel_to_reclaim_lazily(self):
        r, d = self.burst("free"), self.burst("dontneed")
        self.assertGreater(r["freed_madvise_free"], 0)
        # Without memory pressure the pages stay, counted in RSS and marked lazily freeable.
        self.assertGreater(r["lazyfree_kb"], 0, "smaps shows no LazyFree pages: %s" % r)
        self.assertGreater(r["freed_kb"], d["freed_kb"], "MADV_FREE pages should still count in RSS")

    def test_off_keeps_free_slots_resident(self):
        r = self.burst("off")
        self.assertEqual(r["freed_madvise_free"], 0)
        self.assertEqual(r["lazyfree_kb"], 0)


class PrewarmTest(unittest.TestCase):
    def test_prewarm_saves_first_allocations_page_faults(self):
        off = probe("prewarm", variant="speed", HAKMEM_PREWARM_KB=0)
        on = probe("prewarm", variant="speed")
        self.assertGreaterEqual(off["first_faults"], 7, "without prewarm the hot classes should fault: %s" % off)
        self.assertLess(on["first_faults"], off["first_faults"] - 5,
                        "prewarm did not save page faults: %d with, %d without"
                        % (on["first_faults"], off["first_faults"]))

    def test_prewarm_costs_at_most_its_budget(self):
        off = probe("prewarm", variant="speed", HAKMEM_PREWARM_KB=0)
        for budget_kb in (8, 64):
            on = probe("prewarm", variant="speed", HAKMEM_PREWARM_KB=budget_kb)
            cost = on["create_rss_kb"] - off["create_rss_kb"]
            self.assertLessEqual(cost, budget_kb,
                                 "prewarm with a %d kB budget made %d kB resident" % (budget_kb, cost))
            self.assertGreater(on["create_faults"], off["create_faults"], "prewarm faulted nothing in")


if __name__ == "__main__":
    unittest.main(verbosity=2)
