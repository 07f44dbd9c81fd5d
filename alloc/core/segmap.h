/* The segment map: one byte per 4 MiB of address space saying what hakmem
 * has there (nothing, a segment, a piece of an arena chunk, the head or a
 * later piece of a big mapping). It is how the core knows a pointer is its
 * own before reading any memory near it: free() of a foreign pointer reads
 * one byte of this table and nothing else. OS floor. */
#ifndef HAKMEM_CORE_SEGMAP_H
#define HAKMEM_CORE_SEGMAP_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
/* The map's granule: a segment's size and alignment, and the alignment of
 * arena chunks and big mappings, so each granule holds one kind of thing. */
#define HK_SEGMENT_SHIFT 22
#define HK_SEGMENT_SIZE ((size_t)1 << HK_SEGMENT_SHIFT)
#define HK_SEGMENT_MASK (HK_SEGMENT_SIZE - 1)

/* User address space on x86-64 / aarch64 Linux is below 2^47 (4-level
 * paging); the map covers exactly that. A pointer above it is never ours. */
#define HK_ADDRESS_BITS 47
#define HK_SEGMAP_ENTRIES ((size_t)1 << (HK_ADDRESS_BITS - HK_SEGMENT_SHIFT))

enum {
  HK_MAP_NONE = 0,        /* not hakmem's */
  HK_MAP_SEGMENT = 1,     /* a small-block segment */
  HK_MAP_MAPPING = 2,     /* first 4 MiB of a big mapping: its header at the base */
  HK_MAP_MAPPING_TAIL = 3, /* later 4 MiB pieces of a big mapping */
  HK_MAP_ARENA = 4,       /* a 4 MiB piece of an arena chunk: header at the chunk boundary below */
};
extern uint8_t hk_segmap[HK_SEGMAP_ENTRIES];

HK_INLINE unsigned hk_segmap_kind(uintptr_t a) {
  /* One shift serves both the bound and the index. */
  uintptr_t i = a >> HK_SEGMENT_SHIFT;
  if (hk_unlikely(i >= HK_SEGMAP_ENTRIES)) return HK_MAP_NONE;
  return __atomic_load_n(&hk_segmap[i], __ATOMIC_RELAXED);
}
/* Marks [base, base+size) as kind; for HK_MAP_MAPPING every granule past the
 * first is marked HK_MAP_MAPPING_TAIL. Clear a range (HK_MAP_NONE) before it
 * is unmapped, so free() stops trusting it first. */
void hk_segmap_set(void* base, size_t size, unsigned kind);
HK_HIDDEN_END

#endif
