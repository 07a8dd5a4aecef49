/* test_verify.c - the VP verifier: one exact line for the first error,
 * version warnings, limits, domains, destructive built-ins. */
#include "vptest.h"

static void names_and_types(void **state) {
  (void)state;
  vt_error("(vprobe VMXLoad\n  (logint nosuch))",
           "t.vp:2:11: error: unknown variable 'nosuch'");
  vt_error("(vprobe VMXLoad (frob 1))",
           "t.vp:1:18: error: unknown function 'frob'");
  vt_error("(vprobe NoSuchProbe 1)",
           "t.vp:1:9: error: unknown probe 'NoSuchProbe'");
  vt_error("(defun f (a b) (+ a b))\n(vprobe VMXLoad (f 1))",
           "t.vp:2:17: error: 'f' takes 2 arguments, got 1");
  vt_error("(vprobe VMXLoad (+ 1 2 3))",
           "t.vp:1:17: error: '+' takes 2 arguments, got 3");
  vt_error("(vprobe VMXLoad (+ 1 \"a\"))",
           "t.vp:1:22: error: expected an integer, got a string");
  vt_error("(vprobe VMXLoad (logstr 5))",
           "t.vp:1:25: error: expected a string, got an integer");
  vt_error("(defstring s)(vprobe VMXLoad (setint s 1))",
           "t.vp:1:38: error: setint on string variable 's'");
  vt_error("(definteger n)(vprobe VMXLoad (setstr n \"x\"))",
           "t.vp:1:39: error: setstr on integer variable 'n'");
  vt_error("(vprobe VMXLoad (setint TSC 1))",
           "t.vp:1:25: error: cannot assign to built-in 'TSC'");
  vt_error("(definteger x)\n(defstring x)",
           "t.vp:2:12: error: redefinition of 'x'");
  vt_error("(defun f () 1)(defun f () 2)",
           "t.vp:1:22: error: redefinition of 'f'");
  vt_error("(definteger FOO)", "t.vp:1:13: error: name 'FOO' is reserved "
                               "for built-ins");
  vt_error("(defaggr a 1 0)(vprobe VMXLoad (aggr a (1 2) () 1))",
           "t.vp:1:40: error: aggregate 'a' takes 1 integer key, got 2");
  vt_error("(defaggr a 0 1)(vprobe VMXLoad (aggrinc a () ()))",
           "t.vp:1:46: error: aggregate 'a' takes 1 string key, got 0");
  vt_error("(vprobe VMXLoad (break))",
           "t.vp:1:17: error: break outside a loop");
  vt_error("(vprobe VMXLoad (try 1 (catch (NoSuchError) 0)))",
           "t.vp:1:32: error: unknown exception 'NoSuchError'");
  vt_error("(frob)", "t.vp:1:2: error: unknown top-level form 'frob'");
  vt_error("(vprobe VMXLoad (? 1 2 \"x\"))",
           "t.vp:1:17: error: the arms of '?' differ in type");
}

static void inference(void **state) {
  (void)state;
  /* An untyped parameter used as a string becomes a string. */
  vt_expect("(defun show (s) (logstr s))(vprobe VMXLoad (show \"hi\"))", "hi");
  vt_error("(defun show (s) (logstr s))(vprobe VMXLoad (show 5))",
           "t.vp:1:50: error: expected a string, got an integer");
  vt_error("(defun f ((int s)) (logstr s))",
           "t.vp:1:28: error: expected a string, got an integer");
  /* A defun may replace a built-in function (the reference's curprocname). */
  vt_expect("(defun curprocname () \"me\")"
            "(vprobe VMXLoad (logstr (curprocname)))", "me");
}

static void domains(void **state) {
  (void)state;
  vt_error("(vprobe VMXLoad (logint RIP))",
           "t.vp:1:25: error: 'RIP' is not available in probe 'VMXLoad'");
  vt_error("(defun f () (getguest 0))\n(vprobe VMM1Hz (f))\n"
           "(vprobe VMX:ENTER:main (f))",
           "t.vp:1:14: error: 'getguest' is not available in probe "
           "'VMX:ENTER:main' (called through 'f')");
  vt *t = vt_new("(defun f () (getguest 0))(vprobe VMM1Hz (f))"
                 "(vprobe GUEST:ENTER:x (logint (f)))", NULL);
  assert_non_null(t->img);
  vt_free(t);
  vt_error("(vprobe VMX:ENTER:f (setgpr 0 1))",
           "t.vp:1:22: error: destructive built-in 'setgpr' needs "
           "--destructive");
  vp_limits lim;
  vp_limits_default(&lim);
  lim.destructive = 1;
  t = vt_new("(vprobe VMX:ENTER:f (setgpr 0 1))", &lim);
  assert_non_null(t->img);
  vt_free(t);
}

static void versions(void **state) {
  (void)state;
  vt_error("(version \"2.0\")(vprobe VMXLoad 1)",
           "t.vp:1:1: error: script needs VP version 2.0; this engine runs "
           "1.0");
  vt *t = vt_new("(version \"0.2\")\n(vprobe VMXLoad (logint 1))", NULL);
  assert_non_null(t->img);
  assert_string_equal(t->diag.warning,
                      "t.vp:1:1: warning: script is for VP version 0.2, this "
                      "engine runs 1.0; running anyway");
  vt_fire(t, "VMXLoad");
  assert_string_equal(t->out, "1");
  vt_free(t);
  t = vt_new("(version \"1.3\")(vprobe VMXLoad 1)", NULL);
  assert_non_null(t->img);
  assert_string_equal(t->diag.warning,
                      "t.vp:1:1: warning: script is for VP version 1.3 and "
                      "may use features this engine (1.0) lacks; running "
                      "anyway");
  vt_free(t);
  t = vt_new("(version \"1.0\")(vprobe VMXLoad 1)", NULL);
  assert_non_null(t->img);
  assert_string_equal(t->diag.warning, "");
  vt_free(t);
  vt_error("(version \"x\")", "t.vp:1:10: error: bad version \"x\" (want "
                              "\"MAJOR.MINOR\")");
}

static void limits(void **state) {
  (void)state;
  vp_limits lim;
  vp_limits_default(&lim);
  lim.max_probes = 2;
  vt *t = vt_new("(vprobe VMXLoad 1)(vprobe VMX1Hz 1)\n(vprobe VMX10Hz 1)",
                 &lim);
  assert_null(t->img);
  assert_string_equal(t->diag.error,
                      "t.vp:2:1: error: more than 2 probes (--max-probes)");
  vt_free(t);
  vp_limits_default(&lim);
  lim.max_code = 512;
  char src[4096] = "(vprobe VMXLoad";
  for (int i = 0; i < 100; i++)
    strcat(src, " (+ 1 2)");
  strcat(src, ")");
  t = vt_new(src, &lim);
  assert_null(t->img);
  assert_true(strstr(t->diag.error, "exceeds the limit of 512 (--max-code)"));
  vt_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(names_and_types), cmocka_unit_test(inference),
    cmocka_unit_test(domains), cmocka_unit_test(versions),
    cmocka_unit_test(limits)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
