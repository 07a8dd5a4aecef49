/* test_read.c - the VP reader: literals, comments, and the exact
 * FILE:LINE:COL of the first syntax error. */
#include "vptest.h"
#include "vp/read.h"

static vpr_node *rd(const char *s, char *err) {
  return vpr_read(s, strlen(s), "r.vp", err, 512);
}

static void literals(void **state) {
  (void)state;
  char err[512];
  vpr_node *t = rd("; comment\n(a -1 +5 0xFF 0Xa \"x\\n\\t\\\\\\\"\\q\" tsc-start"
                   " a.b 1abc - :kw) ; trailing", err);
  assert_non_null(t);
  assert_int_equal(t->nkids, 1);
  vpr_node *l = t->kids[0];
  assert_int_equal(l->line, 2);
  assert_int_equal(l->col, 1);
  assert_int_equal(l->nkids, 11);
  assert_int_equal(l->kids[1]->kind, VPR_INT);
  assert_true(l->kids[1]->ival == UINT64_MAX);
  assert_int_equal(l->kids[2]->ival, 5);
  assert_int_equal(l->kids[3]->ival, 255);
  assert_int_equal(l->kids[4]->ival, 10);
  assert_int_equal(l->kids[5]->kind, VPR_STR);
  assert_string_equal(l->kids[5]->s, "x\n\t\\\"q");
  assert_int_equal(l->kids[6]->kind, VPR_NAME);
  assert_string_equal(l->kids[6]->s, "tsc-start");
  assert_string_equal(l->kids[8]->s, "1abc");
  assert_int_equal(l->kids[9]->kind, VPR_NAME);
  assert_string_equal(l->kids[10]->s, ":kw");
  assert_int_equal(l->kids[6]->line, 2);
  assert_int_equal(l->kids[6]->col, 33);
  vpr_free(t);
}

static void errors(void **state) {
  (void)state;
  char err[512];
  assert_null(rd("(vprobe VMXLoad\n  (printf \"x\")", err));
  assert_string_equal(err, "r.vp:1:1: error: unterminated list");
  assert_null(rd("(a (b\n   (c d)", err));
  assert_string_equal(err, "r.vp:1:4: error: unterminated list");
  assert_null(rd("(a b))", err));
  assert_string_equal(err, "r.vp:1:6: error: unexpected ')'");
  assert_null(rd("\n  (printf \"abc)", err));
  assert_string_equal(err, "r.vp:2:11: error: unterminated string");
  assert_null(rd("(printf \"abc\\", err));
  assert_string_equal(err, "r.vp:1:13: error: bad escape at end of input");
  char big[400];
  memset(big, 'x', sizeof big);
  big[0] = '(';
  big[1] = '"';
  big[300] = '"';
  big[301] = ')';
  big[302] = 0;
  assert_null(rd(big, err));
  assert_string_equal(err, "r.vp:1:2: error: string longer than 255 bytes");
  memset(big, 'n', 70);
  big[70] = 0;
  assert_null(rd(big, err));
  assert_string_equal(err, "r.vp:1:1: error: name longer than 63 bytes");
  assert_null(rd("(x 99999999999999999999)", err));
  assert_string_equal(err, "r.vp:1:4: error: integer literal out of range");
  /* A 255-byte string and a 63-byte name are fine. */
  char ok[300] = "\"";
  memset(ok + 1, 'y', 255);
  strcpy(ok + 256, "\"");
  vpr_node *t = rd(ok, err);
  assert_non_null(t);
  vpr_free(t);
}

static void depth(void **state) {
  (void)state;
  char err[512], s[1000];
  int n = 0;
  for (int i = 0; i < 200; i++)
    s[n++] = '(';
  for (int i = 0; i < 200; i++)
    s[n++] = ')';
  s[n] = 0;
  vpr_node *t = rd(s, err);
  assert_non_null(t);
  vpr_free(t);
  n = 0;
  for (int i = 0; i < 201; i++)
    s[n++] = '(';
  s[n] = 0;
  assert_null(rd(s, err));
  assert_string_equal(err, "r.vp:1:201: error: lists nested deeper than 200");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(literals), cmocka_unit_test(errors),
    cmocka_unit_test(depth)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
