/* The space: thread blocks claimed once per tid, initial values, the
 * thread limit, shared integers, and attaching a second mapping of the same
 * memory (as vprobe does with a probed process's space) to drain there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtt.h"

static const uint64_t int_init[] = {7, 0, 0xffffffffffffffffull};
static const char *const str_init[] = {"hello", NULL};
static const uint64_t shared_init[] = {42};
static const rt_aggr_shape shapes[] = {{1, 1}};
static const char *const names[] = {"ioStats"};
static const uint32_t bag_sizes[] = {8};

static rt_layout layout(void) {
  rt_layout l = {0};
  l.nints = 3;
  l.int_init = int_init;
  l.nstrs = 2;
  l.str_init = str_init;
  l.nshared = 1;
  l.shared_init = shared_init;
  l.naggrs = 1;
  l.aggrs = shapes;
  l.aggr_names = names;
  l.nbags = 1;
  l.bag_sizes = bag_sizes;
  l.max_threads = 4;
  l.ring_bytes = 8192;
  l.aggr_buckets = 32;
  return l;
}

static void test_threads(void **state) {
  (void)state;
  rt_layout l = layout();
  void *mem;
  rt_space *sp = rtt_space(&l, &mem);
  assert_non_null(sp);
  rt_thread *a = rt_thread_get(sp, 100);
  assert_non_null(a);
  assert_ptr_equal(rt_thread_space(a), sp);
  assert_ptr_equal(rt_thread_get(sp, 100), a);
  uint64_t *ints = rt_thread_ints(a);
  assert_int_equal(ints[0], 7);
  assert_int_equal(ints[2], 0xffffffffffffffffull);
  assert_string_equal(rt_thread_strs(a)[0], "hello");
  assert_string_equal(rt_thread_strs(a)[1], "");
  ints[0] = 8;
  assert_int_equal(rt_thread_ints(rt_thread_get(sp, 100))[0], 8);
  rt_thread *b = rt_thread_get(sp, 0); /* tid 0 is a tid like any other */
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  assert_int_equal(rt_thread_ints(b)[0], 7);
  assert_non_null(rt_thread_get(sp, 5));
  assert_non_null(rt_thread_get(sp, 6));
  assert_null(rt_thread_get(sp, 7)); /* all 4 blocks taken */
  assert_int_equal(rt_dropped(sp), 1);
  assert_ptr_equal(rt_thread_get(sp, 0), b);
  assert_int_equal(*rt_shared_int(sp, 0), 42);
  __atomic_fetch_add(rt_shared_int(sp, 0), 1, __ATOMIC_SEQ_CST);
  assert_int_equal(*rt_shared_int(sp, 0), 43);
  /* too small, or not a space */
  assert_null(rt_space_init(mem, rt_space_size(&l) - 1, &l));
  char junk[4096] = {1, 2, 3};
  assert_null(rt_space_attach(junk, sizeof junk));
  assert_null(rt_space_attach(mem, 100));
  free(mem);
}

static void test_attach(void **state) {
  (void)state;
  rt_layout l = layout();
  size_t n = rt_space_size(&l);
  int fd = memfd_create("vprobe-space", 0);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)n), 0);
  void *m1 = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  void *m2 = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert_true(m1 != MAP_FAILED && m2 != MAP_FAILED && m1 != m2);
  rt_space *probed = rt_space_init(m1, n, &l);
  rt_space *ctl = rt_space_attach(m2, n);
  assert_non_null(probed);
  assert_non_null(ctl);
  assert_int_equal(*rt_shared_int(ctl, 0), 42);

  /* a child process writes through the first mapping... */
  pid_t pid = fork();
  if (pid == 0) {
    rt_thread *th = rt_thread_get(probed, (uint32_t)getpid());
    uint64_t k = 0x2c;
    const char *s[1] = {"READ"};
    for (int i = 0; i < 3; i++)
      rt_aggr_add(th, 0, &k, s, 7);
    rt_emit(th, RT_OUT, "from child\n", 11);
    rt_aggr_print(th, 0, NULL, 0);
    rt_bag_insert(probed, 0, 5, 55);
    __atomic_fetch_add(rt_shared_int(probed, 0), 1, __ATOMIC_SEQ_CST);
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* ...and the controller drains through the second */
  static rtt_text t;
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_drain(ctl, UINT64_MAX, rtt_sink, &t), 2);
  assert_string_equal(t.out, "from child\n"
                             "intKey0 strKey0  avg  count  min  max    pct%\n"
                             "   0x2c READ       7      3    7    7  100.0%\n");
  uint64_t v = 0;
  assert_int_equal(rt_bag_remove(ctl, 0, 5, &v), 0);
  assert_int_equal(v, 55);
  assert_int_equal(*rt_shared_int(ctl, 0), 43);
  /* the controller can print the aggregate too, from its own block */
  rt_thread *me = rt_thread_get(ctl, 1);
  memset(&t, 0, sizeof t);
  assert_int_equal(rt_aggr_print(me, 0, "%0$=d %1$=s %count$=d", 0), 0);
  rt_drain(ctl, UINT64_MAX, rtt_sink, &t);
  assert_string_equal(t.out, "44 READ 3\n");
  munmap(m1, n);
  munmap(m2, n);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_attach),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
