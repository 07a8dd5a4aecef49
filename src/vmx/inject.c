/*
 * inject.c - function calls in another process through ptrace.
 *
 * The thread is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT, so it may be
 * sitting in a system call.  During our calls orig_rax is -1, so the kernel
 * does not restart that system call on top of them; the saved registers,
 * put back at detach, restart it as if nothing had happened.
 */
#include "vmx/inject.h"

#include "sym/elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RED_ZONE 128

static int proc_mem(int pid, uint64_t addr, void *buf, size_t n, int wr) {
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/mem", pid);
  int fd = open(fn, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = wr ? pwrite(fd, buf, n, (off_t)addr) : pread(fd, buf, n, (off_t)addr);
  close(fd);
  return r == (ssize_t)n ? 0 : -1;
}

int inj_read(int pid, uint64_t addr, void *buf, size_t n) {
  return proc_mem(pid, addr, buf, n, 0);
}

int inj_write(int pid, uint64_t addr, const void *buf, size_t n) {
  return proc_mem(pid, addr, (void *)buf, n, 1);
}

/* Wait for the seized thread to stop; returns the status, -1 if it is gone. */
static int wait_stop(inj_ctx *c, int nohang) {
  int st;
  for (;;) {
    int r = waitpid(c->pid, &st, __WALL | (nohang ? WNOHANG : 0));
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(c->err, sizeof c->err, "process %d: wait: %s", c->pid, strerror(errno));
      return -1;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      snprintf(c->err, sizeof c->err, "process %d exited", c->pid);
      c->seized = 0;
      return -1;
    }
    return st;
  }
}

int inj_attach(inj_ctx *c, int pid) {
  memset(c, 0, sizeof *c);
  pid = esym_live_tid(pid);
  c->pid = pid;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot attach: %s", pid, strerror(errno));
    return -1;
  }
  c->seized = 1;
  if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot stop: %s", pid, strerror(errno));
    ptrace(PTRACE_DETACH, pid, 0, 0);
    c->seized = 0;
    return -1;
  }
  /* The first stop may be a signal-delivery stop that raced the
   * interrupt: remember the signal? Simpler: pass it on and wait again. */
  for (;;) {
    int st = wait_stop(c, 0);
    if (st < 0) return -1;
    if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP) break;
    int sig = WIFSTOPPED(st) ? WSTOPSIG(st) : 0;
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
  }
  if (ptrace(PTRACE_GETREGS, pid, 0, &c->saved) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot read registers: %s", pid, strerror(errno));
    ptrace(PTRACE_DETACH, pid, 0, 0);
    c->seized = 0;
    return -1;
  }
  c->scratch = (c->saved.rsp - RED_ZONE) & ~15ull;
  return 0;
}

int inj_detach(inj_ctx *c) {
  if (!c->seized) return 0;
  int rc = 0;
  if (c->calling) {
    /* a call still running: stop the thread before touching its registers */
    ptrace(PTRACE_INTERRUPT, c->pid, 0, 0);
    for (;;) {
      int st = wait_stop(c, 0);
      if (st < 0) return -1;
      if (WIFSTOPPED(st) && ((st >> 16) == PTRACE_EVENT_STOP || WSTOPSIG(st) == SIGSEGV)) break;
      ptrace(PTRACE_CONT, c->pid, 0, (void *)(long)WSTOPSIG(st));
    }
    c->calling = 0;
  }
  if (ptrace(PTRACE_SETREGS, c->pid, 0, &c->saved) != 0) rc = -1;
  if (ptrace(PTRACE_DETACH, c->pid, 0, 0) != 0) rc = -1;
  c->seized = 0;
  return rc;
}

static int in_window(uint64_t ip, const uint64_t *lo, const uint64_t *hi, int n) {
  for (int i = 0; i < n; i++)
    if (ip > lo[i] && ip < hi[i]) return 1;
  return 0;
}

int inj_step_out(inj_ctx *c, const uint64_t *lo, const uint64_t *hi, int n) {
  for (int steps = 0; in_window(c->saved.rip, lo, hi, n); steps++) {
    /* a thread blocked in a system call there cannot be stepped out */
    if ((long long)c->saved.orig_rax >= 0 || steps > 10000) {
      snprintf(c->err, sizeof c->err,
               "process %d: its main thread is stuck inside a probe point (0x%llx); try again",
               c->pid, c->saved.rip);
      return -1;
    }
    if (ptrace(PTRACE_SINGLESTEP, c->pid, 0, 0) != 0) {
      snprintf(c->err, sizeof c->err, "process %d: cannot step: %s", c->pid, strerror(errno));
      return -1;
    }
    int st = wait_stop(c, 0);
    if (st < 0) return -1;
    if (WIFSTOPPED(st) && WSTOPSIG(st) != SIGTRAP && (st >> 16) == 0) {
      /* the process's own signal: leave it pending for after detach */
      kill(c->pid, WSTOPSIG(st));
    }
    if (ptrace(PTRACE_GETREGS, c->pid, 0, &c->saved) != 0) {
      snprintf(c->err, sizeof c->err, "process %d: cannot read registers", c->pid);
      return -1;
    }
  }
  c->scratch = (c->saved.rsp - RED_ZONE) & ~15ull;
  return 0;
}

uint64_t inj_push(inj_ctx *c, const void *data, size_t n) {
  uint64_t at = (c->scratch - n) & ~15ull;
  if (inj_write(c->pid, at, data, n) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot write its stack", c->pid);
    return 0;
  }
  c->scratch = at;
  return at;
}

int inj_call_start(inj_ctx *c, uint64_t fn, const uint64_t *args, int nargs) {
  struct user_regs_struct r = c->saved;
  unsigned long long *slot[6] = {&r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9};
  for (int i = 0; i < nargs && i < 6; i++) *slot[i] = args[i];
  /* at the function's first instruction, (rsp + 8) is 16-aligned and holds
   * the return address: 0, so the return faults where we catch it */
  uint64_t sp = ((c->scratch - 256) & ~15ull) - 8;
  uint64_t zero = 0;
  if (inj_write(c->pid, sp, &zero, 8) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot write its stack", c->pid);
    return -1;
  }
  r.rsp = sp;
  r.rip = fn;
  r.rax = 0;               /* no vector registers for a variadic callee */
  r.orig_rax = (unsigned long long)-1; /* no system call restart */
  if (ptrace(PTRACE_SETREGS, c->pid, 0, &r) != 0 ||
      ptrace(PTRACE_CONT, c->pid, 0, 0) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot start a call: %s", c->pid, strerror(errno));
    return -1;
  }
  c->calling = 1;
  return 0;
}

int inj_call_poll(inj_ctx *c, uint64_t *ret) {
  for (;;) {
    int st = wait_stop(c, 1);
    if (st == 0) return 0;
    if (st < 0) { c->calling = 0; return -1; }
    if (!WIFSTOPPED(st)) continue;
    int sig = WSTOPSIG(st);
    if ((st >> 16) == PTRACE_EVENT_STOP) { /* group stop: keep going */
      ptrace(PTRACE_CONT, c->pid, 0, 0);
      continue;
    }
    if (sig == SIGSEGV) {
      struct user_regs_struct r;
      ptrace(PTRACE_GETREGS, c->pid, 0, &r);
      if (r.rip == 0) {
        *ret = r.rax;
        c->calling = 0;
        return 1;
      }
      snprintf(c->err, sizeof c->err,
               "process %d: injected call faulted at 0x%llx", c->pid, r.rip);
      c->calling = 0; /* stopped in the fault: registers can go back */
      return -1;
    }
    /* any other signal is the process's own: deliver it */
    ptrace(PTRACE_CONT, c->pid, 0, (void *)(long)sig);
  }
}

int inj_call(inj_ctx *c, uint64_t fn, const uint64_t *args, int nargs,
             uint64_t *ret, int timeout_ms) {
  if (inj_call_start(c, fn, args, nargs) != 0) return -1;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int r = inj_call_poll(c, ret);
    if (r) return r > 0 ? 0 : -1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms > timeout_ms) {
      snprintf(c->err, sizeof c->err, "process %d: injected call timed out", c->pid);
      return -1;
    }
    usleep(1000);
  }
}
