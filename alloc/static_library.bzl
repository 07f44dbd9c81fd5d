"""One static archive from a cc_library and everything it links.

Bazel 4.2 has no cc_static_library: each cc_library makes its own .a, and a
non-Bazel user would need all of them, in order, with --whole-archive. This
rule walks the dependencies' CcInfo linker inputs and merges their archives
into one with `ar` (an MRI script), preferring the position-independent
objects so the archive also links into shared libraries and PIE programs.

    hakmem_static_library(name = "libhakmem.a", deps = [":hakmem"])

Objects keep their original names inside the merged archive; archives allow
duplicates, and the linker only pulls members by symbol.
"""

def _archives(deps):
    seen = {}
    out = []
    for dep in deps:
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            for lib in linker_input.libraries:
                a = lib.pic_static_library or lib.static_library
                if a != None and a.path not in seen:
                    seen[a.path] = True
                    out.append(a)
    return out

def _impl(ctx):
    archives = _archives(ctx.attr.deps)
    if not archives:
        fail("hakmem_static_library: no static archive among the dependencies of %s" % ctx.label)
    out = ctx.actions.declare_file(ctx.attr.name)
    script = "CREATE %s\n" % out.path
    script += "".join(["ADDLIB %s\n" % a.path for a in archives])
    script += "SAVE\nEND\n"
    ctx.actions.run_shell(
        inputs = archives,
        outputs = [out],
        command = "printf '%%s' '%s' | ar -M && ranlib %s" % (script, out.path),
        mnemonic = "HakmemArchive",
        progress_message = "Merging %d archives into %s" % (len(archives), out.short_path),
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

hakmem_static_library = rule(
    implementation = _impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
    },
    doc = "Merges the static archives of deps (transitively) into one .a named after the target.",
)
