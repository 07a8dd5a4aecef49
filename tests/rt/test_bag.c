/* Bags: full and empty returns, duplicates, iteration, and 4 threads
 * inserting and removing at once with nothing lost or duplicated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "rtt.h"

static const uint32_t sizes[] = {4, 1024};

static rt_space *bag_space(void **mem) {
  rt_layout l = {0};
  l.nbags = 2;
  l.bag_sizes = sizes;
  l.max_threads = 8;
  l.ring_bytes = 4096;
  return rtt_space(&l, mem);
}

static void test_full_empty(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = bag_space(&mem);
  uint64_t v = 0, k;
  assert_int_equal(rt_bag_remove(sp, 0, 1, &v), -1); /* empty */
  assert_int_equal(rt_bag_insert(sp, 0, 1, 10), 0);
  assert_int_equal(rt_bag_insert(sp, 0, 1, 11), 0); /* duplicate key */
  assert_int_equal(rt_bag_insert(sp, 0, 2, 20), 0);
  assert_int_equal(rt_bag_insert(sp, 0, 3, 30), 0);
  assert_int_equal(rt_bag_insert(sp, 0, 4, 40), -1); /* full */
  assert_int_equal(rt_bag_insert(sp, 9, 4, 40), -1); /* no such bag */
  /* iteration sees every pair and leaves them in place */
  uint32_t cur = 0;
  uint64_t ksum = 0, vsum = 0;
  int n = 0;
  while (rt_bag_next(sp, 0, &cur, &k, &v)) {
    ksum += k;
    vsum += v;
    n++;
  }
  assert_int_equal(n, 4);
  assert_int_equal(ksum, 7);
  assert_int_equal(vsum, 71);
  assert_int_equal(rt_bag_remove(sp, 0, 2, &v), 0);
  assert_int_equal(v, 20);
  assert_int_equal(rt_bag_remove(sp, 0, 2, &v), -1);
  uint64_t a = 0, b = 0;
  assert_int_equal(rt_bag_remove(sp, 0, 1, &a), 0);
  assert_int_equal(rt_bag_remove(sp, 0, 1, &b), 0);
  assert_int_equal(a + b, 21);
  assert_int_equal(rt_bag_remove(sp, 0, 1, &v), -1);
  assert_int_equal(rt_bag_insert(sp, 0, 4, 40), 0); /* room again */
  cur = 0;
  n = 0;
  while (rt_bag_next(sp, 0, &cur, &k, &v))
    n++;
  assert_int_equal(n, 2);
  free(mem);
}

/* Each thread inserts a pair under one of 8 shared keys, then removes a
 * pair with that key (often another thread's); afterwards every value is
 * accounted for exactly once. */
#define ROUNDS 200000
typedef struct worker {
  rt_space *sp;
  uint32_t id;
  uint64_t removed_sum, removed, inserted, inserted_sum, full;
} worker;

static void *churn(void *arg) {
  worker *w = arg;
  for (uint64_t i = 0; i < ROUNDS; i++) {
    uint64_t key = i % 8;
    uint64_t val = ((uint64_t)w->id << 32) | i;
    if (rt_bag_insert(w->sp, 1, key, val) == 0) {
      w->inserted++;
      w->inserted_sum += val;
    } else
      w->full++;
    uint64_t v;
    if (rt_bag_remove(w->sp, 1, key, &v) == 0) {
      w->removed++;
      w->removed_sum += v;
    }
  }
  return NULL;
}

static void test_concurrent(void **state) {
  (void)state;
  void *mem;
  rt_space *sp = bag_space(&mem);
  pthread_t t[4];
  worker w[4];
  for (uint32_t i = 0; i < 4; i++) {
    w[i] = (worker){sp, i, 0, 0, 0, 0, 0};
    pthread_create(&t[i], NULL, churn, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  uint64_t inserted = 0, removed = 0, rsum = 0, isum = 0;
  for (int i = 0; i < 4; i++) {
    inserted += w[i].inserted;
    removed += w[i].removed;
    rsum += w[i].removed_sum;
  }
  /* drain what is left */
  uint64_t left = 0, lsum = 0, k, v;
  for (uint64_t key = 0; key < 64; key++)
    while (rt_bag_remove(sp, 1, key, &v) == 0) {
      left++;
      lsum += v;
    }
  uint32_t cur = 0;
  assert_int_equal(rt_bag_next(sp, 1, &cur, &k, &v), 0);
  assert_int_equal(inserted, removed + left);
  /* every value inserted came back exactly once */
  uint64_t full = 0;
  for (int i = 0; i < 4; i++) {
    isum += w[i].inserted_sum;
    full += w[i].full;
  }
  assert_int_equal(isum, rsum + lsum);
  assert_true(inserted + full == 4 * ROUNDS);
  assert_int_equal(full, 0); /* at most a few pairs live at a time */
  assert_true(removed > 3 * ROUNDS);
  free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_empty),
      cmocka_unit_test(test_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
