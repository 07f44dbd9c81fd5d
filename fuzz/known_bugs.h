/* Open hakmem bugs the fuzz targets have found, and how targets steer around
 * them meanwhile.
 *
 * A fuzzer that trips over the same open bug every few seconds finds nothing
 * else, and the replay tests of the normal build must stay green. So each open
 * bug gets a switch here; while it is 1, targets avoid the inputs that trigger
 * it (and say where in a comment). The crashing inputs live in
 * fuzz/crashes/<target>/ and are replayed, with every switch forced to 0, by
 * the manual tests //fuzz:<target>_crashes_test, which fail until the bug is
 * fixed.
 *
 * When a fix lands: set the switch to 0 (or delete it), move the inputs from
 * fuzz/crashes/<target>/ into fuzz/corpus/<target>/, and the normal replay
 * test keeps them fixed. */
#ifndef HAKMEM_FUZZ_KNOWN_BUGS_H
#define HAKMEM_FUZZ_KNOWN_BUGS_H

#if defined(HK_FUZZ_NO_AVOID)
#define HK_BUG_ALIGN_4M 0
#define HK_BUG_ALIGNED_ZERO 0
#else
/* aligned_alloc/posix_memalign/memalign with an alignment of 4 MiB or more
 * returns a pointer that hk_free and hk_malloc_usable_size then reject as
 * "free of an interior pointer" / "invalid pointer" and abort: the user
 * pointer sits `align` bytes into its mapping, which is past the first 4 MiB,
 * where the segmap says HK_MAP_LARGE_TAIL (alloc/core/large.c,
 * hk_large_alloc). Targets keep alignments below 4 MiB while this is open. */
#define HK_BUG_ALIGN_4M 1

/* aligned_alloc/posix_memalign/memalign of 0 bytes with an alignment above
 * HK_SMALL_MAX (32 KiB) returns a pointer one past the end of its mapping (a
 * fresh large mapping of exactly `align` bytes, the user pointer `align`
 * bytes in), with usable size 0. hk_malloc_usable_size, hk_realloc and
 * hk_free_sized on it then report "invalid pointer" and abort
 * (hk_usable_size_checked takes a usable size of 0 for "not a block",
 * alloc/core/alloc.c), and from 8 MiB alignments on hk_owns() says 0 for it.
 * hk_free works. Targets ask for 1 byte instead of 0 in that case while this
 * is open. */
#define HK_BUG_ALIGNED_ZERO 1
#endif

#endif
