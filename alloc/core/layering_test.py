#!/usr/bin/env python3
"""Keeps the core's floors true: no object of the core calls a module on its
own floor or above it, so there is no call cycle.

Reads the symbols each object file of the core's archives defines and uses
(`nm -A` output, made by the core_symbols genrule), builds "module A references a symbol module B defines", and fails on
every edge that does not go down a floor, and on any object whose module is
not placed on a floor (a new module must be placed here and in README
"Design"). Usage: layering_test.py NM_OUTPUT
"""
import os
import sys

# Lowest first. A module may call modules of lower floors only.
FLOORS = [
    ("hot words", ["hot"]),
    ("writing", ["print"]),
    ("ground", ["lock", "clock", "counters", "secret", "size_class"]),
    ("options", ["options"]),
    ("errors", ["error"]),
    ("os", ["os", "segmap", "foreign"]),
    ("aged cache", ["aged"]),
    ("reclaimer", ["reclaim"]),
    ("memory", ["segment", "arena", "mapping"]),
    ("checks", ["checked"]),
    ("spans", ["span"]),
    ("sampling", ["prof"]),
    ("heaps", ["heap"]),
    ("threads", ["thread"]),
    ("free", ["free"]),
    ("init", ["init"]),
    ("entry points", ["alloc", "trim", "stats"]),
    ("control", ["control"]),
    ("libc names", ["override", "new_delete"]),
]
FLOOR_OF = {m: i for i, (_, mods) in enumerate(FLOORS) for m in mods}


def module_of(member):
    # "segment.pic.o" -> "segment"
    return os.path.basename(member).split(".")[0]


def read_symbols(text):
    """{module: (defined symbols, undefined symbols)} from `nm -A` lines."""
    mods = {}
    for line in text.splitlines():
        # "lib.a:member.o:0000 T name" or "lib.a:member.o:         U name"
        head, _, sym = line.rpartition(" ")
        parts = head.split(":")
        if len(parts) < 3 or not head.split():
            continue
        member, kind = parts[-2], head.split()[-1]
        defs, uses = mods.setdefault(module_of(member), (set(), set()))
        if kind == "U":
            uses.add(sym)
        elif kind.isupper():
            defs.add(sym)
    return mods


def violations(mods):
    """Every reference that does not go down a floor, as readable lines."""
    definer = {}
    for m, (defs, _) in mods.items():
        for s in defs:
            definer[s] = m
    found = []
    for m in sorted(mods):
        if m not in FLOOR_OF:
            found.append("%s: not on any floor (add it to FLOORS and README 'Design')" % m)
            continue
        for s in sorted(mods[m][1]):
            d = definer.get(s)
            if d is None or d == m or d not in FLOOR_OF:
                continue
            if FLOOR_OF[d] >= FLOOR_OF[m]:
                found.append("%s (floor '%s') calls %s of %s (floor '%s'): calls must go down" %
                             (m, FLOORS[FLOOR_OF[m]][0], s, d, FLOORS[FLOOR_OF[d]][0]))
    return found


def self_check():
    """The checker itself must catch an upward call and a same-floor call."""
    fake = {
        "segment": ({"hk_segment_take_slots"}, {"hk_heap_alloc_slow", "hk_arena_alloc"}),
        "heap": ({"hk_heap_alloc_slow"}, {"hk_segment_take_slots"}),
        "arena": ({"hk_arena_alloc"}, set()),
    }
    found = violations(fake)
    assert any("segment" in v and "hk_heap_alloc_slow" in v for v in found), found
    assert any("segment" in v and "hk_arena_alloc" in v for v in found), found
    assert not any(v.startswith("heap") for v in found), found


def main(args):
    self_check()
    if len(args) != 1:
        print("usage: layering_test.py NM_OUTPUT")
        return 2
    with open(args[0]) as f:
        mods = read_symbols(f.read())
    if "segment" not in mods or "alloc" not in mods:
        print("layering_test: the core's objects were not found in %s" % args[0])
        return 1
    found = violations(mods)
    for v in found:
        print("layering_test: " + v)
    print("layering_test: %d modules on %d floors, %d violations" % (len(mods), len(FLOORS), len(found)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
