/* Segments (segment.c) on their own: slots taken and freed in a set of the
 * test's, commit accounting, the cache of empty segments, abandonment and
 * adoption, where spans go. Linked with the balanced variant (1 s release
 * delay, so nothing cached goes back during the test unless trimmed). */
#include "alloc/core/segment.h"

#include <pthread.h>

#include "alloc/backends/backend.h"
#include "alloc/core/check_testing.h"
#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/init.h"

static uint64_t committed(void) { return hk_stat_read(&hk_stat.committed_bytes); }

static void free_span_slots(hk_segment_set* set, hk_span* s, unsigned slots) {
  /* What a span's descriptor says when it gives its slots back. */
  s->slot_count = (uint8_t)slots;
  s->slot_index = (uint8_t)(s - hk_segment_of(s)->spans);
  s->trimmed_from = 0;
  hk_segment_free_slots(set, s);
}

static void TakingSlotsCommitsThemAndFreeingTheLastSpanCachesTheSegment(void) {
  hk_segment_set set = {.owner_id = 1};
  hk_aged_trim_all();
  uint64_t base = committed();
  uint64_t maps = hk_os_read(mmap);
  hk_segment* seg = hk_segment_acquire(&set);
  HK_EXPECT(seg != NULL && set.head == seg && set.count == 1, "an acquired segment joins the set");
  HK_EXPECT(hk_segmap_kind((uintptr_t)seg + 12345) == HK_MAP_SEGMENT, "the segmap knows it");
  uint64_t header = committed() - base;
  HK_EXPECT(header > 0 && header < HK_SLOT_SIZE, "only the header counts as committed at first");
  bool failed = false;
  hk_span* s = hk_segment_take_slots(&set, 2, false, &failed);
  HK_EXPECT(s != NULL && !failed && hk_segment_of(s) == seg, "two free slots in the owned segment");
  HK_EXPECT(committed() == base + header + 2 * HK_SLOT_SIZE, "taken slots count as committed");
  free_span_slots(&set, s, 2);
  HK_EXPECT(set.head == NULL && set.count == 0, "the segment left the set with its last span");
  HK_EXPECT(hk_stat_read(&hk_stat.segments_cached) >= 1, "and waits in the cache");
  hk_segment* again = hk_segment_acquire(&set);
  HK_EXPECT(again == seg, "the newest cached segment is reused");
  HK_EXPECT(hk_os_read(mmap) == maps + 1, "reuse maps nothing");
  s = hk_segment_take_slots(&set, 1, false, &failed);
  free_span_slots(&set, s, 1);
  hk_aged_trim_all();
  HK_EXPECT(committed() == base, "trimmed: the segment is unmapped and counts nothing");
  HK_EXPECT(hk_segmap_kind((uintptr_t)seg + 12345) == HK_MAP_NONE, "the segmap forgets it before the unmap");
}

static void AFreedSlotIsTakenAgainWhileStillCommitted(void) {
  hk_segment_set set = {.owner_id = 1};
  bool failed = false;
  hk_segment_acquire(&set);
  hk_span* keep = hk_segment_take_slots(&set, 1, false, &failed);
  hk_span* a = hk_segment_take_slots(&set, 1, false, &failed);
  hk_span* b = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(keep && a && b && a != b, "three single slots");
  free_span_slots(&set, a, 1);  /* the segment keeps `keep`, so it stays */
  hk_span* c = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(c == a, "the warm slot is preferred over untouched ones");
  uint64_t before = committed();
  HK_EXPECT(hk_segment_decommit_free_slots(set.head), "free slots are advised");
  HK_EXPECT(committed() == before, "untouched slots were never counted");
  free_span_slots(&set, b, 1);
  free_span_slots(&set, c, 1);
  free_span_slots(&set, keep, 1);
  hk_aged_trim_all();
}

static void counting_walk(hk_segment* seg, void* arg) {
  hk_segment** want = arg;
  if (seg == *want) *want = NULL;
}

static void AbandonedSegmentsAreAdoptedWithTheirSpans(void) {
  hk_segment_set exited = {.owner_id = 7};
  hk_segment_set adopter = {.owner_id = 8};
  bool failed = false;
  hk_segment* seg = hk_segment_acquire(&exited);
  hk_span* s = hk_segment_take_slots(&exited, 1, false, &failed);
  s->in_use = 1;
  s->slot_offset = 0;
  s->slot_count = 1;
  atomic_store(&s->owner, 7);
  uint64_t abandoned = hk_abandoned_segments();
  hk_segment_abandon_all(&exited);
  HK_EXPECT(exited.head == NULL && exited.count == 0, "abandoning empties the set");
  HK_EXPECT(hk_abandoned_segments() == abandoned + 1, "the segment waits to be adopted");
  HK_EXPECT(atomic_load(&s->owner) == 0, "its spans have no owner");
  hk_segment* walked = seg;
  hk_segments_walk(counting_walk, &walked);
  HK_EXPECT(walked == NULL, "the registry still lists it for statistics");
  hk_segment* got = hk_segment_adopt_one(&adopter);
  HK_EXPECT(got == seg && adopter.head == seg && adopter.count == 1, "adopted into the other set");
  HK_EXPECT(hk_abandoned_segments() == abandoned, "and no longer abandoned");
  HK_EXPECT(s->in_use, "its spans are left for the heap floor to file");
  free_span_slots(&adopter, s, 1);
  hk_aged_trim_all();
}

static void ASpanGoesWhereEarlierSpansLeftTheMostResidentBytes(void) {
  hk_segment_set set = {.owner_id = 1};
  bool failed = false;
  hk_segment* seg = hk_segment_acquire(&set);
  hk_span* keep = hk_segment_take_slots(&set, 1, false, &failed);
  hk_span* a = hk_segment_take_slots(&set, 1, false, &failed);
  hk_span* b = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(keep && a && b && a < b, "three single slots, a before b");
  /* a carved one page, b 64 KiB: both slots are committed, b holds more. */
  a->carved_bytes = 100;
  b->carved_bytes = 64 << 10;
  free_span_slots(&set, a, 1);
  free_span_slots(&set, b, 1);
  HK_EXPECT(seg->touched[a->slot_index] == HK_OS_PAGE && seg->touched[b->slot_index] == 64 << 10,
            "a leaving span leaves its carved pages, page-rounded, with its slots");
  hk_span* c = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(c == b, "the next span goes where 64 KiB are resident, not to the lower slot with one page");
  hk_span* d = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(d == a, "then the slot with one page before untouched ones");
  /* Decommitting forgets what was touched. */
  c->carved_bytes = 0;
  free_span_slots(&set, c, 1);
  HK_EXPECT(hk_segment_decommit_free_slots(seg), "free slots are advised");
  HK_EXPECT(seg->touched[c->slot_index] == 0, "a decommitted slot holds nothing resident");
  d->carved_bytes = 0;
  free_span_slots(&set, d, 1);
  free_span_slots(&set, keep, 1);
  hk_aged_trim_all();
}

static void AReusedSegmentsFreeSlotsWaitWithTheAgeTheyHad(void) {
  hk_segment_set set = {.owner_id = 1};
  bool failed = false;
  hk_aged_trim_all();
  hk_segment* seg = hk_segment_acquire(&set);
  hk_span* a = hk_segment_take_slots(&set, 1, false, &failed);
  hk_span* b = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(a && b && hk_segment_of(a) == seg && hk_segment_of(b) == seg, "two slots of one segment");
  unsigned ia = (unsigned)(a - seg->spans), ib = (unsigned)(b - seg->spans);
  hk_clock_set_fake(1000);
  free_span_slots(&set, b, 1);
  HK_EXPECT(((seg->cached_heads >> ib) & 1) && seg->runs[ib].age.since_ms == 1000,
            "b's slot waits in the free-slot cache since it was freed");
  hk_clock_set_fake(1100);
  free_span_slots(&set, a, 1);
  HK_EXPECT(set.head == NULL && seg->cached_heads == 0, "the empty segment waits as a whole");
  hk_clock_set_fake(1200);
  hk_segment* again = hk_segment_acquire_cached(&set);
  HK_EXPECT(again == seg, "and is reused");
  HK_EXPECT(((seg->cached_heads >> ib) & 1) && seg->runs[ib].age.since_ms == 1000,
            "b's committed slot is back in the free-slot cache with the age it had, not the reuse's");
  HK_EXPECT(((seg->cached_heads >> ia) & 1) && seg->runs[ia].age.since_ms == 1100, "a's slot with its own");
  hk_span* c = hk_segment_take_slots(&set, 1, false, &failed);
  HK_EXPECT(c != NULL && ((seg->cached_heads >> (c - seg->spans)) & 1) == 0, "a slot taken leaves the cache");
  free_span_slots(&set, c, 1);
  hk_clock_set_fake(0);
  hk_aged_trim_all();
}

int main(void) {
  hk_ensure_init();
  HK_RUN(TakingSlotsCommitsThemAndFreeingTheLastSpanCachesTheSegment);
  HK_RUN(AFreedSlotIsTakenAgainWhileStillCommitted);
  HK_RUN(AbandonedSegmentsAreAdoptedWithTheirSpans);
  HK_RUN(ASpanGoesWhereEarlierSpansLeftTheMostResidentBytes);
  HK_RUN(AReusedSegmentsFreeSlotsWaitWithTheAgeTheyHad);
  return HK_TEST_RESULT();
}
