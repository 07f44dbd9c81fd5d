/* Target 1: operation sequences (malloc, calloc, realloc, reallocarray, the
 * aligned allocations, the free variants, usable size) over a slot table,
 * checked by the shadow model of ops_model.c. Input format: a stream of
 * opcode bytes, each followed by the bytes its operation decodes (slot, size,
 * alignment); see ops_model.c. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/ops_model.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ops_run(data, size, NULL);
  return 0;
}
