/* Probe names to points (src/vmx/vmx_resolve.c), resolved in this test
 * program itself: kinds, addresses, expanded names, globs, aliases, the
 * target-free probes, the errors, and the symbol table for vmxstack. */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmx/vmx.h"

__attribute__((noinline)) int rtest_alpha(int x) { return x * 5 + 1; }
__attribute__((noinline)) int rtest_beta(int x) { return x * 7 + 3; }
__attribute__((noinline)) int rtest_gamma(int x) { return x * 11 + 5; }

/* glibc's memmove/mempcpy in small: rroom_plus jumps to a label 3 bytes
 * into rroom_add; rroom_mix has a boundary at +2. */
long rroom_add(long a, long b);
long rroom_plus(long a, long b);
int rroom_mix(int a, int b);
__asm__(".text\n"
        ".globl rroom_plus\n.type rroom_plus,@function\n"
        "rroom_plus: lea 1000(%rdi),%rax\n jmp .Lrroom_body\n"
        ".size rroom_plus,.-rroom_plus\n"
        ".p2align 4\n.globl rroom_add\n.type rroom_add,@function\n"
        "rroom_add: mov %rdi,%rax\n.Lrroom_body: add %rsi,%rax\n ret\n"
        ".size rroom_add,.-rroom_add\n"
        ".p2align 4\n.globl rroom_mix\n.type rroom_mix,@function\n"
        "rroom_mix: mov %edi,%eax\n add %esi,%eax\n imul %eax,%eax\n add $7,%eax\n ret\n"
        ".size rroom_mix,.-rroom_mix\n");

static esym_proc *proc;
static char self[64];

static vp_image *compile(const char *text) {
  vp_limits lim;
  vp_limits_default(&lim);
  vp_diag d;
  memset(&d, 0, sizeof d);
  vp_image *img = vp_compile(text, strlen(text), "<test>", &lim, &d);
  if (!img) fail_msg("%s", d.error);
  return img;
}

/* Resolve text; 0 and the plan, or -1 and err. */
static int resolve(const char *text, vmx_plan *pl, char *err) {
  vp_image *img = compile(text);
  int rc = vmx_resolve(pl, img, proc, err, 256);
  vp_image_free(img);
  return rc;
}

static const char *pname(const vmx_plan *pl, uint32_t i) {
  return pl->str + pl->pts[i].name_off;
}

static void test_enter_exit(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256], want[128];
  assert_int_equal(resolve("(vprobe VMX:ENTER:rtest_alpha (printf \"a\"))\n"
                           "(vprobe VMX:EXIT:rtest_beta (printf \"b\"))\n",
                           &pl, err), 0);
  assert_int_equal(pl.npts, 2);
  assert_int_equal(pl.pts[0].kind, VMX_PT_ENTER);
  assert_int_equal(pl.pts[0].probe, 0);
  assert_int_equal(pl.pts[0].addr, (uint64_t)(uintptr_t)&rtest_alpha);
  snprintf(want, sizeof want, "VMX:ENTER:%s.rtest_alpha", self);
  assert_string_equal(pname(&pl, 0), want);
  assert_int_equal(pl.pts[1].kind, VMX_PT_EXIT);
  assert_int_equal(pl.pts[1].probe, 1);
  assert_int_equal(pl.pts[1].addr, (uint64_t)(uintptr_t)&rtest_beta);
  assert_int_equal(pl.only_load, 0);
  vmx_plan_free(&pl);
}

static void test_globs_and_modules(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256], text[256];
  assert_int_equal(resolve("(vprobe VMX:ENTER:rtest_* (printf \"x\"))", &pl, err), 0);
  assert_int_equal(pl.npts, 3);
  for (uint32_t i = 1; i < pl.npts; i++) assert_true(pl.pts[i - 1].addr < pl.pts[i].addr);
  vmx_plan_free(&pl);
  /* module-qualified, with globs on both sides */
  snprintf(text, sizeof text, "(vprobe VMX:ENTER:%s.rtest_g?mma (printf \"x\"))", self);
  assert_int_equal(resolve(text, &pl, err), 0);
  assert_int_equal(pl.npts, 1);
  assert_int_equal(pl.pts[0].addr, (uint64_t)(uintptr_t)&rtest_gamma);
  vmx_plan_free(&pl);
  assert_int_equal(resolve("(vprobe VMX:ENTER:libc.getppi? (printf \"x\"))", &pl, err), 0);
  assert_int_equal(pl.npts, 1);
  assert_int_equal(pl.pts[0].addr, (uint64_t)(uintptr_t)&getppid);
  assert_string_equal(pname(&pl, 0), "VMX:ENTER:libc.getppid");
  vmx_plan_free(&pl);
  /* aliases at one address give one point, under the public name */
  assert_int_equal(resolve("(vprobe VMX:ENTER:libc.*nanosleep (printf \"x\"))", &pl, err), 0);
  for (uint32_t i = 0; i < pl.npts; i++) {
    assert_null(strstr(pname(&pl, i), "__"));
    if (i) assert_true(pl.pts[i - 1].addr != pl.pts[i].addr);
  }
  vmx_plan_free(&pl);
  /* a libc function is not in the test program */
  snprintf(text, sizeof text, "(vprobe VMX:ENTER:%s.getppid (printf \"x\"))", self);
  assert_int_equal(resolve(text, &pl, err), -1);
}

static void test_offset_addr(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256], text[256];
  uint64_t a = (uint64_t)(uintptr_t)&rtest_alpha;
  /* the second instruction of rtest_alpha, and a byte inside the first
   * one longer than a byte (if any) */
  vmx_insn in;
  uint64_t second = 0, inside = 0;
  assert_int_equal(vmx_insn_at((const uint8_t *)(uintptr_t)a, 16, a, 1, &in) >= 0, 1);
  second = in.len ? in.start + in.len : 1;
  for (uint64_t o = 1; o < 12 && !inside; o++)
    if (vmx_insn_at((const uint8_t *)(uintptr_t)a, 32, a, o, &in) == 1) inside = o;
  snprintf(text, sizeof text,
           "(vprobe VMX:OFFSET:rtest_alpha:0x%llx (printf \"x\"))\n"
           "(vprobe VMX:0x%llx (printf \"y\"))", (unsigned long long)second,
           (unsigned long long)a);
  assert_int_equal(resolve(text, &pl, err), 0);
  assert_int_equal(pl.npts, 2);
  assert_int_equal(pl.pts[0].kind, VMX_PT_OFFSET);
  assert_int_equal(pl.pts[0].addr, a + second);
  snprintf(text, sizeof text, ".rtest_alpha:0x%llx", (unsigned long long)second);
  assert_non_null(strstr(pname(&pl, 0), text));
  assert_int_equal(pl.pts[1].kind, VMX_PT_ADDR);
  assert_int_equal(pl.pts[1].addr, a);
  vmx_plan_free(&pl);
  assert_int_equal(resolve("(vprobe VMX:OFFSET:rtest_alpha:0x100000 (printf \"x\"))", &pl, err), -1);
  assert_non_null(strstr(err, "past the end of rtest_alpha"));
  assert_int_equal(resolve("(vprobe VMX:0x10 (printf \"x\"))", &pl, err), -1);
  assert_non_null(strstr(err, "not in any mapped object"));
  /* inside an instruction: refused, by offset and by address */
  if (inside) {
    snprintf(text, sizeof text, "(vprobe VMX:OFFSET:rtest_alpha:0x%llx (printf \"x\"))",
             (unsigned long long)inside);
    assert_int_equal(resolve(text, &pl, err), -1);
    assert_non_null(strstr(err, ": inside the instruction at rtest_alpha+0x"));
    assert_non_null(strstr(err, "; nearest boundaries +0x"));
    snprintf(text, sizeof text, "(vprobe VMX:0x%llx (printf \"x\"))",
             (unsigned long long)(a + inside));
    assert_int_equal(resolve(text, &pl, err), -1);
    assert_non_null(strstr(err, ": inside the instruction at rtest_alpha+0x"));
  }
  /* the vDSO and libc's signal return are never probed */
  snprintf(text, sizeof text, "(vprobe VMX:0x%llx (printf \"x\"))",
           (unsigned long long)getauxval(AT_SYSINFO_EHDR));
  assert_int_equal(resolve(text, &pl, err), -1);
  assert_non_null(strstr(err, "in [vdso], never probed"));
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGUSR2, NULL, &old);
  snprintf(text, sizeof text, "(vprobe VMX:0x%llx (printf \"x\"))",
           (unsigned long long)(uintptr_t)old.sa_restorer);
  assert_int_equal(resolve(text, &pl, err), -1);
  assert_non_null(strstr(err, "never probed: signal return"));
  assert_int_equal(resolve("(vprobe VMX:ENTER:ld-linux*.__tls_get_addr (printf \"x\"))", &pl, err), -1);
  assert_non_null(strstr(err, "never probed: thread-local storage access"));
  assert_int_equal(resolve("(vprobe VMX:ENTER:ld-linux*.__tls_get_add? (printf \"x\"))", &pl, err), -1);
  assert_non_null(strstr(err, ": every match skipped (1: "));
}

/* The decoder on known bytes: boundaries, the instruction named, bytes
 * that do not decode, running out. */
static void test_insn_at(void **st) {
  (void)st;
  /* push rbp; mov rbp, rsp; mov eax, [rdi+0x10]; ret */
  static const uint8_t code[] = {0x55, 0x48, 0x89, 0xe5, 0x8b, 0x47, 0x10, 0xc3};
  vmx_insn in;
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 0, &in), 0);
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 1, &in), 0);
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 2, &in), 1);
  assert_int_equal(in.start, 1);
  assert_int_equal(in.len, 3);
  assert_string_equal(in.text, "mov rbp, rsp");
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 6, &in), 1);
  assert_int_equal(in.start, 4);
  assert_string_equal(in.text, "mov eax, [rdi+0x10]");
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 7, &in), 0);
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 8, &in), 0);
  assert_int_equal(vmx_insn_at(code, sizeof code, 0x1000, 9, &in), -1); /* ran out */
  static const uint8_t bad[] = {0x90, 0x06, 0x90}; /* push es: not in 64-bit mode */
  assert_int_equal(vmx_insn_at(bad, sizeof bad, 0, 2, &in), -1);
  assert_int_equal(in.start, 1);
}

/* Extents: the symbol's size, else up to the next function of the same
 * module, else the module's end; the function holding an address; the
 * never-probed list. */
static void test_extent_never(void **st) {
  (void)st;
  esym_mod mods[2] = {
    {.path = "/x/libz.so", .name = "libz", .lo = 0x1000, .hi = 0x2000},
    {.path = "/x/" VMX_AGENT_LIB, .name = "libvpagent", .lo = 0x2000, .hi = 0x3000},
  };
  esym_fn fns[] = {
    {0x1000, 0x10, "a", 0, 0}, {0x1100, 0, "b", 0, 0}, {0x1180, 0, "__restore_rt", 0, 0},
    {0x1190, 0x10, "c", 0, ESYM_SIGRETURN}, {0x2000, 0, "d", 1, 0},
  };
  esym_proc p = {.pid = 1, .mods = mods, .nmods = 2, .fns = fns, .nfns = 5};
  assert_int_equal(vmx_fn_extent(&p, &fns[0]), 0x10);
  assert_int_equal(vmx_fn_extent(&p, &fns[1]), 0x80);
  assert_int_equal(vmx_fn_extent(&p, &fns[2]), 0x10);
  assert_int_equal(vmx_fn_extent(&p, &fns[4]), 0x1000); /* to the module's end */
  assert_ptr_equal(vmx_fn_at(&p, 0x100f), &fns[0]);
  assert_null(vmx_fn_at(&p, 0x1010)); /* between a's end and b */
  assert_ptr_equal(vmx_fn_at(&p, 0x117f), &fns[1]);
  assert_ptr_equal(vmx_fn_at(&p, 0x2fff), &fns[4]);
  assert_null(vmx_fn_at(&p, 0xfff));
  assert_null(vmx_never(&p, &fns[0]));
  assert_string_equal(vmx_never(&p, &fns[2]), "signal return");
  assert_string_equal(vmx_never(&p, &fns[3]), "signal return");
  assert_string_equal(vmx_never(&p, &fns[4]), "the vprobe agent itself");
}

/* IFUNCs are probed at the implementation this process calls. */
static void test_ifunc(void **st) {
  (void)st;
  size_t (*volatile my_strlen)(const char *) = strlen;
  vmx_plan pl;
  char err[256];
  assert_int_equal(resolve("(vprobe VMX:ENTER:libc.strlen (printf \"x\"))", &pl, err), 0);
  assert_int_equal(pl.npts, 1);
  Dl_info di; /* a sanitizer's strlen is not libc's */
  if (dladdr((void *)(uintptr_t)my_strlen, &di) && strstr(di.dli_fname, "/libc.so"))
    assert_int_equal(pl.pts[0].addr, (uint64_t)(uintptr_t)my_strlen);
  assert_string_equal(pname(&pl, 0), "VMX:ENTER:libc.strlen");
  vmx_plan_free(&pl);
}

static void test_timers(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256];
  assert_int_equal(resolve("(vprobe VMXLoad (printf \"l\"))\n"
                           "(vprobe VMXUnload (printf \"u\"))\n", &pl, err), 0);
  assert_int_equal(pl.npts, 2);
  assert_int_equal(pl.pts[0].kind, VMX_PT_TIMER);
  assert_int_equal(pl.pts[0].addr, 0);
  assert_int_equal(pl.pts[1].addr, UINT64_MAX);
  assert_int_equal(pl.only_load, 1);
  vmx_plan_free(&pl);
  assert_int_equal(resolve("(vprobe VMX1Hz (printf \"1\"))\n"
                           "(vprobe VMX10Hz (printf \"2\"))\n"
                           "(vprobe USEC:250 (printf \"3\"))\n"
                           "(vprobe VMX:PROFILE:7msec (printf \"4\"))\n", &pl, err), 0);
  assert_int_equal(pl.npts, 4);
  assert_int_equal(pl.pts[0].addr, 1000000000ull);
  assert_int_equal(pl.pts[1].addr, 100000000ull);
  assert_int_equal(pl.pts[2].addr, 250000ull);
  assert_int_equal(pl.pts[3].kind, VMX_PT_PROFILE);
  assert_int_equal(pl.pts[3].addr, 7000000ull);
  assert_string_equal(pname(&pl, 3), "VMX:PROFILE:7msec");
  assert_int_equal(pl.only_load, 0);
  vmx_plan_free(&pl);
}

static void test_no_match(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256], want[128];
  assert_int_equal(resolve("(vprobe VMX:ENTER:rtest_alpha (printf \"x\"))\n"
                           "(vprobe VMX:ENTER:nosuch (printf \"x\"))", &pl, err), -1);
  snprintf(want, sizeof want, "VMX:ENTER:nosuch: no function matches in process %d",
           (int)getpid());
  assert_string_equal(err, want);
}

static void test_syms(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256], want[128];
  assert_int_equal(resolve("(vprobe VMXLoad (printf \"l\"))", &pl, err), 0);
  assert_true(pl.nsyms > 1000); /* libc's at least */
  int found = 0;
  for (uint32_t i = 0; i < pl.nsyms; i++) {
    if (i) assert_true(pl.syms[i - 1].addr < pl.syms[i].addr);
    if (pl.syms[i].addr == (uint64_t)(uintptr_t)&rtest_beta) {
      snprintf(want, sizeof want, "%s.rtest_beta", self);
      assert_string_equal(pl.str + pl.syms[i].name_off, want);
      found = 1;
    }
  }
  assert_true(found);
  vmx_plan_free(&pl);
}

/* Room: how far a jump at a point may reach before a byte other code
 * jumps to (a label targeted from another function, a symbol, another
 * point of the plan). */
static void test_rooms(void **st) {
  (void)st;
  vmx_plan pl;
  char err[256];
  assert_int_equal(rroom_plus(1, 2), 1003);
  assert_int_equal(resolve("(vprobe VMX:ENTER:rroom_add (printf \"a\"))\n"
                           "(vprobe VMX:ENTER:rroom_plus (printf \"p\"))\n"
                           "(vprobe VMX:ENTER:rroom_mix (printf \"m\"))\n"
                           "(vprobe VMX:OFFSET:rroom_mix:0x2 (printf \"o\"))\n"
                           "(vprobe VMXLoad (printf \"l\"))\n", &pl, err), 0);
  assert_int_equal(pl.npts, 5);
  assert_int_equal(pl.pts[0].room, 3); /* the label rroom_plus jumps to */
  /* rroom_plus: its 9 bytes, then padding up to rroom_add (a symbol) */
  assert_int_equal(pl.pts[1].room, (uint64_t)(uintptr_t)&rroom_add -
                                   (uint64_t)(uintptr_t)&rroom_plus);
  assert_int_equal(pl.pts[2].room, 2); /* the OFFSET point */
  assert_true(pl.pts[3].room >= 5 && pl.pts[3].room <= 14);
  assert_int_equal(pl.pts[4].room, 0); /* not code */
  vmx_plan_free(&pl);

  /* the sweep of libc, timed: once per module and run */
  int m = -1;
  for (int i = 0; i < proc->nmods; i++)
    if (strcmp(proc->mods[i].name, "libc") == 0) m = i;
  assert_true(m >= 0);
  struct timespec t0, t1;
  uint64_t *tg;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long n = vmx_code_targets(proc, m, &tg);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  printf("# libc sweep: %ld targets in %.1f ms\n", n, ms);
  assert_true(n > 10000);
  for (long i = 1; i < n; i++) assert_true(tg[i - 1] < tg[i]);
  /* getpid's start (a symbol) is one */
  uint64_t mc = (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
  int seen = 0;
  for (long i = 0; i < n && !seen; i++) seen = tg[i] == mc;
  assert_true(seen);
  free(tg);
}

int main(void) {
  char err[256];
  esym_modname(program_invocation_name, self, sizeof self);
  proc = esym_open(getpid(), err, sizeof err);
  if (!proc) {
    printf("%s\n", err);
    return 1;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_enter_exit), cmocka_unit_test(test_globs_and_modules),
    cmocka_unit_test(test_offset_addr), cmocka_unit_test(test_timers),
    cmocka_unit_test(test_no_match),    cmocka_unit_test(test_syms),
    cmocka_unit_test(test_insn_at),     cmocka_unit_test(test_extent_never),
    cmocka_unit_test(test_ifunc),       cmocka_unit_test(test_rooms),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  esym_close(proc);
  return rc;
}
