"""hakmem variants as build targets.

A variant is the strict core plus one cc_library that defines
`hk_variant_linked` (alloc/policies/policy.h): the file that names the
backend, the release, decommit and prewarm modules, and their parameter
defaults. That file is the one place that lists what a variant links.

    load("//alloc:variants.bzl", "hakmem_variant")

    hakmem_variant(
        name = "lean",
        variant = "//alloc/policies:variant_lean",
    )

stamps out, in the calling package:

    hakmem_lean           cc_library, alwayslink: the program's malloc is hakmem
    hakmem_api_lean       cc_library, alwayslink: only the hk_ functions
    libhakmem_lean.so     for LD_PRELOAD (extra names: shared_libraries)

See README "Variants" and alloc/policies/examples/ for a variant defined
outside //alloc.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library")

# Resolved against this file's repository, so the macro also works when
# loaded from another workspace as @hakmem//alloc:variants.bzl.
_CORE = Label("//alloc/core")
_OVERRIDE = Label("//alloc/core:override")
_NEW_DELETE_PRELOAD = Label("//alloc/core:new_delete_preload")

_SHARED_LINKOPTS = [
    # Bind every symbol at load time: no lazy PLT resolution (which could
    # run inside malloc) once the program starts.
    "-Wl,-z,now",
    "-Wl,-z,relro",
    # A C library: do not pull libstdc++ and libm into every process
    # (about 1 MB of RSS) just because the toolchain lists them.
    "-Wl,--as-needed",
]

def hakmem_variant(name, variant, shared_libraries = None, **kwargs):
    """Defines the library, API-only library and shared object of a variant.

    Args:
      name: the variant's name; targets are hakmem_<name>, hakmem_api_<name>
        and libhakmem_<name>.so.
      variant: label of the cc_library defining hk_variant_linked (it depends
        on the policy modules and the backend it names).
      shared_libraries: names of the LD_PRELOAD objects to build; defaults to
        ["libhakmem_<name>.so"]; [] builds none.
      **kwargs: passed to every target (testonly, visibility, tags, ...).
    """
    lib = "hakmem_" + name
    cc_library(
        name = lib,
        deps = [_CORE, _OVERRIDE, variant],
        alwayslink = True,
        **kwargs
    )
    cc_library(
        name = "hakmem_api_" + name,
        deps = [_CORE, variant],
        alwayslink = True,
        **kwargs
    )
    if shared_libraries == None:
        shared_libraries = ["libhakmem_%s.so" % name]
    for so in shared_libraries:
        cc_binary(
            name = so,
            linkopts = _SHARED_LINKOPTS,
            linkshared = True,
            # Preloaded into C++ programs, the .so's own operator new/delete
            # save the hop through libstdc++'s (README "C++").
            deps = [":" + lib, _NEW_DELETE_PRELOAD],
            **kwargs
        )

# The built-in variants, in the order tables show them (README's
# configuration table, the example service). alloc/BUILD.bazel declares each
# with hakmem_variant(); tools and examples loop over this list, so a new
# variant is one entry here plus its hakmem_variant() call.
HAKMEM_VARIANTS = ["speed", "balanced", "lean"]
