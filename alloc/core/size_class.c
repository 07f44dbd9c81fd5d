/* Size classes: the table malloc's fast path reads, and the arithmetic for
 * aligned requests. Filled once at process init (before any heap exists, so the
 * fast path cannot read it early: the empty heap sends everything to the slow
 * path, which initializes first). */
#include "alloc/core/internal.h"

uint8_t hk_class_of_index[HK_SMALL_MAX / 16 + 1];
uint32_t hk_class_size[HK_CLASSES];
uint8_t hk_class_slots[HK_CLASSES];

void hk_size_classes_init(void) {
  unsigned n = 0;
  for (uint32_t s = 16; s <= 128; s += 16) hk_class_size[n++] = s;
  /* Eight classes per doubling above 128: the step is 1/8 of the lower bound,
   * a multiple of 16 so every block stays 16-byte aligned. */
  for (uint32_t base = 128; base < HK_SMALL_MAX; base *= 2) {
    for (uint32_t k = 1; k <= 8; k++) hk_class_size[n++] = base + k * (base / 8);
  }
  for (unsigned c = 0; c < HK_CLASSES; c++) {
    /* At least 16 blocks per span: tail waste stays under 1/16 of the span,
     * and a span of 8-32 KiB blocks does not empty and refill every few
     * operations (8 blocks per span cost 14% at 8 KiB). One slot (64 KiB)
     * for every class up to 4 KiB, 8 slots (512 KiB) for 32 KiB. Memory is
     * carved lazily, so a larger span costs address space, not RSS. */
    uint32_t slots = (uint32_t)((16u * hk_class_size[c] + HK_SLOT_SIZE - 1) / HK_SLOT_SIZE);
    hk_class_slots[c] = (uint8_t)(slots ? slots : 1);
  }
  unsigned c = 0;
  for (unsigned i = 0; i <= HK_SMALL_MAX / 16; i++) {
    size_t size = (size_t)i * 16;
    while (hk_class_size[c] < size) c++;
    hk_class_of_index[i] = (uint8_t)c;
  }
}

int hk_class_for_aligned(size_t size, size_t align) {
  if (size > HK_SMALL_MAX || align > HK_SMALL_MAX) return -1;
  if (size < align) size = align;
  for (unsigned c = hk_class_of_index[HK_SIZE_INDEX(size)]; c < HK_CLASSES; c++) {
    if ((hk_class_size[c] & (align - 1)) == 0) return (int)c;
  }
  return -1;
}
