"""hk_fuzz_target: one fuzz target, three ways to run it.

    hk_fuzz_target(name = "ops", srcs = [...], deps = [...])

defines
    :ops_fuzzer        the libFuzzer binary. Tagged "manual" (gcc cannot link
                       -fsanitize=fuzzer) and "fuzz_target" (tools/fuzz_run.sh
                       finds targets by that tag). Build with --config=fuzz.
    :ops_replay_test   the target linked with replay_main.c instead of
                       libFuzzer, run over fuzz/corpus/ops/: a normal cc_test in
                       every config (gcc default, asan, tsan).
    :ops_crashes_test  (only while fuzz/crashes/ops/ holds inputs) the same
                       over the crashing inputs of open bugs, built with
                       HK_FUZZ_NO_AVOID so the target does not steer around
                       them (fuzz/known_bugs.h). Tagged "manual": it fails
                       until the bugs are fixed.

The corpus directory is passed as a path relative to the runfiles root, where
Bazel runs tests; the dictionary (fuzz/dict/<name>.dict), when present, is for
libFuzzer runs only.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")

FUZZ_COPTS = [
    "-Wall",
    "-Wextra",
]

def hk_fuzz_target(name, srcs, deps, crash_deps = None, size = "small", tags = []):
    """crash_deps: deps for the crashes test, when a dep itself must be built
    with HK_FUZZ_NO_AVOID (defaults to deps)."""
    cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        copts = FUZZ_COPTS,
        linkopts = ["-fsanitize=fuzzer"],
        deps = deps,
        testonly = True,
        tags = ["manual", "fuzz_target"],
    )

    corpus = native.glob(["corpus/%s/**" % name])
    cc_test(
        name = name + "_replay_test",
        size = size,
        srcs = srcs + ["replay_main.c"],
        args = ["fuzz/corpus/" + name],
        copts = FUZZ_COPTS,
        data = corpus,
        deps = deps,
        tags = tags,
    )

    crashes = native.glob(["crashes/%s/**" % name])
    if crashes:
        cc_test(
            name = name + "_crashes_test",
            size = size,
            srcs = srcs + ["replay_main.c"],
            args = [
                "--fork",
                "fuzz/crashes/" + name,
            ],
            copts = FUZZ_COPTS,
            local_defines = ["HK_FUZZ_NO_AVOID"],
            data = crashes,
            deps = crash_deps if crash_deps != None else deps,
            tags = tags + ["manual"],
        )
