/* Unit tests of the kallsyms tables: parsing, lookups both ways, globs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sym/ksym.h"

static const char text[] =
    "0000000000000000 A fixed_percpu_data\r\n"
    "000000000001f000 A jiffies_percpu\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81000000 T startup_64\n"
    "ffffffff810b0f40 T __x64_sys_getpid\n"
    "ffffffff810b0f70 t do_getpid_helper\n"
    "ffffffff8134a350 t do_sys_openat2\n"
    "ffffffff8134a5e0 T do_sys_open\n"
    "ffffffff81400000 T start_kernel\n"
    "ffffffff82a079c0 D jiffies\n"
    "ffffffff82a079c0 D jiffies_64\n"
    "ffffffff832b4000 b idt_table\n"
    "ffffffff83400000 D init_task\n"
    "ffffffffc0200000 t ext4_sync_fs\t[ext4]\n"
    "ffffffffc0100000 t do_sys_openat2\t[fakemod]\n";

static ksym_table *load(void) {
  char err[256];
  ksym_table *t = ksym_parse(text, sizeof text - 1, "t.txt", err, sizeof err);
  assert_non_null(t);
  return t;
}

static void test_by_name(void **st) {
  (void)st;
  ksym_table *t = load();
  assert_int_equal(ksym_count(t), 15);
  const ksym *s = ksym_by_name(t, "do_sys_openat2");
  assert_non_null(s);
  assert_true(s->addr == 0xffffffff8134a350ull); /* the image, not the module */
  assert_null(s->module);
  s = ksym_by_name(t, "fakemod:do_sys_openat2");
  assert_non_null(s);
  assert_true(s->addr == 0xffffffffc0100000ull);
  s = ksym_by_name(t, "ext4_sync_fs");
  assert_string_equal(s->module, "ext4");
  assert_int_equal(s->type, 't');
  assert_null(ksym_by_name(t, "nope"));
  assert_true(ksym_is_linux(t));
  ksym_free(t);
}

static void test_by_addr(void **st) {
  (void)st;
  ksym_table *t = load();
  uint64_t off;
  const ksym *s = ksym_by_addr(t, 0xffffffff810b0f45ull, &off);
  assert_string_equal(s->name, "__x64_sys_getpid");
  assert_int_equal(off, 5);
  s = ksym_by_addr(t, 0xffffffff81000000ull, &off);
  assert_string_equal(s->name, "_text"); /* global, sorted by name */
  assert_null(ksym_by_addr(t, 0x1f000, &off)); /* per-CPU offsets never */
  assert_null(ksym_by_addr(t, 0x1000, &off));
  char buf[64];
  assert_string_equal(ksym_format(t, 0xffffffff8134a360ull, buf, sizeof buf),
                      "do_sys_openat2+0x10");
  assert_string_equal(ksym_format(t, 0xffffffff82a079c0ull, buf, sizeof buf), "jiffies");
  assert_string_equal(ksym_format(t, 0x1234, buf, sizeof buf), "0x1234");
  ksym_free(t);
}

static void test_resolve(void **st) {
  (void)st;
  ksym_table *t = load();
  uint64_t a;
  assert_int_equal(ksym_resolve(t, "jiffies", &a), 0);
  assert_true(a == 0xffffffff82a079c0ull);
  assert_int_equal(ksym_resolve(t, "idt_table+0x10", &a), 0);
  assert_true(a == 0xffffffff832b4010ull);
  assert_int_equal(ksym_resolve(t, "0xffffffff81000000", &a), 0);
  assert_true(a == 0xffffffff81000000ull);
  assert_int_equal(ksym_resolve(t, "nope", &a), -1);
  assert_int_equal(ksym_resolve(t, "jiffies+zz", &a), -1);
  ksym_free(t);
}

static int collect(void *ctx, const ksym *s) {
  strcat(ctx, s->name);
  strcat(ctx, ",");
  return 0;
}

static void test_glob(void **st) {
  (void)st;
  ksym_table *t = load();
  char out[256] = "";
  assert_int_equal(ksym_glob(t, "do_sys_*", 1, collect, out), 3);
  assert_string_equal(out, "do_sys_openat2,do_sys_open,do_sys_openat2,");
  out[0] = 0;
  assert_int_equal(ksym_glob(t, "jiffies*", 1, collect, out), 0);
  assert_int_equal(ksym_glob(t, "jiffies*", 0, collect, out), 2); /* 1 address + percpu */
  ksym_free(t);
}

static void test_errors(void **st) {
  (void)st;
  char err[256];
  const char bad[] = "ffffffff81000000 T ok\nzzz\n";
  assert_null(ksym_parse(bad, sizeof bad - 1, "bad.txt", err, sizeof err));
  assert_string_equal(err, "bad.txt:2: bad kallsyms line (want ADDR TYPE NAME [module])");
  assert_null(ksym_load("/nonexistent/kallsyms", err, sizeof err));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_by_name), cmocka_unit_test(test_by_addr),
      cmocka_unit_test(test_resolve), cmocka_unit_test(test_glob),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
