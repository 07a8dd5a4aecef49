/* test_exec.c - VP programs run through vp_run on a local rt_space: the
 * reference's examples (with target-free probes) and the extension forms. */
#include <pthread.h>

#include "vptest.h"

#define P(body) "(vprobe VMXLoad " body ")"

static void reference_examples(void **state) {
  (void)state;
  /* cond: the first true clause runs. */
  vt_expect(P("(cond ((== 1 0) (printf \"A\"))\n((== 1 1) (printf \"B\"))\n"
              "(1 (printf \"C\")))"), "B");
  vt_expect(P("(cond ((== 1 0) (printf \"A\"))\n((== 0 1) (printf \"B\")))"),
            "");
  vt_expect(P("(cond ((== 1 0) (printf \"A\"))\n(1 (printf \"B\")))"), "B");
  vt_expect(P("(logint (do (+ 1 1)\n(* 3 3)))"), "9");
  vt_expect("(vprobe VMX1Hz\n(logstr \"Hello world!\\n\"))", "Hello world!\n");
  vt_expect(P("(printf \"This is a \\\"string\\\"\\n\")"
              "(printf \"So's this\\tover here\\n\")"
              "(printf \"A newline in VP is \\\"\\\\n\\\"\\n\")"),
            "This is a \"string\"\nSo's this\tover here\n"
            "A newline in VP is \"\\n\"\n");
  vt_expect("(defstring my-rip)\n(vprobe VMX10Hz\n"
            "(sprintf my-rip \"Current RIP is 0x%016x\\n\" 0x1234)\n"
            "(logstr my-rip))",
            "Current RIP is 0x0000000000001234\n");
  vt_expect("(definteger tickCount 0)\n(vprobe USEC:333333\n"
            "(setint tickCount (+ tickCount 333333))\n"
            "(setint tickCount (+ tickCount 333333))\n"
            "(setint tickCount (+ tickCount 333333))\n"
            "(printf \"%d seconds have elapsed.\\n\" (/ tickCount 1000000)))",
            "0 seconds have elapsed.\n");
  vt_expect("(definteger a 23)(definteger b 0xff)(defstring s \"init\")"
            P("(printf \"%d %x %s\\n\" a b s)"), "23 ff init\n");
  /* The event() example: a string-returning defun, PROBENAME, strcmp. */
  vt_expect("(defun event ()\n(cond ((== 0 (strcmp PROBENAME "
            "\"VMXUnload\"))\n\"Calamity!\")\n(1 ; default case\n\"OK!\")))\n"
            "(vprobe VMX1Hz\n(printf \"Guest status is %s\\n\" (event)))\n"
            "(vprobe VMXUnload\n(printf \"Guest status is %s\\n\" (event)))",
            "Guest status is OK!\nGuest status is Calamity!\n");
  vt_expect("(defun add-two (a b)\n(+ a b))" P("(logint (add-two 40 2))"),
            "42");
  /* Device example with a comparison against a global. */
  vt_expect("(defstring device)\n(definteger dl)\n(vprobe VMXLoad\n"
            "(setint dl (& 0x180 0xff))\n(cond ((== dl 0x80)\n"
            "(setstr device \"hard drive\"))\n((== dl 0)\n(setstr device "
            "\"floppy drive\"))\n(1\n(setstr device \"unknown device\")))\n"
            "(printf \"Booting from %s (0x%x)\\n\" device dl))",
            "Booting from hard drive (0x80)\n");
  /* readTime / calculateFreq from the reference: getsystemtime, TSC. */
  vt_expect("(definteger lastTsc 0)(definteger tsc 0)"
            "(definteger lastSystemTime 0)(definteger systemTime 0)"
            "(definteger tscFreq 0)"
            "(defun readTime ()\n(setint lastSystemTime systemTime)\n"
            "(setint lastTsc tsc)\n(getsystemtime systemTime)\n"
            "(setint tsc TSC))\n"
            "(defun calculateFreq (tscDiff systemTimeDiff)\n"
            "(cond ((!= 0 systemTimeDiff)\n"
            "(/ (* 1000000 tscDiff) systemTimeDiff))))\n"
            "(vprobe VMX1Hz\n(readTime)\n(readTime)"
            "(cond ((!= 0 lastTsc)\n(setint tscFreq (calculateFreq (- tsc "
            "lastTsc)\n(- systemTime lastSystemTime)))))\n"
            "(printf \"%d\" (> TSC_HZ 1000000)))",
            "1");
  /* Reference operator examples. */
  vt_expect(P("(printf \"%d %d %d %d %d %d %d %d %d %d %d\" (+ 7 23) "
              "(- 53 0xa) (* 3 4) (/ 10 3) (% 7 2) (<< 1 3) (>> 0x80 7) "
              "(^ 6 3) (| 0x100 0xc00) (& 0xf0 0x3c) (~ 0))"),
            "30 43 12 3 1 8 1 5 3328 48 -1");
  vt_expect(P("(printf \"%d%d%d%d%d%d%d%d%d%d%d\" (&& 1 2) (|| 0 0) (! 5) "
              "(> 2 1) (< 2 1) (>= 2 2) (<= 3 2) (== 4 4) (!= 4 4) "
              "(and 1 0) (not 0))"),
            "10010101001");
  vt_expect(P("(printf \"%d %d\" (add 1 2) (bitand 6 3))"), "3 2");
  vt_expect(P("(printf \"%d\" (== -1 0xffffffffffffffff))"), "1");
}

static void strings(void **state) {
  (void)state;
  vt_expect("(defstring s)" P("(setstr s \"abc\") (printf \"%s %d %d %d\" s "
                              "(strcmp s \"abc\") (s< (strcmp s \"abd\") 0) "
                              "(== s \"abc\"))"),
            "abc 0 1 1");
  /* String parameters are passed by reference (guestloadstr). */
  vt_expect("(defstring p)(defun fill (str n)\n(cond ((< n 4096) "
            "(setstr str \"<NULL>\"))\n(1 (setstr str \"big\"))))"
            P("(fill p 0) (logstr p) (fill p 5000) (logstr p)"),
            "<NULL>big");
  vt_expect("(defun twice ((string s)) (sprintf s \"%s%s\" s s) s)"
            P("(printf \"%s\" (twice \"ab\"))"), "abab");
  vt_expect("(defstring s \"x\")" P("(printf \"[%s][%5s][%-3s]\" PROBENAME "
                                    "s s)"),
            "[VMXLoad][    x][x  ]");
}

static void control(void **state) {
  (void)state;
  vt_expect(P("(let ((int i 0) (int sum 0)) (while (< i 10) (setint sum (+ "
              "sum i)) (setint i (+ i 1))) (logint sum))"),
            "45");
  vt_expect(P("(let ((int i 0)) (for (< i 10) (setint i (+ i 1)) "
              "(cond ((== i 3) (continue))) (cond ((== i 6) (break))) "
              "(logint i)))"),
            "01245");
  vt_expect(P("(let ((int i 5)) (dowhile (< i 3) (logint i) "
              "(setint i (+ i 1))))"),
            "5");
  vt_expect(P("(let ((int i 0)) (while 1 (setint i (+ i 1)) "
              "(cond ((> i 4) (break)))) (logint i))"),
            "5");
  vt_expect(P("(logint (+ 1 (let ((int i 0)) (while 1 (+ 5 (break))) 7)))"),
            "8");
  vt_expect("(defun f (x) (cond ((> x 3) (return 100))) x)"
            P("(printf \"%d %d\" (f 1) (f 9))"), "1 100");
  vt_expect(P("(printf \"a\") (return) (printf \"b\")"), "a");
  vt_expect(P("(printf \"%d %d\" (? 1 2 3) (? 0 2 3))"), "2 3");
  vt_expect(P("(printf \"%s\" (? 0 \"x\" \"y\"))"), "y");
  vt_expect(P("(let ((string s \"hey\") (int n 3)) (printf \"%s%d\" s n))"),
            "hey3");
  vt_expect("(defun fact (n) (cond ((<= n 1) 1) (1 (* n (fact (- n 1))))))"
            P("(logint (fact 20))"), "2432902008176640000");
}

static void signed_ops(void **state) {
  (void)state;
  vt_expect(P("(printf \"%d %d %d %d %d %d\" (s< -1 0) (< -1 0) (s/ -7 2) "
              "(s% -7 2) (s>> -16 2) (>> 0x8000000000000000 63))"),
            "1 0 -3 -1 -4 1");
  vt_expect(P("(printf \"%d %d %d %x %x\" (neg 5) (sext 8 0xff) "
              "(sext 16 0x7fff) (zext 8 -1) (zext 32 -1))"),
            "-5 -1 32767 ff ffffffff");
  vt_expect(P("(printf \"%d %d\" (s>= -3 -3) (s> 2 -2))"), "1 1");
  vt_expect(P("(printf \"%d\" (<< 1 65))"), "2");
}

static void exceptions(void **state) {
  (void)state;
  vt_expect(P("(try (logint (/ 1 0)) (catch (DivisionByZeroError) "
              "(printf \"div\")))"), "div");
  vt_expect(P("(try (logint (% 1 0)) (catch (MemAccessError) (printf \"m\"))"
              " (catch () (printf \"any\")))"), "any");
  vt_expect("(defbag b 1)" P("(try (do (bagput b 1 2) (bagput b 3 4)) "
                             "(catch (BagFullError) (printf \"full\")))"
                             "(try (bagremove b 9) (catch (BagEmptyError) "
                             "(printf \" empty\")))"
                             "(printf \" %d\" (bagremove b 1))"),
            "full empty 2");
  vt_expect("(defun f () (/ 1 0))" P("(try (f) (catch () (printf \"c\")))"
                                     "(printf \"after\")"), "cafter");
  vt_expect(P("(try (while 1 (+ 1 1)) (catch (BudgetExceededError) "
              "(printf \"budget\")))"), "budget");
  vt_expect("(defun r (n) (r (+ n 1)))"
            P("(try (r 0) (catch (StackDepthError) (printf \"deep\")))"),
            "deep");
  /* try inside a loop with break, handler stack stays balanced */
  vt_expect(P("(let ((int i 0)) (while (< i 50) (setint i (+ i 1)) "
              "(try (cond ((== i 40) (break))) (catch () 0))) (logint i))"
              "(try (/ 1 0) (catch () (printf \" ok\")))"),
            "40 ok");
  /* An exception a handler does not list goes to the outer handler. */
  vt_expect(P("(try (try (/ 1 0) (catch (BagFullError) (printf \"in\"))) "
              "(catch (DivisionByZeroError) (printf \"out\")))"), "out");
}

static void uncaught(void **state) {
  (void)state;
  vt *t = vt_ok("(definteger n)(vprobe VMXLoad (while 1 (setint n (+ n 1))))"
                "(vprobe VMX1Hz (printf \"still %d\\n\" (> n 100)))"
                "(vprobe VMX10Hz (logint (/ 5 (- n n))))"
                "(defun r (x) (+ 1 (r x)))"
                "(vprobe VMXUnload (r 1))");
  assert_int_equal(vt_fire(t, "VMXLoad"), VP_EXC_BUDGET);
  assert_string_equal(t->err, "vprobe: VMXLoad: BudgetExceededError: budget "
                              "of 20000 exceeded (runaway loop?)\n");
  assert_int_equal(vt_fire(t, "VMX1Hz"), VP_EXC_NONE);
  assert_string_equal(t->out, "still 1\n");
  t->nerr = 0;
  assert_int_equal(vt_fire(t, "VMX10Hz"), VP_EXC_DIVZERO);
  assert_string_equal(t->err, "vprobe: VMX10Hz: DivisionByZeroError: "
                              "division by zero\n");
  t->nerr = 0;
  assert_int_equal(vt_fire(t, "VMXUnload"), VP_EXC_DEPTH);
  assert_string_equal(t->err, "vprobe: VMXUnload: StackDepthError: call "
                              "depth 64 exceeded\n");
  vt_free(t);
}

static int failing_read(void *self, int model, uint64_t addr, void *buf,
                        size_t n) {
  (void)self;
  (void)model;
  if (addr < 4096)
    return -1;
  memset(buf, 0, n);
  memcpy(buf, &addr, n < 8 ? n : 8);
  if (n > 8) /* strings: "mem" */
    memcpy(buf, "mem", 4);
  return 0;
}

static void memory(void **state) {
  (void)state;
  vp_target tg = {NULL, NULL, failing_read, NULL};
  vt *t = vt_ok("(defstring s)(vprobe VMX:ENTER:f (logint (load 8 0)))"
                "(vprobe VMX:ENTER:g (printf \"%x \" (load 2 0x12345)) "
                "(loadstr s 0x5000) (logstr s)"
                "(try (load 4 16 :vmx) (catch (VmxMemAccessError) "
                "(printf \" caught\"))))");
  assert_int_equal(vt_fire_t(t, "VMX:ENTER:f", &tg), VP_EXC_MEM);
  assert_string_equal(t->err, "vprobe: VMX:ENTER:f: MemAccessError: cannot "
                              "read 8 bytes at 0x0\n");
  assert_int_equal(vt_fire_t(t, "VMX:ENTER:g", &tg), VP_EXC_NONE);
  assert_string_equal(t->out, "2345 mem caught");
  vt_free(t);
}

static void globals(void **state) {
  (void)state;
  vt *t = vt_ok("(definteger n 5)(defstring s \"a\")"
                "(vprobe VMXLoad (setint n (+ n 1)) (setstr s \"b\")"
                " (printf \"%d%s \" n s))");
  vt_fire(t, "VMXLoad");
  vt_fire(t, "VMXLoad");
  assert_string_equal(t->out, "6b 7b ");
  vt_free(t);
}

static void aggregates(void **state) {
  (void)state;
  vt *t = vt_ok("(defaggr a 1 0)(defaggr c 0 0)(defaggr s 0 1)"
                "(vprobe VMXLoad (aggr a (7) () 3) (aggr a (7) () 5) "
                "(aggrinc c () ()) (aggrinc c () ()) (aggr s () (\"k\") 2))"
                "(vprobe VMX1Hz (printa c \"%count$=d\\n\") "
                "(printa a \"%count$=d %sum$=d\\n\") (clearaggr c) "
                "(printa c \"%count$=d\\n\"))");
  vt_fire(t, "VMXLoad");
  vt_fire(t, "VMX1Hz");
  assert_string_equal(t->out, "2\n2 8\n");
  vt_free(t);
}

static void bags(void **state) {
  (void)state;
  vt_expect("(defbag b 8)(definteger k)(definteger v)(definteger sum)"
            P("(baginsert b 1 10) (baginsert b 2 20) (bagput b 3 30)"
              "(foreach b k v (setint sum (+ sum (* k v))))"
              "(printf \"%d %d\" sum (bagremove b 2))"),
            "140 20");
  vt_expect("(defbag b 1)" P("(printf \"%d%d\" (baginsert b 1 1) "
                             "(baginsert b 2 2))"), "10");
}

static void binary(void **state) {
  (void)state;
  vt *t = vt_ok(P("(writeint 0x0102030405060708 8) (writeint 0xabcd 2)"));
  vt_fire(t, "VMXLoad");
  assert_int_equal(t->nbin, 10);
  assert_int_equal(t->bin[0], 8);
  assert_int_equal(t->bin[7], 1);
  assert_int_equal(t->bin[8], 0xcd);
  assert_int_equal(t->bin[9], 0xab);
  vt_free(t);
}

static void builtins(void **state) {
  (void)state;
  vt_expect(P("(printf \"%d %d %d\" (> TSC 0) (> THREADID 0) "
              "(< PCPUID 4096))"), "1 1 1");
  vt_expect(P("(printf \"%d\" (< (- (cycles2ms (* 3 TSC_HZ)) 3000) 2))"),
            "1");
  vt_expect(P("(definteger x)"), ""); /* definteger inside a probe: error */
}

/* Shared integers from 4 threads. */
typedef struct shared_ctx {
  vt *t;
  int tid;
} shared_ctx;

static void *shared_thread(void *p) {
  shared_ctx *c = p;
  rt_thread *th = rt_thread_get(c->t->sp, (uint32_t)c->tid);
  vp_fire f;
  memset(&f, 0, sizeof f);
  f.probe = 0;
  for (int i = 0; i < 10000; i++)
    vp_run(th, c->t->img, &f);
  return NULL;
}

static void shared_ints(void **state) {
  (void)state;
  vt *t = vt_ok("(definteger n 0 :perhost)(definteger m 0 :pervm)"
                "(definteger mine 0)"
                "(vprobe VMXLoad (fetchadd n 1) (setint mine (+ mine 1))"
                " (cmpxchg m 0 7))"
                "(vprobe VMX1Hz (printf \"%d %d %d\" n m mine))");
  pthread_t th[4];
  shared_ctx c[4];
  for (int i = 0; i < 4; i++) {
    c[i] = (shared_ctx){t, 100 + i};
    pthread_create(&th[i], NULL, shared_thread, &c[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  vt_fire(t, "VMX1Hz");
  assert_string_equal(t->out, "40000 7 0");
  vt_free(t);
}


/* The reference's Linux guest library (curprocname as a defun over
 * getguest/getgueststr/offatret), on a fake guest target. */
static int fake_reg(void *self, int reg, uint64_t *v) {
  (void)self;
  if (reg != VP_REG_GSBASE && reg != VP_REG_KERNELGSBASE)
    return -1;
  *v = 0x100000000ull + (uint64_t)reg;
  return 0;
}

static int fake_call(void *self, int fn, const uint64_t *iargs,
                     const char *const *sargs, int nargs, uint64_t *iret,
                     char *sret) {
  (void)self;
  (void)nargs;
  switch (fn) {
  case VP_FN_OFFATRET: *iret = strcmp(sargs[0], "sys_getpid") ? 0 : 0x10; break;
  case VP_FN_OFFATSTRCPY: *iret = 0x20; break;
  case VP_FN_GETGUEST: *iret = iargs[0] == 0x10 + 0x5000 ? 77 : 0x5000; break;
  case VP_FN_GETGUESTSTR:
    strcpy(sret, iargs[1] == 0x5020 ? "bash" : "?");
    *iret = 1;
    break;
  default: return -VP_EXC_MEM;
  }
  return 0;
}

static void reference_library(void **state) {
  (void)state;
  vp_target tg = {NULL, fake_reg, NULL, fake_call};
  vt *t = vt_ok(
    "(defstring _procName)\n(definteger _pidOffset)\n(definteger _nameOffset)\n"
    "(defun guestload (addr)\n(cond\n((< addr 4096) 0) ;; Read null for null references\n"
    "(1 (getguest addr))))\n(defun guestload32 (addr)\n(& 0xFFffffff (guestload addr)))\n"
    "(defun guestloadstr (str addr)\n(cond\n((< addr 4096) (setstr str \"<NULL>\"))\n"
    "(1 (getgueststr str addr))))\n"
    "(defun curthrptr ()\n(cond ((== _pidOffset 0)\n(do\n"
    "(setint _pidOffset (offatret \"sys_getpid\"))\n"
    "(setint _nameOffset (offatstrcpy \"get_task_comm\")))))\n(cond\n"
    "((>= GSBASE 0x100000000) GSBASE)\n(1 KERNELGSBASE)))\n"
    "(defun curprocname ()\n(guestloadstr _procName (+ _nameOffset (guestload (curthrptr)))))\n"
    "(defun curpid ()\n(guestload32 (+ _pidOffset (guestload (curthrptr)))))\n"
    "(defaggr running 1 1)\n(vprobe Guest_IRQ\n(aggr running (ARG0) ((curprocname)) 1)"
    "(printf \"%s %d\" (curprocname) (curpid)))");
  assert_int_equal(vt_fire_t(t, "Guest_IRQ", &tg), VP_EXC_NONE);
  assert_string_equal(t->out, "bash 77");
  vt_free(t);
}

static void usec_reference(void **state) {
  (void)state;
  /* The reference's USEC example verifies (VCPUID: USEC:N samples vCPUs). */
  vt *t = vt_ok("(defaggr a 1 1)\n(vprobe USEC:1001\n(do\n"
                "(aggr a (VCPUID) ((curprocname)) 1)\n(logaggr a 1)))");
  vt_free(t);
}

static int reg_rip(void *self, int reg, uint64_t *v) {
  (void)self;
  if (reg != VP_REG_RIP)
    return -1;
  *v = 0x401000;
  return 0;
}

static void target_probe(void **state) {
  (void)state;
  vp_target tg = {NULL, reg_rip, NULL, fake_call};
  vt *t = vt_ok("(vprobe VMX:ENTER:w* (printf \"%s %x %d %d\" PROBENAME RIP "
                "ARG1 (> THREADID 0)))"
                "(vprobe VMX:ENTER:g (getvmx 5))");
  vp_fire f;
  memset(&f, 0, sizeof f);
  f.probe = 0;
  f.probename = "VMX:ENTER:write";
  f.args[1] = 42;
  f.target = &tg;
  assert_int_equal(vp_run(t->th, t->img, &f), VP_EXC_NONE);
  vt_drain(t);
  assert_string_equal(t->out, "VMX:ENTER:write 401000 42 1");
  /* A target built-in that fails raises its exception. */
  assert_int_equal(vt_fire_t(t, "VMX:ENTER:g", &tg), VP_EXC_MEM);
  assert_string_equal(t->err, "vprobe: VMX:ENTER:g: MemAccessError: getvmx "
                              "failed\n");
  vt_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(reference_examples), cmocka_unit_test(strings),
    cmocka_unit_test(control),  cmocka_unit_test(signed_ops),
    cmocka_unit_test(exceptions), cmocka_unit_test(uncaught),
    cmocka_unit_test(memory),   cmocka_unit_test(globals),
    cmocka_unit_test(aggregates), cmocka_unit_test(bags),
    cmocka_unit_test(binary),   cmocka_unit_test(shared_ints),
    cmocka_unit_test(reference_library), cmocka_unit_test(usec_reference),
    cmocka_unit_test(target_probe),
  };
  (void)builtins;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
