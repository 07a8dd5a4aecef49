/* Calls into a running process through ptrace (src/vmx/inject.c): the way
 * attach mode gets its agent in.  The target is vt_work; it must go on
 * untouched: same exit status, same output, code bytes as before. */
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
#include "vmx/inject.h"

static char target[1024];

typedef struct tgt {
  pid_t pid;
  FILE *out;
} tgt;

static void start(tgt *t, const char *secs, const char *us) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  t->pid = fork();
  if (t->pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(target, target, "loop", secs, us, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  t->out = fdopen(fds[0], "r");
  char line[64];
  assert_non_null(fgets(line, sizeof line, t->out));
  assert_memory_equal(line, "ready", 5);
}

/* The target finishes its loop on its own, prints "done N", exits 0. */
static void finish(tgt *t) {
  char line[64] = "";
  assert_non_null(fgets(line, sizeof line, t->out));
  assert_memory_equal(line, "done ", 5);
  int st;
  assert_int_equal(waitpid(t->pid, &st, 0), t->pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  fclose(t->out);
}

static void run_calls(const char *us) {
  tgt t;
  start(&t, "1.5", us);
  usleep(200000);
  char err[256];
  esym_proc *p = esym_open(t.pid, err, sizeof err);
  assert_non_null(p);
  const esym_fn *mul = esym_lookup(p, "vt_work", "work_mul");
  const esym_fn *sl = esym_lookup(p, "libc", "strlen");
  const esym_fn *dl = esym_lookup(p, "libc", "dlopen");
  assert_non_null(mul);
  assert_non_null(dl);
  uint8_t before[32], after[32];
  uint64_t mul_addr = mul->addr;
  assert_int_equal(inj_read(t.pid, mul_addr, before, sizeof before), 0);

  inj_ctx c;
  assert_int_equal(inj_attach(&c, t.pid), 0);
  uint64_t args[2] = {6, 7}, ret = 0;
  assert_int_equal(inj_call(&c, mul->addr, args, 2, &ret, 5000), 0);
  assert_int_equal(ret, 42);
  uint64_t s = inj_push(&c, "sixteen chars!!!", 17);
  assert_true(s != 0);
  if (sl) { /* strlen is an IFUNC in libc: it may have no plain symbol */
    args[0] = s;
    assert_int_equal(inj_call(&c, sl->addr, args, 1, &ret, 5000), 0);
    assert_int_equal(ret, 16);
  }
  const char *lib = "libelf.so.1";
  args[0] = inj_push(&c, lib, strlen(lib) + 1);
  args[1] = 2; /* RTLD_NOW */
  assert_int_equal(inj_call(&c, dl->addr, args, 2, &ret, 5000), 0);
  assert_true(ret != 0);
  assert_int_equal(inj_detach(&c), 0);
  esym_close(p);

  p = esym_open(t.pid, err, sizeof err);
  assert_non_null(p);
  assert_non_null(esym_lookup(p, "libelf", "elf_begin"));
  esym_close(p);
  assert_int_equal(inj_read(t.pid, mul_addr, after, sizeof after), 0);
  assert_memory_equal(before, after, sizeof before);
  finish(&t);
}

/* A busy target: interrupted in user code. */
static void test_busy(void **st) { (void)st; run_calls("0"); }
/* A sleeping target: interrupted in nanosleep, which must resume. */
static void test_sleeping(void **st) { (void)st; run_calls("50000"); }

static void test_fault(void **st) {
  (void)st;
  tgt t;
  start(&t, "1", "1000");
  inj_ctx c;
  assert_int_equal(inj_attach(&c, t.pid), 0);
  uint64_t ret;
  /* calling address 16 faults at 16: reported, and the target survives */
  assert_int_equal(inj_call(&c, 16, NULL, 0, &ret, 5000), -1);
  assert_non_null(strstr(c.err, "faulted"));
  assert_int_equal(inj_detach(&c), 0);
  finish(&t);
}

static void test_no_process(void **st) {
  (void)st;
  inj_ctx c;
  assert_int_equal(inj_attach(&c, 999999999), -1);
  assert_non_null(strstr(c.err, "cannot attach"));
}

int main(void) {
  const char *b = getenv("VPROBE_BUILD");
  snprintf(target, sizeof target, "%s/tests/vmx/targets/vt_work", b ? b : "build");
  if (access(target, X_OK) != 0) {
    printf("skipped: %s not built\n", target);
    return 77;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_busy), cmocka_unit_test(test_sleeping),
    cmocka_unit_test(test_fault), cmocka_unit_test(test_no_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
