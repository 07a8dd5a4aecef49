/* Loading a library into a running process through ptrace
 * (src/vmx/inject.c): the way attach mode gets its agent in.  The targets
 * must go on untouched: vt_work with the same output and code bytes,
 * vt_inj checking its own registers, vector state, flags, signal mask,
 * alternate stack and the system call it was blocked in. */
#include <cpuid.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmocka.h>

#include "sym/elfsym.h"
#include "vmx/inject.h"

static char work[1024], inj[1024];

typedef struct tgt {
  pid_t pid;
  FILE *out;
} tgt;

static void start(tgt *t, const char *prog, const char *a1, const char *a2, const char *a3) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  t->pid = fork();
  if (t->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(prog, prog, a1, a2, a3, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  t->out = fdopen(fds[0], "r");
  char line[64];
  assert_non_null(fgets(line, sizeof line, t->out));
  assert_memory_equal(line, "ready", 5);
}

/* The target finishes on its own, prints `want`..., exits 0. */
static void finish(tgt *t, const char *want) {
  char line[128] = "";
  assert_non_null(fgets(line, sizeof line, t->out));
  if (strncmp(line, want, strlen(want))) fail_msg("target said: %s", line);
  int st;
  assert_int_equal(waitpid(t->pid, &st, 0), t->pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  fclose(t->out);
}

/* One load: attach, step out, dlopen lib, call sym(arg). */
static int load(int pid, const char *lib, const char *sym, const char *arg, inj_res *res) {
  char err[256];
  esym_proc *p = esym_open(pid, err, sizeof err);
  if (!p) fail_msg("%s", err);
  const esym_fn *dl = esym_lookup(p, "libc", "dlopen"), *ds = esym_lookup(p, "libc", "dlsym"),
                *de = esym_lookup(p, "libc", "dlerror");
  assert_non_null(dl);
  assert_non_null(ds);
  assert_non_null(de);
  inj_req q = {dl->addr, ds->addr, de->addr, lib, sym, arg, 5000};
  esym_close(p);
  inj_ctx c;
  int rc = inj_attach(&c, pid);
  if (rc == 0 && (rc = inj_step_out(&c, NULL, NULL, 0)) != 0) inj_detach(&c);
  if (rc == 0) rc = inj_load(&c, &q, res);
  if (rc) fprintf(stderr, "%s\n", c.err);
  return rc;
}

static void load_and_call(void **state) {
  (void)state;
  tgt t;
  start(&t, work, "loop", "1.5", "0");
  usleep(200000);
  char err[256];
  esym_proc *p = esym_open(t.pid, err, sizeof err);
  assert_non_null(p);
  uint64_t mul = esym_lookup(p, "vt_work", "work_mul")->addr;
  esym_close(p);
  uint8_t before[32], after[32];
  assert_int_equal(inj_read(t.pid, mul, before, sizeof before), 0);

  inj_res res;
  assert_int_equal(load(t.pid, "libc.so.6", "strlen", "sixteen chars!!!", &res), 0);
  assert_true(res.handle != 0);
  assert_int_equal(res.ret, 16);
  /* a library it did not have; the stub is there already */
  assert_int_equal(load(t.pid, "libelf.so.1", "elf_version", "", &res), 0);
  assert_true(res.handle != 0);
  assert_string_equal(res.why, "");
  p = esym_open(t.pid, err, sizeof err);
  assert_non_null(p);
  assert_non_null(esym_lookup(p, "libelf", "elf_begin"));
  esym_close(p);
  assert_int_equal(inj_read(t.pid, mul, after, sizeof after), 0);
  assert_memory_equal(before, after, sizeof before);
  finish(&t, "done ");
}

/* dlopen's and dlsym's failures come back as dlerror's message. */
static void load_errors(void **state) {
  (void)state;
  tgt t;
  start(&t, work, "loop", "1", "100");
  inj_res res;
  assert_int_equal(load(t.pid, "/nonexistent/libnone.so", "f", "", &res), 0);
  assert_int_equal(res.handle, 0);
  assert_non_null(strstr(res.why, "/nonexistent/libnone.so"));
  assert_int_equal(load(t.pid, "libc.so.6", "no_such_symbol_here", "", &res), 0);
  assert_true(res.handle != 0);
  assert_non_null(strstr(res.why, "no_such_symbol_here"));
  finish(&t, "done ");
}

/* Loads in the middle of whatever the target does: it checks itself. */
static void survive(const char *mode, const char *secs, int loads) {
  tgt t;
  start(&t, inj, mode, secs, NULL);
  for (int i = 0; i < loads; i++) {
    usleep(50000 + (unsigned)rand() % 150000);
    inj_res res;
    assert_int_equal(load(t.pid, "libc.so.6", "strlen", "four", &res), 0);
    assert_int_equal(res.ret, 4);
  }
  char want[32];
  snprintf(want, sizeof want, "ok %s", mode);
  finish(&t, want);
}

static void keeps_fpu(void **state) { (void)state; survive("fpu", "1.5", 5); }
static void keeps_threads(void **state) { (void)state; survive("mt", "1.5", 5); }
/* interrupted inside malloc, it must be stepped out before dlopen */
static void steps_out_of_libc(void **state) { (void)state; survive("malloc", "3", 8); }
static void restarts_read(void **state) { (void)state; survive("read", "1.5", 3); }
static void restarts_pause(void **state) { (void)state; survive("pause", "1.5", 3); }
static void restarts_sleep(void **state) { (void)state; survive("sleep", "1.5", 3); }
/* a second load while the first stub still finishes the sleep */
static void restarts_nap(void **state) { (void)state; survive("nap", "1.5", 3); }

/* The facts the frame is built from: the kernel's own XSAVE signal frame
 * says magic1, extended_size = xstate_size + 4, xfeatures = XCR0 and
 * xstate_size = cpuid(0xd, 0).ebx, with magic2 after the area. */
static uint8_t sw[48];
static uint32_t magic2;
static void grab(int sig, siginfo_t *si, void *uv) {
  (void)sig, (void)si;
  const uint8_t *fp = (const uint8_t *)((ucontext_t *)uv)->uc_mcontext.fpregs;
  memcpy(sw, fp + 464, sizeof sw);
  uint32_t size;
  memcpy(&size, sw + 16, 4);
  memcpy(&magic2, fp + size, 4);
}

static void xstate_facts(void **state) {
  (void)state;
  struct sigaction sa = {0};
  sa.sa_sigaction = grab;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGURG, &sa, NULL);
  raise(SIGURG);
  uint32_t m1, ext, size;
  uint64_t feat;
  memcpy(&m1, sw, 4);
  memcpy(&ext, sw + 4, 4);
  memcpy(&feat, sw + 8, 8);
  memcpy(&size, sw + 16, 4);
  unsigned a, b, c, d, lo, hi;
  __cpuid_count(0xd, 0, a, b, c, d);
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0 = (uint64_t)hi << 32 | lo;
  assert_int_equal(m1, 0x46505853);
  assert_int_equal(magic2, 0x46505845);
  assert_int_equal(ext, size + 4);
  if (xcr0 & (3ull << 17)) { /* AMX: the kernel leaves tile data out */
    printf("# AMX: xfeatures %llx, XCR0 %llx\n", (unsigned long long)feat,
           (unsigned long long)xcr0);
    return;
  }
  assert_int_equal(feat, xcr0);
  assert_int_equal(size, b);
}

static void no_process(void **state) {
  (void)state;
  inj_ctx c;
  assert_int_equal(inj_attach(&c, 999999999), -1);
  assert_true(c.err[0] != 0);
}

int main(void) {
  const char *b = getenv("VPROBE_BUILD");
  snprintf(work, sizeof work, "%s/tests/vmx/targets/vt_work", b ? b : "build");
  snprintf(inj, sizeof inj, "%s/tests/vmx/targets/vt_inj", b ? b : "build");
  if (access(work, X_OK) || access(inj, X_OK)) {
    printf("# skip: no targets\n");
    return 77;
  }
  srand((unsigned)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(load_and_call),  cmocka_unit_test(load_errors),
      cmocka_unit_test(keeps_fpu),      cmocka_unit_test(keeps_threads),
      cmocka_unit_test(steps_out_of_libc), cmocka_unit_test(restarts_read),  cmocka_unit_test(restarts_pause),
      cmocka_unit_test(restarts_sleep), cmocka_unit_test(restarts_nap),
      cmocka_unit_test(xstate_facts),
      cmocka_unit_test(no_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
