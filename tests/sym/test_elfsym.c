/* Symbols of live processes: this test program itself, a forked child, libc,
 * and the vt_work target when it is built. */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sym/elfsym.h"

__attribute__((noinline)) int esym_test_probe_me(int x) { return x * 3 + 1; }
static __attribute__((noinline, used)) int local_helper(int x) { return x - 1; }

static void test_modname(void **st) {
  (void)st;
  char b[64];
  esym_modname("/lib/x86_64-linux-gnu/libc.so.6", b, sizeof b);
  assert_string_equal(b, "libc");
  esym_modname("/usr/lib/x86_64-linux-gnu/libssl.so.3", b, sizeof b);
  assert_string_equal(b, "libssl");
  esym_modname("/lib64/ld-linux-x86-64.so.2", b, sizeof b);
  assert_string_equal(b, "ld-linux-x86-64");
  esym_modname("/usr/bin/qemu-system-x86_64", b, sizeof b);
  assert_string_equal(b, "qemu-system-x86_64");
  esym_modname("/opt/x/libfoo.so", b, sizeof b);
  assert_string_equal(b, "libfoo");
  esym_modname("/usr/lib/x86_64-linux-gnu/libelf-0.188.so", b, sizeof b);
  assert_string_equal(b, "libelf");
  esym_modname("/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0", b, sizeof b);
  assert_string_equal(b, "libglib");
  esym_modname("/lib/libc-2.31.so", b, sizeof b);
  assert_string_equal(b, "libc");
  esym_modname("/opt/x/my-tool-2", b, sizeof b);
  assert_string_equal(b, "my-tool-2");
  esym_modname("/opt/x/my.sock", b, sizeof b);
  assert_string_equal(b, "my.sock");
}

static void check_self(esym_proc *p) {
  /* our own functions, a global and a static one */
  const esym_fn *f = esym_lookup(p, NULL, "esym_test_probe_me");
  assert_non_null(f);
  assert_int_equal(f->addr, (uint64_t)(uintptr_t)&esym_test_probe_me);
  assert_true(p->mods[f->mod].is_exe);
  assert_string_equal(p->mods[f->mod].name, program_invocation_short_name);
  f = esym_lookup(p, program_invocation_short_name, "local_helper");
  assert_non_null(f);
  assert_int_equal(f->addr, (uint64_t)(uintptr_t)&local_helper);
  /* libc, by module and unqualified; a PIE's &getppid is libc's (not
   * malloc: sanitizers put their own in front of it) */
  f = esym_lookup(p, "libc", "getppid");
  assert_non_null(f);
  assert_int_equal(f->addr, (uint64_t)(uintptr_t)&getppid);
  assert_string_equal(p->mods[f->mod].name, "libc");
  assert_ptr_equal(esym_lookup(p, NULL, "getppid"), f);
  assert_non_null(esym_lookup(p, "libc", "malloc"));
  f = esym_lookup(p, "libc", "dlopen");
  assert_non_null(f);
  assert_null(esym_lookup(p, "libc", "esym_test_probe_me"));
  assert_null(esym_lookup(p, NULL, "no_such_function_anywhere"));
  /* address to function */
  f = esym_at(p, (uint64_t)(uintptr_t)&esym_test_probe_me + 2);
  assert_non_null(f);
  assert_string_equal(f->name, "esym_test_probe_me");
  f = esym_at(p, (uint64_t)(uintptr_t)&getppid + 1);
  assert_non_null(f);
  assert_int_equal(f->addr, (uint64_t)(uintptr_t)&getppid);
  /* sorted, and every function inside its module */
  for (size_t i = 1; i < p->nfns; i++) assert_true(p->fns[i - 1].addr <= p->fns[i].addr);
  for (size_t i = 0; i < p->nfns; i++) {
    int m = p->fns[i].mod;
    assert_true(p->fns[i].addr >= p->mods[m].lo && p->fns[i].addr < p->mods[m].hi);
  }
}

static void test_self(void **st) {
  (void)st;
  char err[256];
  esym_proc *p = esym_open(getpid(), err, sizeof err);
  assert_non_null(p);
  check_self(p);
  esym_close(p);
}

static void test_child(void **st) {
  (void)st;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t c = fork();
  if (c == 0) {
    char b;
    close(fds[1]);
    (void)!read(fds[0], &b, 1); /* until the parent is done */
    _exit(0);
  }
  close(fds[0]);
  char err[256];
  esym_proc *p = esym_open(c, err, sizeof err);
  assert_non_null(p);
  check_self(p); /* same layout after fork */
  assert_int_equal(p->pid, c);
  esym_close(p);
  close(fds[1]);
  int s;
  waitpid(c, &s, 0);
}

static void test_errors(void **st) {
  (void)st;
  char err[256] = "";
  assert_null(esym_open(999999999, err, sizeof err));
  assert_non_null(strstr(err, "999999999"));
  int n = 0;
  assert_int_equal(esym_elf_funcs("/etc/hostname", NULL, &n), -1);
}

static void test_static(void **st) {
  (void)st;
  assert_int_equal(esym_elf_is_static("/bin/true"), 0);
  assert_int_equal(esym_elf_is_static("/etc/hostname"), 0);
  if (access("/bin/busybox", R_OK) == 0) /* busybox-static */
    assert_int_equal(esym_elf_is_static("/bin/busybox"), 1);
}

static void count_cb(void *ctx, const char *name, uint64_t v, uint64_t sz) {
  (void)v; (void)sz;
  if (strcmp(name, "work_add") == 0 || strcmp(name, "work_mul") == 0 ||
      strcmp(name, "work_tick") == 0)
    ++*(int *)ctx;
}

/* The vt_work target: its three work functions, from the file and live. */
static void test_target(void **st) {
  (void)st;
  const char *b = getenv("VPROBE_BUILD");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/vmx/targets/vt_work", b ? b : "build");
  if (access(path, X_OK) != 0) skip();
  int n = 0;
  assert_true(esym_elf_funcs(path, count_cb, &n) > 3);
  assert_int_equal(n, 3);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t c = fork();
  if (c == 0) {
    dup2(fds[1], 1);
    execl(path, path, "loop", "5", "1000", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char line[64] = "";
  assert_true(read(fds[0], line, sizeof line - 1) > 0); /* "ready" */
  char err[256];
  esym_proc *p = esym_open(c, err, sizeof err);
  assert_non_null(p);
  const esym_fn *f = esym_lookup(p, "vt_work", "work_add");
  assert_non_null(f);
  assert_true(f->size > 0);
  int m = esym_mod_at(p, f->addr);
  assert_int_equal(m, f->mod);
  assert_true(p->mods[m].is_exe);
  assert_non_null(esym_lookup(p, "libc", "write"));
  esym_close(p);
  kill(c, SIGKILL);
  int s;
  waitpid(c, &s, 0);
  close(fds[0]);
}

/* IFUNCs sit at the implementation this process uses (what the address of
 * strlen is here), with an extent from the FDE; the rt_sigreturn mark;
 * the code as the file has it. */
static void test_ifunc_extent(void **st) {
  (void)st;
  size_t (*volatile my_strlen)(const char *) = strlen;
  void *(*volatile my_memset)(void *, int, size_t) = memset;
  char err[256];
  esym_proc *p = esym_open(getpid(), err, sizeof err);
  assert_non_null(p);
  const esym_fn *f = esym_lookup(p, "libc", "strlen");
  assert_non_null(f);
  Dl_info di; /* a sanitizer's strlen and memset are not libc's */
  int real = dladdr((void *)(uintptr_t)my_strlen, &di) && strstr(di.dli_fname, "/libc.so");
  if (real) assert_int_equal(f->addr, (uint64_t)(uintptr_t)my_strlen);
  assert_true(f->flags & ESYM_IFUNC);
  assert_true(f->size > 16 && f->size < 65536);
  assert_true(f->flags & ESYM_FDE_SIZE);
  f = esym_lookup(p, "libc", "memset");
  assert_non_null(f);
  if (real) assert_int_equal(f->addr, (uint64_t)(uintptr_t)my_memset);
  /* no IFUNC stays at its resolver: none is in the unresolved list here
   * but the ones that resolve outside libc (the vDSO's time functions) */
  for (size_t i = 0; i < p->nunresolved; i++)
    assert_true(strstr(p->unresolved[i].name, "time") || strstr(p->unresolved[i].name, "cpu"));
  /* code read from the file is the code in memory (nothing is patched) */
  uint8_t a[32];
  f = esym_lookup(p, NULL, "esym_test_probe_me");
  assert_int_equal(esym_code(p, f->addr, a, sizeof a), sizeof a);
  assert_memory_equal(a, (const void *)(uintptr_t)f->addr, sizeof a);
  static const uint8_t sig[] = {0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05};
  assert_true(esym_is_sigreturn(sig, sizeof sig));
  assert_false(esym_is_sigreturn(sig, sizeof sig - 1));
  assert_false(esym_is_sigreturn(a, sizeof a));
  esym_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ifunc_extent),
    cmocka_unit_test(test_modname), cmocka_unit_test(test_self),
    cmocka_unit_test(test_child),   cmocka_unit_test(test_errors),
    cmocka_unit_test(test_static),  cmocka_unit_test(test_target),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
