/* rt_format: integer conversions against the C library's snprintf over
 * every flag combination with many widths, precisions and values; then
 * strings, characters, '*', missing and mismatched arguments, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "rtt.h"

static const char *fmt1(const char *fmt, rt_arg a) {
  static char out[512];
  rt_format(out, sizeof out, fmt, &a, 1);
  return out;
}
#define I(v) ((rt_arg){0, (uint64_t)(v), NULL})
#define S(v) ((rt_arg){1, 0, (v)})

static void test_integers_vs_libc(void **state) {
  (void)state;
  static const uint64_t vals[] = {0, 1, (uint64_t)-1, 42, 0x2c, 7, 8,
                                  0x8000000000000000ull, 0x7fffffffffffffffull,
                                  1234567890123ull, (uint64_t)-987654321};
  static const char *const widths[] = {"", "1", "5", "12", "25"};
  static const char *const precs[] = {"", ".0", ".1", ".5", ".22"};
  static const char convs[] = "diuxXo";
  long checked = 0, bad = 0;
  for (int flags = 0; flags < 32; flags++) {
    char fl[8];
    int n = 0;
    for (int b = 0; b < 5; b++)
      if (flags & (1 << b))
        fl[n++] = "-+ #0"[b];
    fl[n] = 0;
    for (size_t w = 0; w < 5; w++)
      for (size_t p = 0; p < 5; p++)
        for (const char *c = convs; *c; c++) {
          char ours[64], libc[64], want[256];
          snprintf(ours, sizeof ours, "[%%%s%s%s%c]", fl, widths[w], precs[p],
                   *c);
          snprintf(libc, sizeof libc, "[%%%s%s%sll%c]", fl, widths[w],
                   precs[p], *c);
          for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(want, sizeof want, libc, (long long)vals[v]);
#pragma GCC diagnostic pop
            const char *got = fmt1(ours, I(vals[v]));
            const char *got_ll = fmt1(libc, I(vals[v])); /* ll is ignored */
            checked++;
            if (strcmp(got, want) || strcmp(got_ll, want)) {
              if (bad++ < 10)
                printf("%s of %#llx: got '%s' want '%s'\n", ours,
                       (unsigned long long)vals[v], got, want);
            }
          }
        }
  }
  assert_int_equal(bad, 0);
  assert_true(checked > 50000);
}

static void test_strings_and_more(void **state) {
  (void)state;
  assert_string_equal(fmt1("[%s]", S("READ")), "[READ]");
  assert_string_equal(fmt1("[%8s]", S("READ")), "[    READ]");
  assert_string_equal(fmt1("[%-8s]", S("READ")), "[READ    ]");
  assert_string_equal(fmt1("[%.2s]", S("READ")), "[RE]");
  assert_string_equal(fmt1("[%c]", I('A')), "[A]");
  assert_string_equal(fmt1("[%3c]", I('A')), "[  A]");
  assert_string_equal(fmt1("[%-3c]", I('A')), "[A  ]");
  assert_string_equal(fmt1("100%% [%d]", I(5)), "100% [5]");
  assert_string_equal(fmt1("%p", I(0x1000)), "0x1000");
  assert_string_equal(fmt1("%p", I(0)), "0x0");
  assert_string_equal(fmt1("%lu %hhd %zx", I(255)), "255 0 0");
  /* mismatches never crash */
  assert_string_equal(fmt1("[%s]", I(-3)), "[-3]");
  assert_string_equal(fmt1("[%5s]", I(42)), "[   42]");
  assert_string_equal(fmt1("[%d]", S("str")), "[str]");
  assert_string_equal(fmt1("[%d|%s|%x]", I(1)), "[1||0]");
  assert_string_equal(fmt1("[%q]", I(1)), "[%q]");
  assert_string_equal(fmt1("[%", I(1)), "[%");
  assert_string_equal(fmt1("[%s]", (rt_arg){1, 0, NULL}), "[]");
  /* '*' width and precision */
  rt_arg a[3] = {I(6), I(-2), I(42)};
  char out[64];
  rt_format(out, sizeof out, "[%*d]", a + 0, 2);
  assert_string_equal(out, "[    -2]");
  rt_arg b[3] = {I(-6), I(42)};
  rt_format(out, sizeof out, "[%*d]", b, 2);
  assert_string_equal(out, "[42    ]");
  rt_arg c[3] = {I(8), I(3), I(7)};
  rt_format(out, sizeof out, "[%*.*d]", c, 3);
  assert_string_equal(out, "[     007]");
  /* truncation: at most cap-1 bytes and a NUL, returns what was written */
  char small[6];
  assert_int_equal(rt_format(small, sizeof small, "%s", &(rt_arg){1, 0, "abcdefgh"}, 1), 5);
  assert_string_equal(small, "abcde");
  assert_int_equal(rt_format(small, 1, "xyz", NULL, 0), 0);
  assert_string_equal(small, "");
  assert_int_equal(rt_format(NULL, 0, "xyz", NULL, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_integers_vs_libc),
      cmocka_unit_test(test_strings_and_more),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
