/* test_compile.c - Emmett snippets through em_compile_text: the VP forms
 * each language feature must lower to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emmett/emmett.h"
#include "vp/vp.h"

static char *compile(const char *src) {
  char err[1024];
  char *vp = em_compile_text(src, "t.emt", NULL, err, sizeof err);
  if (!vp) fail_msg("compile failed: %s\n--- source ---\n%s", err, src);
  /* What Emmett writes, the VP layer must accept. */
  vp_limits lim;
  vp_limits_default(&lim);
  lim.destructive = 1;
  vp_diag d;
  memset(&d, 0, sizeof d);
  vp_image *img = vp_compile(vp, strlen(vp), "t.vp", &lim, &d);
  if (!img) fail_msg("VP refused: %s\n--- VP ---\n%s", d.error, vp);
  vp_image_free(img);
  return vp;
}

/* Every needle must occur in the VP text, in order. */
static void has(const char *src, ...) {
  char *vp = compile(src);
  va_list ap;
  va_start(ap, src);
  const char *at = vp, *needle;
  while ((needle = va_arg(ap, const char *))) {
    const char *hit = strstr(at, needle);
    if (!hit) {
      va_end(ap);
      fail_msg("missing `%s`\n--- VP ---\n%s", needle, vp);
    }
    at = hit + strlen(needle);
  }
  va_end(ap);
  free(vp);
}

static void lacks(const char *src, const char *needle) {
  char *vp = compile(src);
  if (strstr(vp, needle)) fail_msg("unexpected `%s`\n--- VP ---\n%s", needle, vp);
  free(vp);
}

static void t_printf(void **s) {
  (void)s;
  has("VMXLoad { printf(\"%d\\n\", 6*7); }", "(vprobe VMXLoad", "(printf \"%d\\n\" (* 6 7))",
      NULL);
  has("VMXLoad { printf(\"a\" \"b%s\\n\", \"c\"); }", "(printf \"ab%s\\n\" \"c\")", NULL);
  has("VMXLoad printf(\"x\");", "(vprobe VMXLoad\n  (printf \"x\"))", NULL);
}

static void t_globals(void **s) {
  (void)s;
  has("int a = 5; uint8 b = 0x1ff; int8 c = -1; string s = \"hi\"; pervm int p; "
      "perhost uint64 q = 2; pervmk int r;",
      "(definteger a 5)", "(definteger b 255)", "(definteger c -1)", "(defstring s \"hi\")",
      "(definteger p :pervm)", "(definteger q 2 :perhost)", "(definteger r :pervmk)", NULL);
  has("int q = -7 / 2; int r = -8 >> 1; int t = -1 < 0; uint64 u = -1; int w = (uint64)-1 > 0;",
      "(definteger q -3)", "(definteger r -4)", "(definteger t 1)", "(definteger u -1)",
      "(definteger w 1)", NULL);
  has("aggr a[2][1]; aggr b[3]; bag x[10]; bag y, z;", "(defaggr a 2 1)", "(defaggr b 3 0)",
      "(defbag x 10)", "(defbag y 1024)", "(defbag z 1024)", NULL);
}

static void t_inference(void **s) {
  (void)s;
  has("int exittsc; VMX1Hz { if (exittsc > 0) { lat = TSC - exittsc; } name = \"x\"; }",
      "(definteger lat)", "(defstring name)", "(setint lat (- TSC exittsc))",
      "(setstr name \"x\")", NULL);
}

static void t_aggr(void **s) {
  (void)s;
  has("aggr calls[0][0]; VMXLoad { calls++; calls[]++; } VMXUnload { printa(calls); }",
      "(aggrinc calls () ())", "(printa calls 1)", NULL);
  has("aggr a[1][1]; VMXLoad { a[\"k\", 3] <- 7; } VMXUnload { printa(a, \"%d %s\"); logaggr(a); "
      "clearaggr(a); }",
      "(aggr a (3) (\"k\") 7)", "(printa a \"%d %s\")", "(logaggr a)", "(clearaggr a)", NULL);
  lacks("aggr a[1]; VMXLoad { a[1] <- 2; a[2]++; } VMXUnload { printa(a); }", "(printa a 1)");
  has("aggr t[0][1]; VMXLoad { t[PROBENAME]++; } VMXUnload { logaggr(t, 1); }",
      "(aggrinc t () (PROBENAME))", "(logaggr t 1)", NULL);
}

static void t_bags(void **s) {
  (void)s;
  has("bag b[8]; VMXLoad { int k, v; b[1] <- 2; v = b[1]; foreach (k, v) in b { "
      "printf(\"%d %d\\n\", k, v); } }",
      "(bagput b 1 2)", "(setint v (bagremove b 1))", "(foreach b k v", NULL);
}

static void t_ints(void **s) {
  (void)s;
  has("int8 a; uint16 b; uint64 u; int i; VMXLoad { a = 300; b = 70000; a++; i = i / 2; "
      "u = u / 2; i = i >> 1; u = u >> 1; if (i < 0) {} if (u < 1) {} i = -5; i = ~i; }",
      "(setint a (sext 8 300))", "(setint b (zext 16 70000))", "(setint a (sext 8 (+ a 1)))",
      "(s/ i 2)", "(/ u 2)", "(s>> i 1)", "(>> u 1)", "(s< i 0)", "(< u 1)", "(setint i -5)",
      "(~ i)", NULL);
  has("VMXLoad { int x = 1; x += 2; x -= 1; x *= 3; x /= 2; x %= 5; x <<= 1; x >>= 1; "
      "x &= 7; x |= 8; x ^= 1; y = x++ + ++x; }",
      "(setint x (+ x 2))", "(setint x (- x 1))", "(setint x (* x 3))", "(setint x (s/ x 2))",
      "(setint x (s% x 5))", "(setint x (<< x 1))", "(setint x (s>> x 1))", "(setint x (& x 7))",
      "(setint x (| x 8))", "(setint x (^ x 1))", "(- (setint x (+ x 1)) 1)", NULL);
  has("VMXLoad { x = 1 ? 2 : 3; y = 1 && 0 || !2; z = 1 << 2 | 3 & 4 ^ 5; w = (1, 2); }",
      "(? 1 2 3)", "(|| (&& 1 0) (! 2))", "(| (<< 1 2) (^ (& 3 4) 5))", "(do 1 2)", NULL);
}

static void t_strings(void **s) {
  (void)s;
  has("VMXLoad { string a; a = \"x\\ty\\\\\\\"\"; if (a == \"b\") {} if (a != PROBENAME) {} "
      "c = strcmp(a, \"z\"); sprintf(a, \"%d-%s\", 1, a); }",
      "(setstr a \"x\\ty\\\\\\\"\")", "(== a \"b\")", "(!= a PROBENAME)", "(strcmp a \"z\")",
      "(sprintf a \"%d-%s\" 1 a)", NULL);
}

static void t_control(void **s) {
  (void)s;
  has("VMXLoad { int i; for (i = 0; i < 3; i++) { if (i == 1) continue; if (i == 2) break; } "
      "while (i) i--; do { i++; } while (i < 5); }",
      "(setint i 0)", "(for (s< i 3) (setint i (+ i 1))", "(continue)", "(break)",
      "(while i", "(setint i (- i 1))", "(dowhile (s< i 5)", NULL);
  has("VMXLoad { if (1) x = 1; else if (2) x = 2; else x = 3; }", "(cond", "(1\n", "(setint x 1)",
      "(2\n", "(setint x 2)", "(1\n", "(setint x 3)", NULL);
  has("VMXLoad { try { x = 1; } catch (MemAccessError, BagFullError) { x = 2; } catch { x = 3; } }",
      "(try", "(catch (MemAccessError BagFullError)", "(catch ()", NULL);
  has("VMXLoad { if (1) return; }", "(return)", NULL);
}

static void t_functions(void **s) {
  (void)s;
  has("int squareSum(int n) { if (n == 0) { return 0; } else { return n * n + squareSum(n - 1); } }"
      " uint8 low(int v) { return v; } VMXLoad { printf(\"%d %d\\n\", squareSum(3), low(0x1ff)); }",
      "(defun squareSum ((int n))", "(return (+ (* n n) (squareSum (- n 1))))",
      "(defun low ((int v))", "(return (zext 8 v))", NULL);
  /* A function named like a built-in keeps working under another name. */
  has("string curprocname() { return \"me\"; } VMXLoad { printf(\"%s\", curprocname()); }",
      "(defun curprocname_1 ()", "(curprocname_1)", NULL);
  /* Prototypes are accepted; calls may precede definitions anyway. */
  has("int f(int);\nVMXLoad { x = f(2) + g(); }\nint f(int a) { return a + 1; }\nint g() { return 1; }",
      "(setint x (+ (f 2) (g)))", "(defun f ((int a))", NULL);
  /* A local that shadows a global is renamed. */
  has("int x; VMXLoad { int x; x = 2; }", "(let ((int x_1))", "(setint x_1 2)", NULL);
  /* Names VP cannot take: all capitals (VP's own) get `v_`; names too long
   * are cut to 40 bytes, `_N` behind when the cut ones meet; an
   * all-capitals cut of a longer name gets `v_` too. */
  has("VMXLoad { RIPX = 1; }", "(setint v_RIPX 1)", NULL);
  char v40[41], src[512], w1[64], w2[64], w3[64];
  memset(v40, 'V', 40);
  v40[40] = 0;
  snprintf(src, sizeof src, "VMXLoad { %s%s_a = 1; %s%s_b = 2; %s%s_rval = 3; }", v40, v40,
           v40, v40, v40, v40);
  snprintf(w1, sizeof w1, "(setint v_%s 1)", v40);
  snprintf(w2, sizeof w2, "(setint v_%s_1 2)", v40);
  snprintf(w3, sizeof w3, "(setint v_%s_2 3)", v40);
  has(src, w1, w2, w3, NULL);
}

static void t_memory(void **s) {
  (void)s;
  has("struct S { int a; uint32 b; int16 c; char name[8]; struct S *next; };"
      "VMX:ENTER:f { struct S *p = ARG0; x = p->b + p->c; y = p->next->a; z = p[2].a; "
      "w = &p->next; v = &p[1]; string n; n = (string)p->name; int *q = ARG1; q = q + 2; }",
      "(setint p ARG0)", "(load 4 (+ p 8))", "(sext 16 (load 2 (+ p 12)))",
      "(load 8 (load 8 (+ p 24)))", "(load 8 (+ p 64))", "(setint w (+ p 24))",
      "(setint v (+ p 32))", "(loadstr _str (+ p 14))", "(setint q (+ q 16))", NULL);
  has("typedef struct PRDA { @0x54 uint32 lastIntIdx; uint16 x @0x60; } PRDA;"
      "VMX:ENTER:f { PRDA *p = ARG0; x = p->lastIntIdx + p->x + sizeof(PRDA); }",
      "(load 4 (+ p 84))", "(load 2 (+ p 96))", NULL);
  has("memmodel guest64; void bt() { for (rbp = RBP; rbp; rbp = *(uint64*)rbp) "
      "printf(\"%#x\\n\", *(uint64*)(rbp + 8)); }",
      "(setint rbp RBP)", "(for rbp (setint rbp (load 8 rbp :guest))",
      "(load 8 (+ rbp 8) :guest)", NULL);
  has("VMX:ENTER:f { char *s = ARG0; memmodel vmk { x = *s; } y = *s; string t = (string)s; }",
      "(sext 8 (load 1 s :vmk))", "(sext 8 (load 1 s))", "(loadstr _str s)", NULL);
  has("VMX:ENTER:f { char *s = ARG0; { memmodel guestphys; x = *s; } y = *s; }",
      "(sext 8 (load 1 s :guestphys))", "(setint y (sext 8 (load 1 s)))", NULL);
  has("union U { int a; uint8 b; }; VMX:ENTER:f { union U *u = ARG0; x = u->b; y = sizeof(union U); }",
      "(load 1 u)", "(setint y 8)", NULL);
}

static void t_probes(void **s) {
  (void)s;
  has("VMX:ENTER:libc.mall*(int fd, void *buf, uint32 n) { printf(\"%d %u\\n\", fd, n); }",
      "(vprobe VMX:ENTER:libc.mall*", "(int fd ARG0) (int buf ARG1) (int n (zext 32 ARG2))",
      NULL);
  has("USEC:1001 { x = 1; }\nVMX:OFFSET:work:0x1a{ y = 2; }", "(vprobe USEC:1001",
      "(vprobe VMX:OFFSET:work:0x1a", NULL);
}

static void t_shared(void **s) {
  (void)s;
  has("pervm int ctr; perhost int lock; VMXLoad { fetchadd(ctr, 1); if (!cmpxchg(lock, 0, 1)) "
      "{ ctr = ctr + 1; } writeint(ctr, 8); }",
      "(fetchadd ctr 1)", "(! (cmpxchg lock 0 1))", "(setint ctr (+ ctr 1))", "(writeint ctr 8)",
      NULL);
}

static void t_misc(void **s) {
  (void)s;
  has("enum E { A, B = 5, C }; VMXLoad { x = A + B + C + sizeof(int) + 'a' + 010 + 0x10; }",
      "(+ (+ (+ (+ (+ (+ 0 5) 6) 8) 97) 8) 0x10)", NULL);
  has("#line 1 \"x.emt\"\nVMXLoad { // comment\n x = 1; /* c */ }", "(setint x 1)", NULL);
}

/* Preloads are compiled ahead of the script, positions intact. */
static void t_preload(void **s) {
  (void)s;
  char path[] = "/tmp/emmett_preloadXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs("int helper(int x) { return x * 2; }\n", f);
  fclose(f);
  const char *pre[] = {path};
  em_opts o;
  memset(&o, 0, sizeof o);
  o.preloads = pre;
  o.npreloads = 1;
  char err[1024];
  char *vp = em_compile_text("VMXLoad { printf(\"%d\\n\", helper(21)); }", "s.emt", &o, err,
                             sizeof err);
  assert_non_null(vp);
  assert_non_null(strstr(vp, "(defun helper ((int x))"));
  assert_non_null(strstr(vp, "(helper 21)"));
  free(vp);
  vp = em_compile_text("VMXLoad {\n  y = ;\n}", "s.emt", &o, err, sizeof err);
  assert_null(vp);
  assert_string_equal(err, "s.emt:2:7: error: expected expression before ';'");
  unlink(path);
}

/* Bag and aggregate parameters: one copy of the function per tuple of
 * global containers, the container parameters dropped from the VP. */
static void t_bag_params(void **s) {
  (void)s;
  has("bag started[16];\nvoid printbag(bag b) { int key, val;\n"
      "  foreach (key, val) in b { printf(\"%d: %d\\n\", key, val); } }\n"
      "VMXLoad { printbag(started); }",
      "(defun printbag__started ()", "(foreach started key val", "(printbag__started)", NULL);
  lacks("bag q;\nvoid pb(bag b) { }\nVMXLoad { pb(q); }", "(defun pb ");
  /* one copy per distinct tuple, reused; scalar parameters stay */
  has("bag x, y;\nint n(bag b, int d) { int k, v, c; foreach (k, v) in b c++; return c + d; }\n"
      "VMXLoad { n(x, 1); n(y, 2); n(x, 3); }",
      "(defun n__x ((int d))", "(defun n__y ((int d))", "(n__x 1)", "(n__y 2)", "(n__x 3)", NULL);
  lacks("bag x, y;\nint n(bag b) { return 0; }\nVMXLoad { n(x); n(x); }",
        "n__x_1");
  /* recursion reuses its own copy; a copy passes its bag on */
  has("bag x;\nint r(bag b, int d) { if (d > 0) return r(b, d - 1); return b[d]; }\n"
      "void outer(bag c) { r(c, 3); }\nVMXLoad { outer(x); }",
      "(defun r__x ((int d))", "(return (r__x (- d 1)))", "(bagremove x d)",
      "(defun outer__x ()", "(r__x 3)", "(outer__x)", NULL);
  /* several containers, aggregates checked against each one's shape */
  has("aggr a[1], s[0][1];\nbag q;\n"
      "void f(aggr g, bag b, aggr h) { g[1]++; h[\"k\"] <- b[1]; printa(h); }\n"
      "VMXLoad { f(a, q, s); }",
      "(defun f__a__q__s ()", "(aggrinc a (1) ())", "(aggr s () (\"k\") (bagremove q 1))",
      "(printa s)", "(f__a__q__s)", NULL);
  /* counts-only aggregates seen through a parameter still print counts */
  has("aggr c[1];\nvoid bump(aggr g, int k) { g[k]++; }\nVMXLoad { bump(c, 2); printa(c); }",
      "(aggrinc c (k) ())", "(printa c 1)", NULL);
  /* a local may shadow a bag parameter */
  has("bag x;\nint f(bag b) { int b = 4; return b; }\nVMXLoad { f(x); }", "(return b)", NULL);
  /* calls may come before the function */
  has("bag x;\nVMXLoad { f(x); }\nvoid f(bag b) { b[1] <- 2; }", "(defun f__x ()",
      "(bagput x 1 2)", NULL);
}

/* Programs of any shape compile without crashing: deep nesting is refused. */
static void t_limits(void **s) {
  (void)s;
  size_t n = 100000;
  char *src = malloc(n * 2 + 64), err[512];
  strcpy(src, "VMXLoad { x = ");
  size_t at = strlen(src);
  for (size_t i = 0; i < n; i++) src[at++] = '(';
  src[at++] = '1';
  for (size_t i = 0; i < n; i++) src[at++] = ')';
  strcpy(src + at, "; }");
  assert_null(em_compile_text(src, "t.emt", NULL, err, sizeof err));
  assert_non_null(strstr(err, "nesting too deep"));
  at = strlen("VMXLoad { x = ");
  for (size_t i = 0; i < n; i++) src[at++] = '-';
  strcpy(src + at, "1; }");
  assert_null(em_compile_text(src, "t.emt", NULL, err, sizeof err));
  assert_non_null(strstr(err, "nesting too deep"));
  free(src);
  /* 150 levels are fine. */
  char ok[1024] = "VMXLoad { x = ";
  at = strlen(ok);
  for (int i = 0; i < 150; i++) ok[at++] = '(';
  ok[at++] = '1';
  for (int i = 0; i < 150; i++) ok[at++] = ')';
  strcpy(ok + at, "; }");
  char *vp = compile(ok);
  free(vp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_printf),    cmocka_unit_test(t_globals), cmocka_unit_test(t_inference),
      cmocka_unit_test(t_aggr),      cmocka_unit_test(t_bags),    cmocka_unit_test(t_ints),
      cmocka_unit_test(t_strings),   cmocka_unit_test(t_control), cmocka_unit_test(t_functions),
      cmocka_unit_test(t_memory),    cmocka_unit_test(t_probes),  cmocka_unit_test(t_shared),
      cmocka_unit_test(t_misc),      cmocka_unit_test(t_limits),   cmocka_unit_test(t_preload),
      cmocka_unit_test(t_bag_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
