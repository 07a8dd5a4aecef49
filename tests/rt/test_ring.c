/* Output rings: wrap-around, long records split, drops counted and
 * reported, and the time-ordered merge of 4 producer threads drained while
 * they run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "rt/rtint.h"
#include "rtt.h"

static rt_space *ring_space(void **mem, uint32_t ring, uint32_t threads) {
  rt_layout l = {0};
  l.max_threads = threads;
  l.ring_bytes = ring;
  return rtt_space(&l, mem);
}

/* ---- one thread, a small ring, many wraps ---- */

typedef struct seqcheck {
  uint32_t next, bad;
  uint64_t last_stamp;
} seqcheck;

static void fill(unsigned char *b, uint32_t seq, size_t n) {
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(seq * 31 + i);
}

static size_t size_of(uint32_t seq) { return (seq * 37u) % 900 + 1; }

static void wrap_sink(void *ctx, int stream, const void *data, size_t n) {
  seqcheck *c = ctx;
  unsigned char want[1024];
  fill(want, c->next, size_of(c->next));
  if (stream != RT_OUT || n != size_of(c->next) || memcmp(data, want, n) ||
      rt_rec_stamp(data) < c->last_stamp)
    c->bad++;
  c->last_stamp = rt_rec_stamp(data);
  c->next++;
}

static void test_wrap(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = ring_space(&mem, 4096, 4);
  rt_thread *th = rt_thread_get(sp, 5);
  seqcheck c = {0};
  unsigned char buf[1024];
  for (uint32_t i = 0; i < 20000; i++) {
    fill(buf, i, size_of(i));
    assert_int_equal(rt_emit(th, RT_OUT, buf, size_of(i)), 0);
    if (i % 2 == 1)
      rt_drain(sp, UINT64_MAX, wrap_sink, &c);
  }
  rt_drain(sp, UINT64_MAX, wrap_sink, &c);
  assert_int_equal(c.next, 20000);
  assert_int_equal(c.bad, 0);
  assert_int_equal(rt_dropped(sp), 0);
  free(mem);
}

/* ---- a write longer than a quarter ring becomes several records ---- */

static void cat_sink(void *ctx, int stream, const void *data, size_t n) {
  rtt_sink(ctx, stream, data, n);
}

static void test_split(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = ring_space(&mem, 4096, 4);
  rt_thread *th = rt_thread_get(sp, 5);
  static char big[3001];
  for (int i = 0; i < 3000; i++)
    big[i] = (char)('a' + i % 26);
  static rtt_text t;
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_emit(th, RT_OUT, "x", 1), 0); /* so the split wraps */
  rt_drain(sp, UINT64_MAX, cat_sink, &t);
  assert_int_equal(rt_emit(th, RT_OUT, big, 3000), 0);
  assert_int_equal(rt_drain(sp, UINT64_MAX, cat_sink, &t), 3); /* 1008 each */
  assert_int_equal(t.nout, 3001);
  assert_memory_equal(t.out + 1, big, 3000);
  assert_int_equal(rt_emit(th, RT_OUT, big, 3000), 0);
  assert_int_equal(rt_emit(th, RT_OUT, big, 3000), -1); /* never half */
  assert_int_equal(rt_drain(sp, UINT64_MAX, cat_sink, &t), 3);
  assert_int_equal(t.nout, 6001);
  free(mem);
}

/* ---- not drained: drops are counted and reported once ---- */

static void test_drops(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = ring_space(&mem, 4096, 4);
  rt_thread *th = rt_thread_get(sp, 5);
  char rec[100] = {0};
  int ok = 0, failed = 0;
  for (int i = 0; i < 100; i++)
    *(rt_emit(th, RT_ERR, rec, sizeof rec) == 0 ? &ok : &failed) += 1;
  assert_int_equal(ok, 4096 / 128); /* 16 header + 112 */
  assert_int_equal(failed, 100 - ok);
  assert_int_equal(rt_dropped(sp), (uint64_t)failed);
  static rtt_text t;
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_drain(sp, UINT64_MAX, rtt_sink, &t), (size_t)ok);
  assert_non_null(
      strstr(t.err + ok * 100, "vprobe: 68 output records or probe fires "
                               "dropped\n"));
  size_t before = t.nerr;
  rt_drain(sp, UINT64_MAX, rtt_sink, &t); /* reported only once */
  assert_int_equal(t.nerr, before);
  free(mem);
}

/* ---- 4 producers, one drainer, in time order, nothing lost ---- */

#define NPROD 4
#define PER 200000

typedef struct shared {
  rt_space *sp;
  uint64_t drained[NPROD]; /* written by the drainer */
  uint32_t next[NPROD];
  uint64_t last_stamp, bad, total;
} shared;

typedef struct producer {
  shared *sh;
  uint32_t id;
} producer;

static void *produce(void *arg) {
  producer *p = arg;
  rt_thread *th = rt_thread_get(p->sh->sp, 1000 + p->id);
  for (uint32_t i = 0; i < PER; i++) {
    /* stay well inside the ring (1 MiB / 48 bytes a record) */
    while (i - __atomic_load_n(&p->sh->drained[p->id], __ATOMIC_ACQUIRE) >
           10000)
      sched_yield();
    uint32_t rec[8] = {p->id, i};
    if (rt_emit(th, RT_OUT, rec, sizeof rec) != 0)
      p->sh->bad++;
  }
  return NULL;
}

static void order_sink(void *ctx, int stream, const void *data, size_t n) {
  shared *sh = ctx;
  uint32_t rec[8];
  memcpy(rec, data, sizeof rec);
  uint64_t st = rt_rec_stamp(data);
  if (stream != RT_OUT || n != 32 || rec[0] >= NPROD ||
      rec[1] != sh->next[rec[0]] || st < sh->last_stamp)
    sh->bad++;
  sh->last_stamp = st;
  if (rec[0] < NPROD) {
    sh->next[rec[0]] = rec[1] + 1;
    __atomic_store_n(&sh->drained[rec[0]], rec[1] + 1, __ATOMIC_RELEASE);
  }
  sh->total++;
}

static void test_four_threads(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = ring_space(&mem, 1 << 20, 8);
  static shared sh;
  memset(&sh, 0, sizeof sh);
  sh.sp = sp;
  pthread_t t[NPROD];
  producer p[NPROD];
  for (uint32_t i = 0; i < NPROD; i++) {
    p[i] = (producer){&sh, i};
    pthread_create(&t[i], NULL, produce, &p[i]);
  }
  while (sh.total < (uint64_t)NPROD * PER) {
    if (!rt_drain(sp, UINT64_MAX, order_sink, &sh))
      sched_yield();
  }
  for (uint32_t i = 0; i < NPROD; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(rt_drain(sp, UINT64_MAX, order_sink, &sh), 0);
  assert_int_equal(sh.bad, 0);
  assert_int_equal(sh.total, (uint64_t)NPROD * PER);
  assert_int_equal(rt_dropped(sp), 0);
  free(mem);
}

/* upto holds back later records */
static void test_upto(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = ring_space(&mem, 4096, 4);
  rt_thread *a = rt_thread_get(sp, 1), *b = rt_thread_get(sp, 2);
  rt_emit(a, RT_OUT, "a1 ", 3);
  rt_emit(b, RT_OUT, "b1 ", 3);
  uint64_t mid = rt_clock();
  rt_emit(a, RT_OUT, "a2 ", 3);
  rt_emit(b, RT_OUT, "b2 ", 3);
  rt_emit(a, RT_OUT, "a3 ", 3);
  static rtt_text t;
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_drain(sp, mid, rtt_sink, &t), 2);
  assert_string_equal(t.out, "a1 b1 ");
  assert_int_equal(rt_drain(sp, UINT64_MAX, rtt_sink, &t), 3);
  assert_string_equal(t.out, "a1 b1 a2 b2 a3 ");
  free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wrap),      cmocka_unit_test(test_split),
      cmocka_unit_test(test_drops),     cmocka_unit_test(test_upto),
      cmocka_unit_test(test_four_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
