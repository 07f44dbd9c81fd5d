/* Warm malloc/free loops for instruction counting under callgrind.
 * fastpath_budget_test.sh runs each at two lengths and takes the difference,
 * which cancels start-up costs.
 *   fastpath_ir <iterations>            each iteration frees one block of a
 *       256-slot working set and allocates a new one of 16..527 bytes, so
 *       (after the first 256) it is exactly one malloc and one free
 *   fastpath_ir <iterations> pingpong   each iteration mallocs one block and
 *       frees it again, nothing else of its class live: the free empties the
 *       class's span every time */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
  if (argc > 2 && strcmp(argv[2], "pingpong") == 0) {
    for (unsigned long i = 0; i < n; i++) {
      char* volatile p = malloc(200);
      *p = 1;
      free(p);
    }
    return 0;
  }
  static void* slots[256];
  uint32_t x = 2463534242u;
  for (unsigned long i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    unsigned idx = i & 255;
    free(slots[idx]);
    slots[idx] = malloc(16 + (x & 511));
    *(volatile char*)slots[idx] = 1;
  }
  for (unsigned i = 0; i < 256; i++) free(slots[i]);
  return 0;
}
