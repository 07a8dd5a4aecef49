/* Aggregates: exact counts under concurrency, clearing while inserting, a
 * full table, and the printed layouts of logaggr and printa (docs/vp.md,
 * seed 000 "Formatting Aggregate Output", seed 002 sections 3.2 and 4.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <pthread.h>

#include "rtt.h"

/* The seed's ioStats[1][1]: io size in KB, "READ"/"WRITE", latency. */
static const rt_aggr_shape shapes[] = {{1, 1}, {1, 0}, {0, 0}, {1, 1}};
static const char *const names[] = {"ioStats", "exits", "total", "resultWait"};

static rt_space *new_space(void **mem, uint32_t buckets) {
  rt_layout l = {0};
  l.naggrs = 4;
  l.aggrs = shapes;
  l.aggr_names = names;
  l.max_threads = 16;
  l.ring_bytes = 1 << 20;
  l.aggr_buckets = buckets;
  return rtt_space(&l, mem);
}

static void io(rt_thread *th, uint64_t kb, const char *type, int64_t v) {
  const char *s[1] = {type};
  assert_int_equal(rt_aggr_add(th, 0, &kb, s, v), 0);
}

/* A small ioStats, in the seed's shape. */
static void fill_io(rt_thread *th) {
  io(th, 96, "WRITE", 0);
  io(th, 96, "WRITE", 210);
  io(th, 96, "WRITE", 30);
  io(th, 8, "READ", 23);
  io(th, 8, "READ", 27);
  io(th, 12, "READ", 50);
  io(th, 128, "READ", 5);
  io(th, 160, "WRITE", 1040);
  io(th, 160, "WRITE", 100);
}

static const char *print(rt_space *sp, rt_thread *th, uint32_t id,
                         const char *fmt, int countonly, rtt_text *t) {
  memset(t, 0, sizeof *t);
  assert_int_equal(rt_aggr_print(th, id, fmt, countonly), 0);
  rt_drain(sp, UINT64_MAX, rtt_sink, t);
  if (getenv("RTT_SHOW"))
    printf("---- %s\n%s", fmt ? fmt : "(default)", t->out);
  return t->out;
}

/* RTT_SHOW=1 prints every layout instead of checking it. */
static void check(const char *got, const char *want) {
  if (!getenv("RTT_SHOW"))
    assert_string_equal(got, want);
}

static void test_layouts(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  rt_thread *th = rt_thread_get(sp, 1), *th2 = rt_thread_get(sp, 2);
  static rtt_text t;
  fill_io(th);
  io(th2, 160, "WRITE", 60); /* merged with thread 1's bucket */
  check(print(sp, th, 0, NULL, 0, &t),
                      "intKey0 strKey0  avg  count  min   max   pct%\n"
                      "   0x80 READ       5      1    5     5   0.3%\n"
                      "    0x8 READ      25      2   23    27   3.2%\n"
                      "    0xc READ      50      1   50    50   3.2%\n"
                      "   0x60 WRITE     80      3    0   210  15.5%\n"
                      "   0xa0 WRITE    400      3   60  1040  77.7%\n");
  check(print(sp, th, 0, "%d", 0, &t),
                      "intKey0 strKey0  avg  count  min   max   pct%\n"
                      "    128 READ       5      1    5     5   0.3%\n"
                      "      8 READ      25      2   23    27   3.2%\n"
                      "     12 READ      50      1   50    50   3.2%\n"
                      "     96 WRITE     80      3    0   210  15.5%\n"
                      "    160 WRITE    400      3   60  1040  77.7%\n");
  check(print(sp, th, 0, "%d KB | %8s | %6x %-6d %06d %6d", 0, &t),
                      "intKey0 KB |  strKey0 |    avg count     min    max   pct%\n"
                      "    128 KB |     READ |    0x5 1      000005      5   0.3%\n"
                      "      8 KB |     READ |   0x19 2      000023     27   3.2%\n"
                      "     12 KB |     READ |   0x32 1      000050     50   3.2%\n"
                      "     96 KB |    WRITE |   0x50 3      000000    210  15.5%\n"
                      "    160 KB |    WRITE |  0x190 3      000060   1040  77.7%\n");
  check(print(sp, th, 0, "%d KB | %8s | %avg$d | %count$d", 0, &t),
                      "intKey0 KB |  strKey0 | avg | count\n"
                      "    128 KB |     READ |   5 |     1\n"
                      "      8 KB |     READ |  25 |     2\n"
                      "     12 KB |     READ |  50 |     1\n"
                      "     96 KB |    WRITE |  80 |     3\n"
                      "    160 KB |    WRITE | 400 |     3\n");
  check(
      print(sp, th, 0,
            "{ len: %=d, type: \"%=s\", avg: %avg$=d, count: %count$=d },", 0,
            &t),
      "{ len: 128, type: \"READ\", avg: 5, count: 1 },\n"
                      "{ len: 8, type: \"READ\", avg: 25, count: 2 },\n"
                      "{ len: 12, type: \"READ\", avg: 50, count: 1 },\n"
                      "{ len: 96, type: \"WRITE\", avg: 80, count: 3 },\n"
                      "{ len: 160, type: \"WRITE\", avg: 400, count: 3 },\n");
  check(print(sp, th, 0, NULL, 1, &t), "intKey0 strKey0  count   pct%\n"
                      "    0xc READ         1  10.0%\n"
                      "   0x80 READ         1  10.0%\n"
                      "    0x8 READ         2  20.0%\n"
                      "   0x60 WRITE        3  30.0%\n"
                      "   0xa0 WRITE        3  30.0%\n");
  free(mem);
}

static void test_exits_countonly(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  rt_thread *th = rt_thread_get(sp, 7);
  static const struct { uint64_t code; int n; } ex[] = {
      {0x10, 2}, {0x0, 2}, {0x1, 31}, {0x7, 33}, {0x1e, 130}, {0xc, 201},
      {0x30, 486}};
  for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
    for (int k = 0; k < ex[i].n; k++)
      assert_int_equal(rt_aggr_inc(th, 1, &ex[i].code, NULL), 0);
  static rtt_text t;
  check(print(sp, th, 1, NULL, 1, &t), "intKey0  count   pct%\n"
                      "    0x0      2   0.2%\n"
                      "   0x10      2   0.2%\n"
                      "    0x1     31   3.5%\n"
                      "    0x7     33   3.7%\n"
                      "   0x1e    130  14.7%\n"
                      "    0xc    201  22.7%\n"
                      "   0x30    486  54.9%\n");
  free(mem);
}

static void test_resultwait(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  rt_thread *th = rt_thread_get(sp, 3);
  struct { const char *w; uint64_t id; int64_t v; } r[] = {
      {"helper50-3", 1000014344, 7}, {"helper50-4", 1000014345, 8},
      {"FS3ResMgr", 1000014340, 10}, {"FS3ResMgr", 1000014340, 10}};
  for (size_t i = 0; i < 4; i++) {
    const char *s[1] = {r[i].w};
    assert_int_equal(rt_aggr_add(th, 3, &r[i].id, s, r[i].v), 0);
  }
  static rtt_text t;
  check(print(sp, th, 3,
                            "%1$s %0$d %count$d"
                            "%min$d %max$d %avg$d",
                            0, &t),
                      "strKey0       intKey0 countmin max avg\n"
                      "helper50-3 1000014344     1  7   7   7\n"
                      "helper50-4 1000014345     1  8   8   8\n"
                      "FS3ResMgr  1000014340     2 10  10  10\n");
  check(print(sp, th, 3, "%1$s %0$d %count$d %min$d %max$d %avg$d", 0, &t), "strKey0       intKey0 count min max avg\n"
                      "helper50-3 1000014344     1   7   7   7\n"
                      "helper50-4 1000014345     1   8   8   8\n"
                      "FS3ResMgr  1000014340     2  10  10  10\n");
  free(mem);
}

/* ---- concurrency ---- */

typedef struct worker {
  rt_space *sp;
  uint32_t tid;
  long n;
  volatile int *stop; /* NULL: run n inserts */
  long done;
} worker;

static void *insert_loop(void *arg) {
  worker *w = arg;
  rt_thread *th = rt_thread_get(w->sp, w->tid);
  uint64_t key = w->tid % 4;
  for (long i = 0; w->stop ? !__atomic_load_n(w->stop, __ATOMIC_RELAXED)
                           : i < w->n;
       i++) {
    assert_int_equal(rt_aggr_inc(th, 2, NULL, NULL), 0);
    assert_int_equal(rt_aggr_add(th, 1, &key, NULL, 2), 0);
    w->done++;
  }
  return NULL;
}

static void run_workers(rt_space *sp, worker *w, int n, long each,
                        volatile int *stop) {
  pthread_t t[8];
  for (int i = 0; i < n; i++) {
    w[i] = (worker){sp, 100 + (uint32_t)i, each, stop, 0};
    pthread_create(&t[i], NULL, insert_loop, &w[i]);
  }
  if (stop) { /* clear and print while they insert */
    rt_thread *me = rt_thread_get(sp, 1);
    static rtt_text t2;
    for (int k = 0; k < 200; k++) {
      rt_aggr_clear(sp, 1);
      rt_aggr_clear(sp, 2);
      assert_int_equal(rt_aggr_print(me, 1, NULL, 0), 0);
      assert_int_equal(rt_aggr_print(me, 2, "%count$=d", 0), 0);
      memset(&t2, 0, sizeof t2);
      rt_drain(sp, UINT64_MAX, rtt_sink, &t2);
    }
    __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
  }
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
}

static void test_exact_counts(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  worker w[8];
  run_workers(sp, w, 8, 1000000, NULL);
  rt_thread *th = rt_thread_get(sp, 1);
  static rtt_text t;
  check(print(sp, th, 2, "%count$=d", 0, &t), "8000000\n");
  /* each key got 2 threads x 1M adds of 2 */
  check(print(sp, th, 1, NULL, 0, &t),
        "intKey0  avg    count  min  max   pct%\n"
        "    0x0    2  2000000    2    2  25.0%\n"
        "    0x1    2  2000000    2    2  25.0%\n"
        "    0x2    2  2000000    2    2  25.0%\n"
        "    0x3    2  2000000    2    2  25.0%\n");
  check(print(sp, th, 1, "%0$=d %sum$=d", 0, &t),
        "0 4000000\n1 4000000\n2 4000000\n3 4000000\n");
  free(mem);
}

static void test_clear_while_inserting(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  worker w[4];
  volatile int stop = 0;
  run_workers(sp, w, 4, 0, &stop);
  rt_aggr_clear(sp, 1);
  rt_aggr_clear(sp, 2);
  rt_thread *th = rt_thread_get(sp, 1);
  static rtt_text t;
  check(print(sp, th, 2, "%count$=d", 0, &t), "");
  check(print(sp, th, 1, NULL, 0, &t), "intKey0  avg  count  min  max  pct%\n");
  /* the stale tables reset themselves on the next insert */
  run_workers(sp, w, 4, 1000, NULL);
  check(print(sp, th, 2, "%count$=d", 0, &t), "4000\n");
  check(print(sp, th, 1, "%0$=d %count$=d", 0, &t),
        "0 1000\n1 1000\n2 1000\n3 1000\n");
  assert_true(w[0].done == 1000);
  free(mem);
}

static void test_table_full(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 16); /* 14 buckets usable (7/8) */
  rt_thread *th = rt_thread_get(sp, 9);
  int ok = 0, full = 0;
  for (uint64_t k = 0; k < 20; k++)
    *(rt_aggr_inc(th, 1, &k, NULL) == 0 ? &ok : &full) += 1;
  assert_int_equal(ok, 14);
  assert_int_equal(full, 6);
  uint64_t k0 = 0; /* existing keys still count */
  assert_int_equal(rt_aggr_add(th, 1, &k0, NULL, 5), 0);
  static rtt_text t;
  check(print(sp, th, 1, "%0$=d %count$=d %sum$=d", 0, &t),
        "1 1 1\n2 1 1\n3 1 1\n4 1 1\n5 1 1\n6 1 1\n7 1 1\n"
        "8 1 1\n9 1 1\n10 1 1\n11 1 1\n12 1 1\n13 1 1\n0 2 6\n");
  assert_non_null(strstr(t.err, "aggregate exits: 6 samples dropped"));
  /* string keys fill the arena too: long keys run out before buckets */
  char big[300];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  rt_aggr_clear(sp, 0);
  int n = 0;
  for (uint64_t k = 0; k < 16; k++) {
    const char *s[1] = {big};
    n += rt_aggr_inc(th, 0, &k, s) == 0;
  }
  assert_true(n >= 1 && n < 14);
  /* a clear empties the table */
  rt_aggr_clear(sp, 1);
  assert_int_equal(rt_aggr_inc(th, 1, &k0, NULL), 0);
  check(print(sp, th, 1, "%0$=d %count$=d", 0, &t), "0 1\n");
  free(mem);
}

/* seed 002 section 3.4: stack traces as string keys, one frame a line; the
 * count and pct go on the middle line of each key */
static void test_multiline_keys(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = new_space(&mem, 64);
  rt_thread *th = rt_thread_get(sp, 4);
  const char *a[1] = {"vmkernel.Power_HaltPCPU+0x285\n"
                      "vmkernel.CpuSchedIdleLoopInt+0x61b\n"
                      "vmkernel.CpuSchedTryBusyWait+0x2c6"};
  const char *b[1] = {"[0x828547d3]\n[0x8281a187]\n[0x82b5e099]"};
  uint64_t k = 1;
  for (int i = 0; i < 484; i++)
    rt_aggr_inc(th, 0, &k, a);
  for (int i = 0; i < 1090; i++)
    rt_aggr_inc(th, 0, &k, b);
  static rtt_text t;
  check(print(sp, th, 0, "%1$s %count$d %pct$d", 1, &t),
        "strKey0                            count  pct%\n"
        "vmkernel.Power_HaltPCPU+0x285\n"
        "vmkernel.CpuSchedIdleLoopInt+0x61b   484 30.7%\n"
        "vmkernel.CpuSchedTryBusyWait+0x2c6\n"
        "[0x828547d3]\n"
        "[0x8281a187]                        1090 69.3%\n"
        "[0x82b5e099]\n");
  free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multiline_keys),
      cmocka_unit_test(test_exact_counts),
      cmocka_unit_test(test_clear_while_inserting),
      cmocka_unit_test(test_table_full),
      cmocka_unit_test(test_layouts),
      cmocka_unit_test(test_exits_countonly),
      cmocka_unit_test(test_resultwait),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
