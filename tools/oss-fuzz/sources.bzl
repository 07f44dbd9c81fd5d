"""all_sources: every source and header file the given C/C++ targets are
built from, transitively through deps, as one file set.

The OSS-Fuzz build check compiles hakmem outside Bazel (tools/oss-fuzz/
build.sh), so its test needs the sources themselves, not the libraries.
Collecting them from the fuzz targets' own dependency graph keeps the test's
inputs exact without a hand-kept list: a file added to //alloc/core shows up
here by itself.
"""

_Sources = provider(fields = ["files"])

def _collect_impl(target, ctx):
    direct = []
    for attr in ("srcs", "hdrs", "textual_hdrs"):
        for t in getattr(ctx.rule.attr, attr, []) or []:
            direct.append(t.files)
    deps = []
    for attr in ("deps", "actual"):
        value = getattr(ctx.rule.attr, attr, None)
        if value == None:
            continue
        for d in (value if type(value) == "list" else [value]):
            if _Sources in d:
                deps.append(d[_Sources].files)
    return [_Sources(files = depset(transitive = direct + deps))]

_collect = aspect(
    implementation = _collect_impl,
    attr_aspects = ["deps", "actual"],
)

def _all_sources_impl(ctx):
    files = depset(transitive = [d[_Sources].files for d in ctx.attr.deps])
    # Only this workspace's files (not @com_google_googletest's, say).
    mine = [f for f in files.to_list() if f.owner.workspace_name == ""]
    # As runfiles too: that is what a test's data attribute stages.
    return [DefaultInfo(files = depset(mine), runfiles = ctx.runfiles(files = mine))]

all_sources = rule(
    implementation = _all_sources_impl,
    attrs = {"deps": attr.label_list(aspects = [_collect])},
)
