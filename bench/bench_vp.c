/*
 * bench_vp.c - the VP interpreter's costs: ns per vp_run of small probes
 * (an aggrinc, a function call, a printf to a ring) and ns per operation
 * of a loop of additions.  Runs on a local rt_space, draining as it goes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt/rt.h"
#include "vp/vp.h"

static double now(void) {
  struct timespec ts;
  /* CPU time, not wall time: other load on the machine would count */
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sink(void *ctx, int stream, const void *data, size_t n) {
  (void)ctx, (void)stream, (void)data, (void)n;
}

/* ns per fire of the only probe of src, over iters fires. */
static double bench(const char *name, const char *src, long iters,
                    double per) {
  vp_diag d;
  vp_limits lim;
  vp_limits_default(&lim);
  lim.budget = 1u << 26;
  vp_image *img = vp_compile(src, strlen(src), name, &lim, &d);
  if (!img) {
    fprintf(stderr, "%s\n", d.error);
    exit(1);
  }
  rt_layout l;
  vp_image_layout(img, &l);
  l.max_threads = 2;
  l.ring_bytes = 1 << 20;
  size_t n = rt_space_size(&l);
  void *mem = calloc(1, n);
  rt_space *sp = rt_space_init(mem, n, &l);
  rt_thread *th = rt_thread_get(sp, 1);
  vp_fire f;
  memset(&f, 0, sizeof f);
  double best = 1e30;
  for (int round = 0; round < 5; round++) {
    double t0 = now();
    for (long i = 0; i < iters; i++) {
      vp_run(th, img, &f);
      if ((i & 1023) == 1023)
        rt_drain(sp, UINT64_MAX, sink, NULL);
    }
    double ns = (now() - t0) / (double)iters;
    if (ns < best)
      best = ns;
  }
  rt_drain(sp, UINT64_MAX, sink, NULL);
  printf("%-36s %9.1f ns/fire", name, best);
  if (per > 1)
    printf("  %6.2f ns/iteration", best / per);
  printf("\n");
  vp_image_free(img);
  free(mem);
  return best;
}

int main(void) {
  bench("empty probe", "(vprobe VMXLoad 0)", 2000000, 0);
  double agg = bench("aggrinc", "(defaggr calls 0 0)"
                                "(vprobe VMXLoad (aggrinc calls () ()))",
                     2000000, 0);
  bench("aggr with int key", "(defaggr a 1 0)"
                              "(vprobe VMXLoad (aggr a ((& TSC 7)) () 1))",
        2000000, 0);
  bench("1000 additions (loop)",
        "(definteger s)(vprobe VMXLoad (let ((int i 0)) (while (< i 1000) "
        "(setint s (+ s i)) (setint i (+ i 1)))))",
        20000, 1000);
  bench("function call", "(defun f (a b) (+ a b))"
                         "(vprobe VMXLoad (f 1 2))", 2000000, 0);
  bench("100 function calls (loop)",
        "(defun f (a b) (+ a b))(vprobe VMXLoad (let ((int i 0)) "
        "(while (< i 100) (setint i (f i 1)))))", 100000, 100);
  bench("printf to ring", "(vprobe VMXLoad (printf \"x=%d\\n\" 42))",
        1000000, 0);
  bench("sprintf + strcmp", "(defstring s)(vprobe VMXLoad "
                             "(sprintf s \"%d\" 42) (strcmp s \"42\"))",
        1000000, 0);
  printf("aggrinc probe: %.1f ns per vp_run (bar: < 20 ns)\n", agg);
  return 0;
}
