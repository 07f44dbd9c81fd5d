/* The sampling heap profiler (HAKMEM_PROF_SAMPLE, hk_prof_dump): which call
 * stacks hold the memory that is live now, estimated from a sample of the
 * allocations, written in the gperftools heap profile format pprof reads.
 *
 * Sampling. Every thread keeps, per size class (and one for blocks above the
 * classes), a countdown of bytes drawn from an exponential distribution of
 * mean HAKMEM_PROF_SAMPLE: the allocation whose bytes take it to zero is
 * sampled, so every byte has the same chance whatever the block sizes (per
 * class countdowns are independent Poisson processes of the same rate, which
 * together are one). malloc's fast path counts nothing; instead, while
 * sampling is on, the span it pops from is a proxy: a descriptor of this
 * thread's that holds a batch of blocks taken off the real span's free list,
 * as many as the countdown allows, charged to the countdown when handed
 * over. Frees still go to the real span (free() finds it by address), so a
 * batch only shrinks. Its last block's link ends the list, so the pop
 * after it goes to the far path (hk_prof_pop_far): the next batch, the
 * real span's whole free list, is taken there. Only a due sample, a
 * span to carve or to change goes to the slow path; a batch that would
 * cross the countdown is cut where it ends (a walk of its links). Nothing
 * is added to either fast path, and with sampling off nothing at all
 * changes.
 *
 * Sampled blocks. A sampled small block comes from a span the profiler owns
 * (owner HK_PROF_OWNER, no thread's id), so free() of it takes the remote
 * path, where one compare sends it here; big blocks (arena, mappings) are
 * looked up in the profiler's table on their slow free path, only while any
 * sampled big block is live. Each sampled block records its call stack (a
 * frame-pointer walk bounded by the thread's stack, no allocation) and its
 * size under one lock, taken only for a sample, a sampled block's free
 * and a dump.
 *
 * Per-thread counters (HAKMEM_THREAD_STATS, hk_thread_stats) use the same
 * proxies: a counting thread's current spans are proxies (with sampling
 * off, batches bounded by the span's free blocks alone), so its
 * allocations are counted per batch; its frees are sent off the fast path
 * by an owner tag on its spans (HK_COUNT_OWNER_BIT below).
 *
 * Floor: between spans and heaps. It calls spans, segments, the OS floor and
 * the ground; heap.c calls it (hk_prof_real, hk_prof_unwrap, hk_prof_wrap)
 * where it changes a class's current span, free.c on the remote path,
 * alloc.c on the allocation slow paths, thread.c at thread exit and init.c
 * around fork. */
#ifndef HAKMEM_CORE_PROF_H
#define HAKMEM_CORE_PROF_H

#include "alloc/core/base.h"
#include "alloc/core/lock.h"
#include "alloc/core/options.h"
#include "alloc/core/span.h"

HK_HIDDEN_BEGIN
/* hk_span.in_use of a proxy (real descriptors hold 0 or 1). */
#define HK_PROF_PROXY 0x50u
/* hk_span.owner of the profiler's spans: never a thread pointer. */
#define HK_PROF_OWNER ((uintptr_t)1)
/* Deepest stack recorded. */
#define HK_PROF_DEPTH 48

/* hk_span.owner of the spans of a thread that counts its bytes
 * (HAKMEM_THREAD_STATS): its thread id with this bit set, never equal to
 * any hk_thread_id() (thread pointers are 16-byte aligned), so free()'s
 * fast path sends every free into them to hk_free_remote, which knows
 * them for the thread's own, counts the block and frees it locally. */
#define HK_COUNT_OWNER_BIT ((uintptr_t)2)

/* Per-thread counters (HAKMEM_THREAD_STATS, hk_thread_stats). Allocations
 * are counted by batch: a proxy's batch is added to `allocated` when it is
 * handed over and what it did not hand out taken off when it comes back,
 * so at any moment the thread's allocated bytes are `allocated` less what
 * its proxies still hold (hk_prof_batch_left_bytes); blocks served outside
 * a batch (the slow paths, big blocks) are added where they are served.
 * Frees are counted on the paths the owner tag above sends them to.
 * Usable bytes (malloc_usable_size), not requested ones. Owner-written;
 * `allocated` wraps while the thread is not counting (only differences are
 * read). */
typedef struct hk_thread_counts {
  uint64_t allocated;
  uint64_t freed;
  bool on;  /* this thread counts: its spans carry the owner tag */
} hk_thread_counts;
extern HK_TLS hk_thread_counts hk_tcounts;

/* HAKMEM_THREAD_STATS differs from what this thread does: the next slow
 * path switches it (hk_heap_count_sync). */
HK_INLINE bool hk_count_changed(void) {
  return (__atomic_load_n(&hk_options.thread_stats, __ATOMIC_RELAXED) != 0) != hk_tcounts.on;
}
/* What the spans of the calling thread's new heap hold as owner. */
HK_INLINE uintptr_t hk_count_owner_id(void) {
  return hk_thread_id() | (hk_tcounts.on ? HK_COUNT_OWNER_BIT : 0);
}
/* Bytes the calling thread's proxies hold, not yet handed out. */
uint64_t hk_prof_batch_left_bytes(void);
/* Makes this thread's profiler state (proxies), if it has none: false when
 * it cannot be mapped. */
bool hk_prof_thread_ready(void);

/* Mean bytes between samples; 0: off. Written by hk_prof_configure. */
extern _Atomic uint64_t hk_prof_rate;
/* Sampled blocks now live in the arena or a mapping: their frees look in
 * the table only while this is not 0. */
extern _Atomic uint64_t hk_prof_big_live;
/* This thread has proxies (sampling is or was on here). */
extern HK_TLS void* hk_prof_tls;

HK_INLINE bool hk_prof_is_proxy(const hk_span* s) { return s->in_use == HK_PROF_PROXY; }
/* The span a current-span slot stands for: the proxy's real span, or itself. */
HK_INLINE hk_span* hk_prof_real(hk_span* s) { return hk_prof_is_proxy(s) ? s->multi_head : s; }
/* Sampling is on, or this thread still has proxies to take down (a thread
 * that counts has proxies). */
HK_INLINE bool hk_prof_active(void) {
  return atomic_load_explicit(&hk_prof_rate, memory_order_relaxed) != 0 || hk_prof_tls != NULL;
}
/* Current spans are to be proxies: sampling is on or this thread counts. */
HK_INLINE bool hk_prof_wanted(void) {
  return atomic_load_explicit(&hk_prof_rate, memory_order_relaxed) != 0 || hk_tcounts.on;
}

/* Blocks on s's free list: carved, less those handed out (`used` holds
 * handed-out blocks, remote frees not yet collected and the pin). The
 * carved count without a divide: div_magic is ceil(2^40 / size) << 24
 * (span.c), and for carved_bytes <= 2 MiB and size <= 256 KiB the high
 * word of carved_bytes * div_magic is exactly carved_bytes / size (the
 * rounding up adds less than 2^21 / 2^40, below the 1 / size a quotient
 * needs to change). */
HK_INLINE uint32_t hk_prof_free_blocks(const hk_span* s) {
  uint32_t carved = (uint32_t)(((unsigned __int128)s->carved_bytes * s->div_magic) >> 64);
  uint32_t out = (s->used & ~HK_USED_FULL) - s->pinned;
  return carved > out ? carved - out : 0;
}
/* True when nfree free blocks of this size make a batch too short to pay
 * for the slow path that refills it (heap.c then carves more). */
bool hk_prof_batch_short(uint32_t nfree, uint32_t block_size);
/* The proxy in *slot is empty (a miss while sampling): a new batch from
 * the real span's free list, as much of it as stays below the countdown,
 * and this allocation gets its first block: the common refill, without the
 * heap's slow path. NULL: the caller takes the general path (a sample is
 * due, the span needs carving or has no free block, the rate changed). */
void* hk_prof_rebatch(hk_span** slot);
/* The same batch, without the pop: true when *slot is an empty proxy that
 * got one (after a sample, its class's next allocations stay fast). */
bool hk_prof_refill(hk_span** slot);
/* malloc's far path on the proxy in *slot: an empty proxy takes its next
 * batch and pops it (hk_prof_rebatch), so a batch costs one trip off the
 * fast path; a head whose words are not a free block's is reported
 * (hk_span_pop_far). NULL: the slow path. */
void* hk_prof_pop_far(hk_span** slot);

/* Takes the proxy out of a heap's current-span slot: the blocks its batch
 * did not hand out go back to the real span (and to the countdown). Returns
 * the real span, which the slot holds again. Owner thread, slow paths. */
hk_span* hk_prof_unwrap(hk_span** slot);
/* While sampling is on or the thread counts: puts a proxy in the slot with a batch from the real
 * span's free list, leaving `keep` blocks there for the caller to pop.
 * Nothing for the empty span or a slot that holds a proxy already. */
void hk_prof_wrap(hk_span** slot, unsigned keep);

/* Charges `size` bytes to this thread's countdown of class cls (HK_CLASSES:
 * blocks above the classes). True when this allocation is to be sampled (a
 * new countdown is drawn). */
bool hk_prof_charge(unsigned cls, size_t size);
/* Gives back bytes charged for an allocation that failed. */
void hk_prof_refund(unsigned cls, size_t size);
/* A block of class cls from the profiler's spans, its stack recorded
 * (walked from frame, the caller's frame address) with `size` requested
 * bytes. NULL when it cannot (no memory, or re-entered from a signal
 * handler while this thread holds the profiler's lock): the caller
 * allocates as usual. */
void* hk_prof_alloc_small(unsigned cls, size_t size, void* frame);
/* Records p (an arena or mapped block of `size` requested bytes) as sampled. */
void hk_prof_record_big(void* p, size_t size, void* frame);
/* Forgets p if it is a sampled big block (it is being freed or moved). */
void hk_prof_forget_big(const void* p);
/* True when p is a sampled big block. */
bool hk_prof_is_sampled_big(const void* p);
/* free() of block b of s, one of the profiler's spans (remote path). */
void hk_prof_free_small(hk_span* s, hk_block* b);

/* Reads HAKMEM_PROF_SAMPLE: turns sampling on, off or to a new rate. Called
 * at init and when the option changes. */
void hk_prof_configure(void);
/* Thread exit, after the heap's spans were released: this thread's proxies
 * go back to the pool, and it stops counting (a heap a later destructor
 * makes starts again from 0 at its next slow path). */
void hk_prof_thread_done(void);
/* Fork handlers: the profiler's lock. */
void hk_prof_fork(hk_fork_step step);
HK_HIDDEN_END

#endif
