/* Size classes: the table malloc's fast path reads, and the arithmetic for
 * aligned requests. Filled once at process init (before any heap exists, so the
 * fast path cannot read it early: the empty heap sends everything to the slow
 * path, which initializes first). */
#include "alloc/core/size_class.h"

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
    /* One 256 KiB slot for every class up to 2 KiB (256 blocks of 1 KiB,
     * 128 of 2 KiB); above, at least 256 blocks in at most 8 slots (2 MiB:
     * 256 blocks at 8 KiB, 64 at 32 KiB, 8 at 256 KiB). The fewer spans a
     * class has, the rarer malloc's move to the next span is when blocks are
     * freed in random order; but free() finds a single-slot span's descriptor
     * by arithmetic alone and a multi-slot one through a pointer, which
     * outweighs span size down to 128 blocks. Memory is carved one page at a
     * time, so a larger span costs address space, not RSS (the measurements
     * behind these bounds are in bench/RESULTS.md's history). */
    uint32_t size = hk_class_size[c];
    uint32_t slots = (uint32_t)((HK_SPAN_MIN_BLOCKS * size + HK_SLOT_SIZE - 1) / HK_SLOT_SIZE);
    if (HK_SLOT_SIZE / size >= HK_SPAN_ONE_SLOT_BLOCKS) {
      slots = 1;
    } else if (slots > HK_SPAN_MAX_SLOTS) {
      /* Capped: the most slots whose tail past the last whole block stays
       * under 1/8 of the span, keeping at least two blocks (a 176 KiB class
       * takes 6 slots for two blocks rather than 8 with 160 KiB unused). */
      uint32_t least = (uint32_t)((2u * size + HK_SLOT_SIZE - 1) / HK_SLOT_SIZE);
      slots = HK_SPAN_MAX_SLOTS;
      while (slots > least && ((slots << HK_SLOT_SHIFT) % size) * 8 >= (slots << HK_SLOT_SHIFT)) slots--;
    }
    hk_class_slots[c] = (uint8_t)slots;  /* >= 1: every class is at least 16 bytes */
  }
  unsigned c = 0;
  for (unsigned i = 0; i <= HK_SMALL_MAX / 16; i++) {
    size_t size = (size_t)i * 16;
    while (hk_class_size[c] < size) c++;
    hk_class_of_index[i] = (uint8_t)c;
  }
}

int hk_class_for_aligned(size_t size, size_t align) {
  /* Spans start on slot boundaries: no class can promise more. */
  if (size > HK_SMALL_MAX || align > HK_SLOT_SIZE) return -1;
  if (size < align) size = align;
  for (unsigned c = hk_class_of_index[HK_SIZE_INDEX(size)]; c < HK_CLASSES; c++) {
    if ((hk_class_size[c] & (align - 1)) == 0) return (int)c;
  }
  return -1;
}
