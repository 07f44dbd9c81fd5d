/* The operation-sequence engine behind ops_fuzzer and policy_fuzzer.
 *
 * An input decodes into operations on a table of slots (malloc, calloc,
 * realloc, aligned allocations, the free variants, usable-size queries). A
 * shadow model remembers, per slot, the block, the size asked for, the usable
 * size hakmem reported, the alignment asked for and the seed of the pattern
 * written into it, and checks every result against it:
 *   - success: non-NULL, aligned as asked (and to 16 bytes always), usable
 *     size covers the request and wastes no more than the size classes allow,
 *     hk_owns() says yes, and the block overlaps no other live block;
 *   - calloc memory reads zero; realloc keeps the old contents up to the
 *     smaller size; a failed realloc leaves the old block as it was;
 *   - failure: NULL with errno ENOMEM (EINVAL for a bad alignment), and only
 *     where failure is allowed (sizes near SIZE_MAX always fail; ordinary ones
 *     fail only while the caller says faults are armed);
 *   - every live block keeps its pattern until it is freed.
 *
 * The engine is single-threaded. A caller adds its own operations (policy
 * events) through ops_hooks. */
#ifndef HAKMEM_FUZZ_OPS_MODEL_H
#define HAKMEM_FUZZ_OPS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_common.h"

typedef struct ops_hooks {
  /* Opcodes past the engine's own go to extra(op, in), op counted from 0. */
  unsigned extra_ops;
  void (*extra)(unsigned op, fi* in);
  /* Nonzero while allocations may fail for reasons other than their size
   * (an armed fault-injecting backend). Such failures must still be NULL +
   * ENOMEM and must leave every live block intact. */
  int (*may_fail)(void);
  /* Called once per input after every slot was freed. */
  void (*end)(void);
} ops_hooks;

/* Runs one input. hooks may be NULL. */
void ops_run(const uint8_t* data, size_t size, const ops_hooks* hooks);

/* Checks every live block's pattern, alignment and usable size. For hooks
 * that just did something to the heap (trim, decommit, a failed refill). */
void ops_verify_all(const char* after);

/* Live blocks in the table right now (for hooks). */
unsigned ops_live_count(void);

#endif
