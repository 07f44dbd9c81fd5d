// Thread lifecycle under any allocator: tens of
// thousands of threads, at most 4 alive at a time, whose exit-time
// destructors allocate:
//   - a pthread key destructor that frees its value, allocates a new one and
//     stores it again, so glibc runs it in the next destructor round too,
//     up to the last round (PTHREAD_DESTRUCTOR_ITERATIONS), in which it
//     still allocates (a scratch buffer) but stores nothing;
//   - a second key's destructor that allocates a block and hands it to the
//     main thread, which frees it later (a block born during thread exit
//     outlives its thread);
//   - a C++ thread_local whose destructor allocates (std::string, vector).
// Each thread also allocates and frees while it runs, and keeps a few
// blocks for the main thread to free.
//
// Built without hakmem: thread_exit_test.sh runs it plainly (glibc) and with
// libhakmem.so preloaded, and compares the peak RSS it prints. Under hakmem
// it also prints how many thread heaps are live once every thread has
// exited (hk_stats_get, found with dlsym so the same binary runs under
// glibc).
//
//   thread_exit_target [cycles]     prints "peak_rss_kb N" and, under
//                                   hakmem, "threads_live N"
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "alloc/include/hakmem.h"

namespace {

pthread_key_t g_again_key;  // destructor stores a new value, round after round
pthread_key_t g_handoff_key;
thread_local unsigned t_rounds;  // trivially destructible: stays valid in every destructor round

// Blocks made by exiting threads, freed by the main thread later.
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
std::vector<void*>* g_handed;  // allocated once by main, before any thread

void Hand(void* p) {
  pthread_mutex_lock(&g_mu);
  g_handed->push_back(p);
  pthread_mutex_unlock(&g_mu);
}

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "FAIL: %s\n", what);
    abort();
  }
}

// A block whose bytes are checked before it is freed.
void* Stamped(size_t n, unsigned char v) {
  unsigned char* p = static_cast<unsigned char*>(malloc(n));
  Check(p != nullptr, "malloc failed");
  memset(p, v, n);
  return p;
}

void FreeStamped(void* q, size_t n, unsigned char v) {
  unsigned char* p = static_cast<unsigned char*>(q);
  for (size_t i = 0; i < n; i += 61) Check(p[i] == v, "a block's bytes changed");
  free(p);
}

void AgainDestructor(void* value) {
  unsigned round = ++t_rounds;
  FreeStamped(value, 200, 0xA5);
  // A scratch buffer in every round, the last one included.
  void* scratch = Stamped(100 + 37 * round, 0x11);
  FreeStamped(scratch, 100 + 37 * round, 0x11);
  if (round < PTHREAD_DESTRUCTOR_ITERATIONS) pthread_setspecific(g_again_key, Stamped(200, 0xA5));
}

void HandoffDestructor(void* value) {
  FreeStamped(value, 48, 0x5A);
  Hand(Stamped(64, 0x77));
}

struct Local {
  std::string name;
  ~Local() {
    std::vector<std::string> parts;
    for (int i = 0; i < 8; i++) parts.push_back(name + std::to_string(i) + " and some more text to allocate");
    Check(parts.size() == 8, "thread_local destructor");
  }
};
thread_local Local t_local;

void* Thread(void* arg) {
  uintptr_t n = reinterpret_cast<uintptr_t>(arg);
  t_local.name = "thread local of thread " + std::to_string(n);
  void* live[32];
  for (int i = 0; i < 32; i++) live[i] = Stamped(16 + (n * 7 + i * 13) % 2000, static_cast<unsigned char>(i));
  for (int i = 0; i < 32; i++) FreeStamped(live[i], 16 + (n * 7 + i * 13) % 2000, static_cast<unsigned char>(i));
  Hand(Stamped(32, 0x77));
  pthread_setspecific(g_again_key, Stamped(200, 0xA5));
  pthread_setspecific(g_handoff_key, Stamped(48, 0x5A));
  return nullptr;
}

void FreeHanded() {
  pthread_mutex_lock(&g_mu);
  std::vector<void*> blocks;
  blocks.swap(*g_handed);
  pthread_mutex_unlock(&g_mu);
  for (void* p : blocks) free(p);  // 32- and 64-byte blocks stamped 0x77
}

}  // namespace

int main(int argc, char** argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 20000;
  g_handed = new std::vector<void*>();
  g_handed->reserve(4096);
  pthread_key_create(&g_again_key, AgainDestructor);
  pthread_key_create(&g_handoff_key, HandoffDestructor);
  for (long done = 0; done < cycles; done += 4) {
    pthread_t t[4];
    for (uintptr_t k = 0; k < 4; k++)
      Check(pthread_create(&t[k], nullptr, Thread, reinterpret_cast<void*>(done + k)) == 0, "pthread_create");
    for (int k = 0; k < 4; k++) pthread_join(t[k], nullptr);
    if (done % 1024 == 0) FreeHanded();
  }
  FreeHanded();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cycles %ld\npeak_rss_kb %ld\n", cycles, ru.ru_maxrss);
  auto stats_get = reinterpret_cast<void (*)(hk_stats_t*)>(dlsym(RTLD_DEFAULT, "hk_stats_get"));
  if (stats_get != nullptr) {
    hk_stats_t s;
    stats_get(&s);
    printf("threads_live %llu\n", static_cast<unsigned long long>(s.threads_live));
  }
  return 0;
}
