/* bench_aggr - cost of the runtime's probe-path operations: ns per
 * rt_aggr_inc (keyless and one integer key, 1 and 4 threads) and per
 * rt_emit of a 32-byte record.  Figures are CPU time per operation (each
 * thread's own CPU clock), so 4 threads on fewer cores still compare with
 * 1; a rise with threads means they slow each other (shared cache lines).
 * One line per figure:  <name> <ns per operation> ns
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rt/rt.h"

#define OPS 20000000L

typedef struct job {
  rt_space *sp;
  uint32_t tid, aggr;
  double ns; /* this thread's CPU time per operation */
} job;

static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *inc_loop(void *arg) {
  job *j = arg;
  rt_thread *th = rt_thread_get(j->sp, j->tid);
  uint64_t key = 0, t0 = cpu_ns();
  for (long i = 0; i < OPS; i++) {
    key = (uint64_t)i & 63; /* 64 buckets in use */
    rt_aggr_inc(th, j->aggr, &key, NULL);
  }
  j->ns = (double)(cpu_ns() - t0) / OPS;
  return NULL;
}

/* mean CPU ns per operation over threads running at once, OPS each */
static double run_inc(rt_space *sp, uint32_t aggr, int nthreads) {
  pthread_t t[4];
  job j[4];
  double sum = 0;
  for (int i = 0; i < nthreads; i++) {
    j[i] = (job){sp, 10 + (uint32_t)i + 10 * aggr, aggr, 0};
    pthread_create(&t[i], NULL, inc_loop, &j[i]);
  }
  for (int i = 0; i < nthreads; i++) {
    pthread_join(t[i], NULL);
    sum += j[i].ns;
  }
  return sum / nthreads;
}

static void sink(void *ctx, int stream, const void *data, size_t n) {
  (void)ctx, (void)stream, (void)data, (void)n;
}

static double run_emit(rt_space *sp) {
  rt_thread *th = rt_thread_get(sp, 99);
  char rec[32] = "0123456789abcdef0123456789abcde";
  long n = 0;
  uint64_t spent = 0;
  /* bursts that fit the ring, drained outside the timed part */
  for (int round = 0; round < 200; round++) {
    uint64_t t0 = rt_clock();
    for (int i = 0; i < 16384; i++)
      rt_emit(th, RT_OUT, rec, sizeof rec);
    spent += rt_clock() - t0;
    n += 16384;
    rt_drain(sp, UINT64_MAX, sink, NULL);
  }
  return (double)spent / (double)n;
}

int main(void) {
  static const rt_aggr_shape shapes[] = {{0, 0}, {1, 0}};
  rt_layout l = {0};
  l.naggrs = 2;
  l.aggrs = shapes;
  l.max_threads = 64;
  l.ring_bytes = 1 << 20;
  l.aggr_buckets = 1024;
  size_t n = rt_space_size(&l);
  void *mem = calloc(1, n);
  rt_space *sp = mem ? rt_space_init(mem, n, &l) : NULL;
  if (!sp) {
    fprintf(stderr, "bench_aggr: cannot lay out a space\n");
    return 1;
  }
  printf("aggr_inc_keyless_1thread %.2f ns\n", run_inc(sp, 0, 1));
  printf("aggr_inc_keyless_4threads %.2f ns\n", run_inc(sp, 0, 4));
  printf("aggr_inc_1key_1thread %.2f ns\n", run_inc(sp, 1, 1));
  printf("aggr_inc_1key_4threads %.2f ns\n", run_inc(sp, 1, 4));
  printf("emit_32B %.2f ns\n", run_emit(sp));
  free(mem);
  return 0;
}
