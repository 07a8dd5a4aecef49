/* test_callgraph.c - what the verifier learns from the call graph, which it
 * computes in one linear pass: the recursive flag of each function, the
 * domain check through calls (per probe, with several domains for USEC:N),
 * and type inference along a chain written callers first. */
#include "vptest.h"

#include "vp/image.h"

/* The recursive flags of the image's functions, as "01..." in order. */
static void recursion(const char *src, const char *want) {
  vt *t = vt_ok(src);
  size_t len;
  const unsigned char *b = vp_image_bytes(t->img, &len);
  vpi_header h;
  memcpy(&h, b, sizeof h);
  char got[64] = "";
  for (uint32_t i = 0; i < h.nfuncs && i < sizeof got - 1; i++) {
    vpi_func f;
    memcpy(&f, b + h.off_func + i * sizeof f, sizeof f);
    got[i] = f.recursive ? '1' : '0';
  }
  assert_string_equal(got, want);
  vt_free(t);
}

static void recursive_flags(void **state) {
  (void)state;
  /* self, a pair, a chain into the pair, a plain chain, the probe */
  recursion("(defun s (n) (cond ((gt n 0) (s (- n 1))) (1 0)))\n"
            "(defun e (n) (cond ((eq n 0) 1) (1 (o (- n 1)))))\n"
            "(defun o (n) (cond ((eq n 0) 0) (1 (e (- n 1)))))\n"
            "(defun in (n) (e n))\n"
            "(defun a () (b))\n(defun b () 1)\n"
            "(vprobe VMXLoad (s 1) (in 2) (a))",
            "1110000");
  /* a cycle of three reached from the middle, and a callee of the cycle */
  recursion("(defun x () (y))\n(defun y () (z) (w))\n(defun z () (x))\n"
            "(defun w () 1)\n(vprobe VMXLoad (y))",
            "11100");
}

static void domains_through_calls(void **state) {
  (void)state;
  /* the first probe in order that reaches a missing built-in is named */
  vt_error("(defun f () (getvmx 0))\n(defun g () (f))\n"
           "(vprobe VMX:ENTER:main (g))\n(vprobe USEC:10 (g))\n"
           "(vprobe GUEST:ENTER:x (g))",
           "t.vp:1:14: error: 'getvmx' is not available in probe 'USEC:10' "
           "(called through 'f')");
  /* USEC:N runs in vprobe or a VM: fine if one of them has it all */
  vt_free(vt_ok("(defun g () (logint 1))\n(vprobe USEC:10 (g))\n"
                "(vprobe VMXLoad (g))"));
}

static void inference_along_a_chain(void **state) {
  (void)state;
  /* each caller comes before its callee: one typing pass per function in
   * source order would need as many passes as the chain is long */
  vt *t = vt_ok("(defun c0 () (c1))\n(defun c1 () (c2))\n(defun c2 () (c3))\n"
                "(defun c3 () \"end\")\n(vprobe VMXLoad (logstr (c0)))");
  vt_free(t);
  vt_error("(defun c0 () (c1))\n(defun c1 () \"s\")\n(vprobe VMXLoad (+ 1 (c0)))",
           "t.vp:3:22: error: expected an integer, got a string");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recursive_flags),
      cmocka_unit_test(domains_through_calls),
      cmocka_unit_test(inference_along_a_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
