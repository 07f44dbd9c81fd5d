/* An allocation made before hakmem has initialized gets a block of the size
 * asked for. It happens in real programs: under LD_PRELOAD the constructor of
 * a library the program links (libselinux's, which opens a file, in ls and
 * tar) may run before hakmem's own constructor, and hakmem's class table is
 * only filled at initialization. Here a constructor of a higher priority
 * than hakmem's makes the process's first allocations. */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "alloc/core/check_testing.h"
#include "alloc/include/hakmem.h"

/* init.c's state (0 none, 1 running, 2 done): read only to prove that the
 * constructor below really ran first, or this test would prove nothing. */
extern _Atomic int hk_init_state;

enum { kFirst = 472, kSmall = 16, kBlocks = 64 };

static int state_at_first_call = -1;
static size_t first_usable;
static unsigned char* first;
static size_t calloc_usable;

__attribute__((constructor(101))) static void allocate_before_hakmem_init(void) {
  state_at_first_call = atomic_load(&hk_init_state);
  first = hk_malloc(kFirst);
  if (first == NULL) return;
  first_usable = hk_malloc_usable_size(first);
  /* Writing the whole block: were it a 16-byte block, this would run over
   * its free neighbours' links, and the next pop of that class would abort
   * with "corrupted free list". */
  memset(first, 0xab, kFirst);
  void* zeroed = hk_calloc(1, 3000);
  calloc_usable = zeroed != NULL ? hk_malloc_usable_size(zeroed) : 0;
  hk_free(zeroed);
}

static void TheFirstAllocationRanBeforeInit(void) {
  HK_EXPECT(state_at_first_call == 0,
            "the test's constructor ran before hakmem initialized (else it proves nothing)");
}

static void AnAllocationBeforeInitGetsItsSize(void) {
  HK_EXPECT(first != NULL, "malloc before init returns memory");
  HK_EXPECT(first_usable >= kFirst, "the block holds the 472 bytes asked for, not a 16-byte class block");
  HK_EXPECT(calloc_usable >= 3000, "calloc right after it gets its size too");
}

static void BlocksNextToItStayIntact(void) {
  void* small[kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    small[i] = hk_malloc(kSmall);
    HK_EXPECT(small[i] != NULL, "16-byte blocks after the early one pop without a corrupted list");
    if (small[i] != NULL) memset(small[i], i, kSmall);
  }
  int intact = 1;
  for (int i = 0; i < kFirst; i++) intact &= first[i] == 0xab;
  HK_EXPECT(intact, "the early block keeps its bytes while its class neighbours are handed out");
  for (int i = 0; i < kBlocks; i++) hk_free(small[i]);
  hk_free(first);
}

int main(void) {
  HK_RUN(TheFirstAllocationRanBeforeInit);
  HK_RUN(AnAllocationBeforeInitGetsItsSize);
  HK_RUN(BlocksNextToItStayIntact);
  return HK_TEST_RESULT();
}
