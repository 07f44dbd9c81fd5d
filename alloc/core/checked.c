/* Checked builds (--config=checked, HAKMEM_CHECKED=1): heavier checks on top
 * of the default ones. Freed blocks are poisoned; malloc verifies the poison,
 * the block's free-list link and its tag before handing a block out,
 * so a write after free is reported when the block is reused instead of
 * silently corrupting the next owner or steering malloc to a forged address.
 * In default builds these functions exist but are never called. */
#include <stdint.h>
#include <string.h>

#include "alloc/core/annotate.h"
#include "alloc/core/error.h"
#include "alloc/core/span.h"

#define HK_POISON 0xDB

void hk_checked_free(hk_span* s, hk_block* b) {
  if (s->block_size <= sizeof(hk_block)) return;
  uint8_t* body = (uint8_t*)b + sizeof(hk_block);
  size_t n = s->block_size - sizeof(hk_block);
  HK_VG_BODY_OPEN(body, n);
  memset(body, HK_POISON, n);
  HK_VG_BODY_CLOSE(body, n);
}

void hk_checked_pop(hk_span* s, hk_block* b, hk_block* next) {
  if (next != NULL) {
    uintptr_t off = (uintptr_t)next - s->start;
    if (off >= s->carved_bytes || off % s->block_size != 0)
      hk_fatal("write after free (free-list link overwritten)", b, "malloc");
  }
  /* The link is a block of the span: the tag was written, or the link
   * moved to another block. */
  if (!hk_block_is_free(b, hk_free_tag(b)))
    hk_fatal("write after free (free-list link or tag overwritten)", b, "malloc");
  if (s->block_size <= sizeof(hk_block)) return;
  const uint8_t* body = (const uint8_t*)b + sizeof(hk_block);
  size_t n = s->block_size - sizeof(hk_block);
  HK_VG_BODY_OPEN(body, n);
  for (size_t i = 0; i < n; i++) {
    if (body[i] != HK_POISON) hk_fatal("write after free (freed block modified)", b, "malloc");
  }
}
