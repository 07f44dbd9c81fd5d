#include "alloc/core/segmap.h"

uint8_t hk_segmap[HK_SEGMAP_ENTRIES];

void hk_segmap_set(void* base, size_t size, unsigned kind) {
  uintptr_t first = (uintptr_t)base >> HK_SEGMENT_SHIFT;
  uintptr_t count = (size + HK_SEGMENT_MASK) >> HK_SEGMENT_SHIFT;
  for (uintptr_t i = 0; i < count; i++) {
    unsigned k = (i > 0 && kind == HK_MAP_MAPPING) ? HK_MAP_MAPPING_TAIL : kind;
    __atomic_store_n(&hk_segmap[first + i], (uint8_t)k, __ATOMIC_RELAXED);
  }
}
