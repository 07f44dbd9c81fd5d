/* Size classes: the table malloc's fast path reads (size -> class), each
 * class's block size and how many slots its spans take. Filled once at
 * process init, before any heap exists (the empty heap sends every request
 * to the slow path, which initializes first). Ground floor.
 *
 * 16..128 in steps of 16, then 8 classes per doubling up to 256 KiB: waste
 * beyond the 16-byte alignment granule is under 1/9 of the block. */
#ifndef HAKMEM_CORE_SIZE_CLASS_H
#define HAKMEM_CORE_SIZE_CLASS_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
#define HK_SMALL_MAX 262144u                   /* the largest block a span serves */
#define HK_CLASSES 96
#define HK_SIZE_INDEX(n) (((n) + 15) >> 4)     /* index into hk_class_of_index */

/* Segment geometry the class table is computed for (segment.h uses it too). */
#define HK_SLOT_SHIFT 18                        /* 256 KiB slots */
#define HK_SLOT_SIZE ((size_t)1 << HK_SLOT_SHIFT)
#define HK_SPAN_MIN_BLOCKS 256u                 /* blocks a span holds at least, ... */
#define HK_SPAN_MAX_SLOTS 8u                    /* ... unless that takes more than 8 slots (2 MiB) */
#define HK_SPAN_ONE_SLOT_BLOCKS 128u            /* but one slot wherever it holds this many (up to 2 KiB) */

extern uint8_t hk_class_of_index[HK_SMALL_MAX / 16 + 1];
extern uint32_t hk_class_size[HK_CLASSES];
extern uint8_t hk_class_slots[HK_CLASSES];     /* slots per span of the class */

void hk_size_classes_init(void);
/* The class for an aligned request: a class whose size is a multiple of align
 * (spans start on slot boundaries, so every block of it is aligned), or -1
 * when none fits and the request must go to the arena or a mapping. */
int hk_class_for_aligned(size_t size, size_t align);
HK_HIDDEN_END

#endif
