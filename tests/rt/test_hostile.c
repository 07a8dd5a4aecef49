/* A space shared with a process that scribbles on it: the controller's
 * view must drain it without reading or writing outside it, report a
 * broken one as corrupt (one message), deliver garbage that keeps the rules,
 * never loop or stall; and the full check must refuse what would steer this
 * process's own probes (header, descriptors, tables, string keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "rt/rtint.h"
#include "rtt.h"

typedef struct hsink {
  const char *lo, *hi; /* the space: every record must lie in it */
  size_t nrec, out_of_bounds;
  char last[64];
} hsink;

static void hsink_fn(void *ctx, int stream, const void *data, size_t n) {
  hsink *h = ctx;
  const char *p = data;
  if (stream != RT_ERR && (p < h->lo || p + n > h->hi))
    h->out_of_bounds++;
  if (stream > RT_BIN)
    h->out_of_bounds++;
  size_t k = n < sizeof h->last - 1 ? n : sizeof h->last - 1;
  memcpy(h->last, data, k);
  h->last[k] = 0;
  h->nrec++;
}

typedef struct fix {
  void *mem;
  size_t size;
  rt_space *sp;
  rt_view *v;
  hsink h;
} fix;

/* A space with 4 small rings, one aggregate keyed by a string, one bag,
 * two string globals; three threads that wrote a few records. */
static void fix_open(fix *f, int records) {
  static const rt_aggr_shape shapes[1] = {{1, 1}};
  static const char *const names[1] = {"a"};
  static const uint32_t bags[1] = {16};
  rt_layout l = {0};
  l.nints = 2, l.nstrs = 2, l.nshared = 2;
  l.naggrs = 1, l.aggrs = shapes, l.aggr_names = names;
  l.nbags = 1, l.bag_sizes = bags;
  l.max_threads = 4, l.ring_bytes = 4096, l.aggr_buckets = 64;
  f->size = rt_space_size(&l);
  f->mem = calloc(1, f->size);
  f->sp = rt_space_init(f->mem, f->size, &l);
  assert_non_null(f->sp);
  f->v = rt_view_new(f->sp, f->size);
  assert_non_null(f->v);
  memset(&f->h, 0, sizeof f->h);
  f->h.lo = f->mem;
  f->h.hi = (char *)f->mem + f->size;
  for (uint32_t t = 0; t < 3; t++) {
    rt_thread *th = rt_thread_get(f->sp, 100 + t);
    assert_non_null(th);
    const char *k[1] = {"key"};
    uint64_t ik = t;
    rt_aggr_inc(th, 0, &ik, k);
    for (int i = 0; i < records; i++)
      rt_emit(th, RT_OUT, "hello record\n", 13);
  }
}

static void fix_close(fix *f) {
  rt_view_free(f->v);
  free(f->mem);
}

static rt_thread *blk(fix *f, uint32_t i) { return rt_block(f->sp, i); }

static size_t drain(fix *f, uint64_t upto) {
  return rt_view_drain(f->v, upto, hsink_fn, &f->h);
}

/* ---- a clean space drains as before, and passes the check ---- */

static void test_clean(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 5);
  assert_int_equal(drain(&f, UINT64_MAX), 15);
  assert_null(rt_view_error(f.v));
  assert_int_equal(rt_view_check(f.v), 0);
  rt_thread *th = rt_thread_get(f.sp, 7);
  assert_int_equal(rt_aggr_print(th, 0, NULL, 0), 0);
  assert_true(drain(&f, UINT64_MAX) > 0);
  assert_int_equal(f.h.out_of_bounds, 0);
  fix_close(&f);
}

/* ---- ring values ---- */

static void expect_corrupt(fix *f, const char *why) {
  drain(f, UINT64_MAX);
  const char *e = rt_view_error(f->v);
  assert_non_null(e);
  if (!strstr(e, why))
    fail_msg("error '%s' lacks '%s'", e, why);
  assert_int_equal(drain(f, UINT64_MAX), 0); /* sticky */
  assert_int_equal(f->h.out_of_bounds, 0);
}

static void test_head_far(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 3);
  blk(&f, 0)->head = UINT64_MAX - 5;
  for (uint32_t i = 1; i < 4; i++) /* whichever block thread 100 got */
    if (blk(&f, i)->ready) blk(&f, i)->head = 1ull << 40;
  expect_corrupt(&f, "out of range");
  fix_close(&f);
}

static void test_head_behind(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 3);
  drain(&f, UINT64_MAX);
  for (uint32_t i = 0; i < 4; i++)
    if (blk(&f, i)->ready) blk(&f, i)->head = 16;
  expect_corrupt(&f, "out of range");
  fix_close(&f);
}

/* The first record of every live ring gets header h. */
static void set_first(fix *f, uint32_t len, uint16_t stream) {
  for (uint32_t i = 0; i < 4; i++) {
    rt_thread *th = blk(f, i);
    if (!th->ready) continue;
    rt_rec *r = (rt_rec *)rt_ring(f->sp, th);
    r->len = len;
    r->stream = stream;
  }
}

static void test_record_length(void **state) {
  (void)state;
  uint32_t lens[] = {4294967295u, 4096, 1009, 200};
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    fix f;
    fix_open(&f, 3);
    set_first(&f, lens[k], RT_OUT);
    expect_corrupt(&f, "record length");
    fix_close(&f);
  }
}

static void test_stream(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 3);
  set_first(&f, 13, 77);
  expect_corrupt(&f, "stream 77");
  fix_close(&f);
  fix_open(&f, 3);
  set_first(&f, 13, 0xffff); /* a pad that does not reach the ring's end */
  expect_corrupt(&f, "pad length");
  fix_close(&f);
}

/* The shared tail, seq, floor and the space's drainer fields are the
 * producer's to scribble on: the view keeps its own. */
static void test_drainer_state_private(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 4);
  f.sp->draining = 1;
  f.sp->drain_prev = UINT64_MAX;
  for (uint32_t i = 0; i < 4; i++) {
    rt_thread *th = blk(&f, i);
    th->tail = 999999;
    th->floor = 0;
    th->last_seq = 12345;
    if (th->ready) th->seq = 1; /* "forever writing" */
  }
  assert_int_equal(drain(&f, UINT64_MAX), 12); /* final: no writer left */
  assert_null(rt_view_error(f.v));
  fix_close(&f);
}

/* A stamp far in the future goes out at once; one far in the past too. */
static void test_stamps(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 2);
  for (uint32_t i = 0; i < 4; i++) {
    rt_thread *th = blk(&f, i);
    if (!th->ready) continue;
    rt_rec *r = (rt_rec *)rt_ring(f.sp, th);
    r->stamp = i & 1 ? UINT64_MAX : 0;
  }
  uint64_t now = rt_clock();
  assert_int_equal(drain(&f, now), 6);
  assert_null(rt_view_error(f.v));
  fix_close(&f);
}

/* ---- garbage: random bytes in rings, slots, blocks, the whole space ---- */

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

static void scribble(void *p, size_t n, uint64_t *seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)rnd(seed);
}

static void test_garbage_rings(void **state) {
  (void)state;
  uint64_t seed = 88172645463325252ull;
  size_t corrupt = 0, delivered = 0;
  for (int round = 0; round < 300; round++) {
    fix f;
    fix_open(&f, round % 7);
    for (uint32_t i = 0; i < 4; i++) {
      rt_thread *th = blk(&f, i);
      if (!th->ready) continue;
      unsigned char *ring = rt_ring(f.sp, th);
      if (round % 3 == 0) { /* headers that look right, bytes that do not */
        for (uint32_t off = 0; off < 4096; off += 32) {
          rt_rec r = {rnd(&seed), (uint32_t)(rnd(&seed) % 24), (uint16_t)(rnd(&seed) % 3), 0};
          memcpy(ring + off, &r, sizeof r);
        }
      } else {
        scribble(ring, 4096, &seed);
      }
      th->head = th->tail + rnd(&seed) % 4097;
    }
    for (int k = 0; k < 3; k++)
      delivered += drain(&f, k == 2 ? UINT64_MAX : rt_clock());
    corrupt += rt_view_error(f.v) != NULL;
    assert_int_equal(f.h.out_of_bounds, 0);
    fix_close(&f);
  }
  print_message("garbage rings: %zu of 300 corrupt, %zu records delivered\n",
                corrupt, delivered);
  assert_true(corrupt > 0 && delivered > 0);
}

static void test_garbage_blocks(void **state) {
  (void)state;
  uint64_t seed = 0x2545F4914F6CDD1Dull;
  for (int round = 0; round < 200; round++) {
    fix f;
    fix_open(&f, 2);
    scribble(rt_base(f.sp) + f.sp->off_slots, 8 * 4, &seed);
    for (uint32_t i = 0; i < 4; i++)
      if (rnd(&seed) & 1)
        scribble(blk(&f, i), f.sp->block_size, &seed);
    drain(&f, UINT64_MAX);
    rt_view_check(f.v); /* either verdict; never a bad read */
    assert_int_equal(f.h.out_of_bounds, 0);
    fix_close(&f);
  }
}

static void test_garbage_space(void **state) {
  (void)state;
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  for (int round = 0; round < 100; round++) {
    fix f;
    fix_open(&f, 3);
    scribble(f.mem, f.size, &seed);
    drain(&f, rt_clock());
    drain(&f, UINT64_MAX);
    assert_int_equal(rt_view_check(f.v), -1); /* the header is gone */
    assert_int_equal(f.h.out_of_bounds, 0);
    fix_close(&f);
  }
}

/* ---- the full check, field by field ---- */

static void want_check(fix *f, const char *why) {
  assert_int_equal(rt_view_check(f->v), -1);
  const char *e = rt_view_error(f->v);
  if (!e || !strstr(e, why))
    fail_msg("error '%s' lacks '%s'", e ? e : "(none)", why);
}

static void test_check_header(void **state) {
  (void)state;
  static const size_t offs[] = {
      offsetof(rt_space, magic),        offsetof(rt_space, size),
      offsetof(rt_space, nints),        offsetof(rt_space, naggrs),
      offsetof(rt_space, max_threads),  offsetof(rt_space, ring_bytes),
      offsetof(rt_space, aggr_buckets), offsetof(rt_space, block_size),
      offsetof(rt_space, off_slots),    offsetof(rt_space, off_blocks),
      offsetof(rt_space, block_ring),   offsetof(rt_space, off_bags)};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    fix f;
    fix_open(&f, 1);
    ((unsigned char *)f.mem)[offs[i]] ^= 0x41;
    assert_int_equal(drain(&f, UINT64_MAX), 0); /* refused at once */
    assert_non_null(rt_view_error(f.v)); /* then found changed */
    want_check(&f, "space header");
    fix_close(&f);
  }
}

static void test_check_parts(void **state) {
  (void)state;
  for (int k = 0; k < 8; k++) {
    fix f;
    fix_open(&f, 1);
    rt_aggr_desc *a = rt_aggrs(f.sp);
    rt_thread *th = blk(&f, 0);
    for (uint32_t i = 1; !th->ready && i < 4; i++)
      th = blk(&f, i);
    rt_table *t = rt_table_of(th, a);
    rt_bucket *b = NULL;
    for (uint32_t i = 0; i < 64 && !b; i++) {
      rt_bucket *c = (rt_bucket *)((char *)(t + 1) + i * a->bucket_size);
      if (c->gen == a->gen) b = c;
    }
    assert_non_null(b);
    const char *why = "";
    switch (k) {
    case 0: a->table_off += 64, why = "descriptor"; break;
    case 1: rt_bags(f.sp)->cap = 1u << 30, why = "descriptor"; break;
    case 2: t->arena_used = 0xfffffff0u, why = "table counters"; break;
    case 3: rt_bsoffs(b, a)[0] = 0x7fffffff, why = "string key"; break;
    case 4: memset(rt_thread_strs(th)[1], 'x', RT_STR), why = "not terminated"; break;
    case 5: th->self_off += 64, why = "block offset"; break;
    case 6: memset(rt_base(f.sp) + f.sp->off_str_init, 'y', RT_STR),
            why = "not terminated"; break;
    case 7: th->ready = 0, why = "never set up"; break;
    }
    want_check(&f, why);
    fix_close(&f);
  }
}

/* The hit path's own bounds: a scribbled arena offset or arena counter in
 * this thread's table makes an insert miss or refuse, not read or write
 * outside the arena. */
static void test_aggr_robust(void **state) {
  (void)state;
  fix f;
  fix_open(&f, 0);
  rt_thread *th = rt_thread_get(f.sp, 100);
  rt_aggr_desc *a = rt_aggrs(f.sp);
  rt_table *t = rt_table_of(th, a);
  for (uint32_t i = 0; i < 64; i++) {
    rt_bucket *c = (rt_bucket *)((char *)(t + 1) + i * a->bucket_size);
    if (c->gen == a->gen) rt_bsoffs(c, a)[0] = 0xfffffff0u;
  }
  uint64_t ik = 0;
  const char *k[1] = {"key"};
  assert_int_equal(rt_aggr_inc(th, 0, &ik, k), 0); /* a new bucket */
  t->arena_used = 0xfffffff8u;
  const char *k2[1] = {"other"};
  assert_int_equal(rt_aggr_inc(th, 0, &ik, k2), -1); /* refused */
  fix_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean),
      cmocka_unit_test(test_head_far),
      cmocka_unit_test(test_head_behind),
      cmocka_unit_test(test_record_length),
      cmocka_unit_test(test_stream),
      cmocka_unit_test(test_drainer_state_private),
      cmocka_unit_test(test_stamps),
      cmocka_unit_test(test_garbage_rings),
      cmocka_unit_test(test_garbage_blocks),
      cmocka_unit_test(test_garbage_space),
      cmocka_unit_test(test_check_header),
      cmocka_unit_test(test_check_parts),
      cmocka_unit_test(test_aggr_robust),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
