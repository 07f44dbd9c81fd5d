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
/* No open bugs. Fixed so far (inputs kept in corpus/ops/regress-*):
 * alignments of 4 MiB or more returned a block free() rejected (now ENOMEM),
 * and zero-byte requests with an alignment above 32 KiB returned a block of
 * usable size 0 (now a 1-byte block). A new open bug gets a switch here set
 * to 1 and its crashing input in crashes/<target>/. */
#define HK_BUG_ALIGN_4M 0
#define HK_BUG_ALIGNED_ZERO 0
#endif

#endif
