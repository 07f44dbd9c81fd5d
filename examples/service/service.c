/* An example service of the kind hakmem is for: a small multithreaded
 * request pipeline whose memory behaviour is a typical server's.
 *
 *   clients  --requests-->  handlers  --responses-->  writer
 *
 * - Client threads make requests: a request struct and a payload buffer
 *   (mostly 64 B..4 KiB, sometimes 16..64 KiB, rarely 256 KiB).
 * - Handler threads parse each request into a few dozen small header strings,
 *   build the response in a buffer grown with realloc, keep per-connection
 *   session objects in a table (the long-lived set), free the request
 *   (allocated by a client thread: a cross-thread free) and pass the
 *   response on.
 * - The writer thread "sends" each response, frees it (again allocated by
 *   another thread) and records the request's latency, from its creation to
 *   the end of its send.
 *
 * Runs for a bounded time, then drains, and prints one line:
 *   RESULT workload=service allocator=NAME hakmem=0|1 requests=N seconds=S
 *          req_per_s=... p50_us=... p99_us=... p999_us=... peak_rss_kb=...
 *          rss_kb=... clients=N handlers=N
 * in the key=value form of the benchmark harness (bench/bench_common.h);
 * hakmem=1 when malloc is hakmem's, so a driver can prove which allocator
 * served the run.
 *
 * The same source is built once per allocator by Bazel (examples/service/
 * BUILD.bazel: glibc, and each hakmem variant through its deps); peers such
 * as mimalloc are measured by preloading them into the glibc build
 * (compare.py). The program itself only uses malloc/realloc/free.
 *
 *   service [--seconds S] [--clients N] [--handlers N] [--label NAME] */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* hakmem's API when hakmem is linked in, NULL otherwise: how the program
 * knows which allocator serves it, without depending on hakmem. */
extern int hk_owns(const void* p) __attribute__((weak));

/* ---- time and RSS --------------------------------------------------------- */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A "VmRSS:" or "VmHWM:" figure from /proc/self/status, in KiB. */
static long status_kb(const char* key) {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(key);
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, key, n) == 0) v = atol(line + n);
  fclose(f);
  return v;
}

/* ---- requests and responses ------------------------------------------------ */
typedef struct request {
  uint64_t created_ns;  /* when the client made it: latency starts here */
  uint32_t connection;  /* picks the session slot */
  uint32_t seed;
  size_t payload_size;
  char* payload;
} request;

typedef struct response {
  uint64_t created_ns;  /* copied from the request */
  size_t size;
  char* body;
} response;

/* A bounded multi-producer multi-consumer queue of pointers: mutex and two
 * condition variables, popped in batches so the lock is not the bottleneck.
 * Its slot array is allocated once at start. */
typedef struct queue {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  void** slots;
  size_t cap, head, count;
  int closed;
} queue;

static void queue_init(queue* q, size_t cap) {
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  q->slots = calloc(cap, sizeof(void*));
  q->cap = cap;
  q->head = q->count = 0;
  q->closed = 0;
}

static void queue_push(queue* q, void* item) {
  pthread_mutex_lock(&q->mu);
  while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
  q->slots[(q->head + q->count++) % q->cap] = item;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* Takes up to max items; 0 once the queue is closed and empty. */
static size_t queue_pop_batch(queue* q, void** out, size_t max) {
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && !q->closed) pthread_cond_wait(&q->not_empty, &q->mu);
  size_t n = 0;
  while (n < max && q->count > 0) {
    out[n++] = q->slots[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
  }
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return n;
}

static void queue_close(queue* q) {
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* ---- the pipeline ------------------------------------------------------------ */
static queue requests, responses;
static atomic_int stop;

static uint32_t xorshift(uint32_t* x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static size_t payload_size(uint32_t r) {
  uint32_t kind = r % 1000;
  if (kind < 1) return 256 * 1024;                        /* an upload */
  if (kind < 50) return 16384 + (r >> 10) % 49152;         /* a bulky body */
  return 64 + (r >> 10) % 4032;                            /* the usual */
}

static void* client_main(void* arg) {
  uint32_t x = 0x9E3779B9u ^ (uint32_t)(uintptr_t)arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    request* r = malloc(sizeof(*r));
    uint32_t v = xorshift(&x);
    r->created_ns = now_ns();
    r->connection = xorshift(&x);
    r->seed = v;
    r->payload_size = payload_size(v);
    r->payload = malloc(r->payload_size);
    memset(r->payload, (int)(v & 0xff), r->payload_size);
    queue_push(&requests, r);
  }
  return NULL;
}

#define SESSIONS 4096  /* per handler: the long-lived set */
#define HEADERS_MAX 48

typedef struct handler_state {
  void* sessions[SESSIONS];
  uint64_t checksum;
} handler_state;

/* The per-request work: parse, look up the session, build a response. */
static response* handle(handler_state* st, request* rq) {
  uint32_t x = rq->seed | 1;
  /* Parse: a few dozen small header strings, freed at the end of the request. */
  char* headers[HEADERS_MAX];
  unsigned nh = 8 + xorshift(&x) % (HEADERS_MAX - 8);
  for (unsigned i = 0; i < nh; i++) {
    size_t n = 16 + xorshift(&x) % 112;
    headers[i] = malloc(n);
    memcpy(headers[i], rq->payload + (i * 7) % (rq->payload_size - 8), n < 8 ? n : 8);
    headers[i][n - 1] = 0;
  }
  /* Session: replace one connection's state object now and then. */
  void** slot = &st->sessions[rq->connection % SESSIONS];
  if (*slot == NULL || (xorshift(&x) & 3) == 0) {
    free(*slot);
    size_t n = 64 + xorshift(&x) % 960;
    *slot = malloc(n);
    memset(*slot, 0x5a, n);
  }
  /* Build: a response grown with realloc as parts are appended. */
  size_t cap = 256, len = 0;
  char* body = malloc(cap);
  size_t want = rq->payload_size / 2 + 128 + xorshift(&x) % 2048;
  while (len < want) {
    size_t part = 64 + xorshift(&x) % 1024;
    if (len + part > cap) {
      while (len + part > cap) cap *= 2;
      body = realloc(body, cap);
    }
    memset(body + len, (int)(part & 0xff), part);
    len += part;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < rq->payload_size; i += 64) sum += (unsigned char)rq->payload[i];
  for (unsigned i = 0; i < nh; i++) {
    sum += (unsigned char)headers[i][0];
    free(headers[i]);
  }
  st->checksum += sum;

  response* rs = malloc(sizeof(*rs));
  rs->created_ns = rq->created_ns;
  rs->size = len;
  rs->body = body;
  free(rq->payload);  /* allocated by a client thread */
  free(rq);
  return rs;
}

static void* handler_main(void* arg) {
  (void)arg;
  handler_state* st = calloc(1, sizeof(*st));
  void* batch[32];
  size_t n;
  while ((n = queue_pop_batch(&requests, batch, 32)) > 0)
    for (size_t i = 0; i < n; i++) queue_push(&responses, handle(st, batch[i]));
  for (unsigned i = 0; i < SESSIONS; i++) free(st->sessions[i]);
  free(st);
  return NULL;
}

/* Latency histogram: 32 linear sub-buckets per power of two of nanoseconds
 * (about 3% resolution), written by the writer thread only. */
#define HIST_SUB 32
#define HIST_POW 40
static uint64_t hist[HIST_POW * HIST_SUB];
static uint64_t completed;

static void hist_add(uint64_t ns) {
  if (ns < HIST_SUB) {
    hist[ns]++;
    return;
  }
  unsigned p = 63u - (unsigned)__builtin_clzll(ns);  /* ns in [2^p, 2^(p+1)) */
  unsigned sub = (unsigned)((ns >> (p - 5)) & (HIST_SUB - 1));
  unsigned b = (p - 4) * HIST_SUB + sub;
  if (b >= HIST_POW * HIST_SUB) b = HIST_POW * HIST_SUB - 1;
  hist[b]++;
}

/* The lower edge of bucket b, in ns. */
static uint64_t hist_value(unsigned b) {
  if (b < HIST_SUB) return b;
  unsigned p = b / HIST_SUB + 4, sub = b % HIST_SUB;
  return ((uint64_t)1 << p) + ((uint64_t)sub << (p - 5));
}

static double percentile_us(double q) {
  uint64_t rank = (uint64_t)(q * (double)completed), seen = 0;
  for (unsigned b = 0; b < HIST_POW * HIST_SUB; b++) {
    seen += hist[b];
    if (seen > rank) return (double)hist_value(b) / 1000.0;
  }
  return 0;
}

static void* writer_main(void* arg) {
  (void)arg;
  void* batch[64];
  size_t n;
  uint64_t sink = 0;
  while ((n = queue_pop_batch(&responses, batch, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      response* rs = batch[i];
      for (size_t k = 0; k < rs->size; k += 256) sink += (unsigned char)rs->body[k];  /* "send" */
      uint64_t created = rs->created_ns;
      free(rs->body);  /* allocated by a handler thread */
      free(rs);
      hist_add(now_ns() - created);
      completed++;
    }
  }
  return (void*)(uintptr_t)sink;
}

/* ---- main ------------------------------------------------------------------- */
/* 1 when malloc is hakmem's (hakmem linked in or preloaded). */
static int malloc_is_hakmem(void) {
  void* p = malloc(64);
  int yes = hk_owns != NULL && hk_owns(p);
  free(p);
  return yes;
}

int main(int argc, char** argv) {
  double seconds = 2.0;
  int clients = 2, handlers = 4;
  const char* label = NULL;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--clients") == 0) clients = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--handlers") == 0) handlers = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--label") == 0) label = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--seconds S] [--clients N] [--handlers N] [--label NAME]\n", argv[0]);
      return 2;
    }
  }
  if (seconds <= 0 || clients < 1 || handlers < 1 || clients > 64 || handlers > 64) {
    fprintf(stderr, "service: bad arguments\n");
    return 2;
  }
  int hakmem = malloc_is_hakmem();
  const char* name = label ? label : hakmem ? "hakmem" : "other";
  queue_init(&requests, 256);
  queue_init(&responses, 256);

  pthread_t c[64], h[64], w;
  uint64_t t0 = now_ns();
  pthread_create(&w, NULL, writer_main, NULL);
  for (int i = 0; i < handlers; i++) pthread_create(&h[i], NULL, handler_main, NULL);
  for (int i = 0; i < clients; i++) pthread_create(&c[i], NULL, client_main, (void*)(uintptr_t)(i + 1));
  struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {}
  atomic_store(&stop, 1);
  for (int i = 0; i < clients; i++) pthread_join(c[i], NULL);
  queue_close(&requests);
  for (int i = 0; i < handlers; i++) pthread_join(h[i], NULL);
  queue_close(&responses);
  pthread_join(w, NULL);
  double elapsed = (double)(now_ns() - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;

  /* ops_per_s / ops_per_cpu_s: requests, named as the benchmark harness
   * (tools/bench) reads every workload's throughput. */
  printf("RESULT workload=service allocator=%s hakmem=%d requests=%llu seconds=%.3f req_per_s=%.0f p50_us=%.1f "
         "p99_us=%.1f p999_us=%.1f peak_rss_kb=%ld rss_kb=%ld clients=%d handlers=%d ops=%llu ops_per_s=%.0f "
         "cpu_seconds=%.3f ops_per_cpu_s=%.0f\n",
         name, hakmem, (unsigned long long)completed, elapsed,
         (double)completed / elapsed, percentile_us(0.50), percentile_us(0.99), percentile_us(0.999),
         status_kb("VmHWM:"), status_kb("VmRSS:"), clients, handlers, (unsigned long long)completed,
         (double)completed / elapsed, cpu, cpu > 0 ? (double)completed / cpu : 0.0);
  return completed > 0 ? 0 : 1;
}
