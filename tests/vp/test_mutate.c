/* test_mutate.c - mutated VP text (deleted, replaced, duplicated and cut
 * characters) never crashes the reader, the verifier or, when it still
 * verifies, the interpreter.  Meant for the ASan/UBSan build too. */
#include "vptest.h"

static const char *const progs[] = {
  "(definteger n 7)(definteger sh 0 :perhost)(defstring s \"init\")"
  "(defaggr a 1 1)(defbag b 4)"
  "(defun f (x (string t)) (setstr t \"f\") (cond ((> x 2) (+ x (f (- x 1) "
  "t))) (1 x)))(defun g () (sprintf s \"%d-%s\" n PROBENAME) s)"
  "(vprobe VMXLoad (let ((int i 0) (string u \"z\")) (while (< i 5) "
  "(setint i (+ i 1)) (aggr a (i) (u) i) (try (/ 1 (- i 3)) (catch () "
  "(printf \"c\"))))) (printf \"%d %s %s\\n\" (f 4 s) (g) s) (fetchadd sh 2)"
  " (baginsert b 1 2) (foreach b n n (logint n)))"
  "(vprobe VMX1Hz (logaggr a) (try (load 8 0) (catch () 0)) (load 4 8) "
  "(printa a \"%d\" 1) (clearaggr a))",
  "(defun fact (n) (cond ((<= n 1) 1) (1 (* n (fact (- n 1))))))"
  "(vprobe VMXLoad (logint (fact 20)) (let ((int i 0)) (for (< i 10) "
  "(setint i (+ i 1)) (cond ((== i 3) (continue))) (cond ((== i 6) "
  "(break))) (logint i))) (dowhile 0 1) (? 1 \"a\" \"b\") (return 5))",
  "(defstring p)(defun fill (str n) (cond ((< n 4096) (setstr str "
  "\"<NULL>\")) (1 (getgueststr str n))))(vprobe VMM1Hz (fill p 0) "
  "(logstr p) (sext 8 255) (zext 16 -1) (s/ -7 2) (writeint 5 4) "
  "(cmpxchg q 1 2) (getsystemtime x))(definteger q :pervm)(definteger x)",
};

static void mutate(void **state) {
  (void)state;
  char buf[4096];
  int compiled = 0;
  srand(7);
  for (int it = 0; it < 4000; it++) {
    const char *p = progs[rand() % 3];
    size_t n = strlen(p), plen = n;
    memcpy(buf, p, n + 1);
    for (int k = 1 + rand() % 4; k > 0; k--) {
      size_t i = (size_t)rand() % n;
      switch (rand() % 4) {
      case 0: /* delete a character */
        memmove(buf + i, buf + i + 1, n - i);
        n--;
        break;
      case 1: /* replace one */
        buf[i] = "()\" ;ab1-sS0x\\"[rand() % 14];
        break;
      case 2: { /* insert a piece of the original */
        size_t l = 1 + (size_t)rand() % 10, j = (size_t)rand() % (plen - l);
        if (n + l < sizeof buf - 1) {
          memmove(buf + i + l, buf + i, n - i + 1);
          memcpy(buf + i, p + j, l);
          n += l;
        }
        break;
      }
      default: { /* cut a run */
        size_t j = i + (size_t)rand() % 20;
        if (j < n) {
          memmove(buf + i, buf + j, n - j + 1);
          n -= j - i;
        }
      }
      }
    }
    vt *t = calloc(1, sizeof *t);
    vp_limits lim;
    vp_limits_default(&lim);
    t->img = vp_compile(buf, n, "m.vp", &lim, &t->diag);
    if (!t->img) {
      assert_true(strncmp(t->diag.error, "m.vp:", 5) == 0);
      free(t);
      continue;
    }
    compiled++;
    vt_space(t);
    for (int q = 0; q < vp_image_nprobes(t->img); q++) {
      vp_fire f;
      memset(&f, 0, sizeof f);
      f.probe = q;
      vp_run(t->th, t->img, &f);
    }
    vt_drain(t);
    vt_free(t);
  }
  print_message("mutations: %d of 4000 verified and ran\n", compiled);
  assert_true(compiled > 0);
}

static void empty(void **state) {
  (void)state;
  vt *t = vt_ok("; nothing but a comment");
  assert_int_equal(vp_image_nprobes(t->img), 0);
  vt_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(empty),
                                     cmocka_unit_test(mutate)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
