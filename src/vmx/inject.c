/*
 * inject.c - loading a library into another process (inject.h).
 *
 * The thread is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT, so it may be
 * sitting in a system call.  Its registers are changed once, to enter the
 * stub with orig_rax -1 (no restart onto the stub); the rt_sigreturn frame
 * holds what the thread needs to go on, restarts included, so no later
 * step needs vprobe alive.
 */
#include "vmx/inject.h"

#include "sym/elfsym.h"

#include <cpuid.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define RED_ZONE 128
#define RESAMPLE_MAX 1000 /* about 1 s */
#define STACK_NEED (64 * 1024) /* for dlopen and the start function */

/* Kernel restart codes (not exported to user space). */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* The stub (x86-64), position independent; rbx = rsp = the block:
 *   mov rbx,rsp; cld; xsave64 [blk.fp] with edx:eax = blk.xfeatures
 *   rt_sigprocmask(0, NULL, &uc.uc_sigmask, 8); sigaltstack(NULL, &uc.uc_stack)
 *   h = dlopen(lib, RTLD_NOW); f = h ? dlsym(h, sym) : 0
 *   if (f) ret = f(arg) else err = dlerror()
 *   getpid() with rdi = h, rsi = ret, rdx = err      <- the marker
 *   if (blk.restart) uc.rax = restart_syscall()
 *   rsp = &uc; rt_sigreturn() */
static const uint8_t stub[] = {
  0x48, 0x89, 0xe3, 0xfc, 0x48, 0x8b, 0x7b, 0x38, 0x8b, 0x43, 0x40, 0x8b,
  0x53, 0x44, 0x48, 0x0f, 0xae, 0x27, 0x31, 0xff, 0x31, 0xf6, 0x48, 0x8b,
  0x53, 0x30, 0x48, 0x81, 0xc2, 0x28, 0x01, 0x00, 0x00, 0x41, 0xba, 0x08,
  0x00, 0x00, 0x00, 0xb8, 0x0e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x31, 0xff,
  0x48, 0x8b, 0x73, 0x30, 0x48, 0x83, 0xc6, 0x10, 0xb8, 0x83, 0x00, 0x00,
  0x00, 0x0f, 0x05, 0x48, 0x8b, 0x7b, 0x18, 0xbe, 0x02, 0x00, 0x00, 0x00,
  0xff, 0x13, 0x48, 0x89, 0x43, 0x48, 0x48, 0x85, 0xc0, 0x74, 0x1b, 0x48,
  0x89, 0xc7, 0x48, 0x8b, 0x73, 0x20, 0xff, 0x53, 0x08, 0x48, 0x85, 0xc0,
  0x74, 0x0c, 0x48, 0x8b, 0x7b, 0x28, 0xff, 0xd0, 0x48, 0x89, 0x43, 0x50,
  0xeb, 0x07, 0xff, 0x53, 0x10, 0x48, 0x89, 0x43, 0x58, 0x48, 0x8b, 0x7b,
  0x48, 0x48, 0x8b, 0x73, 0x50, 0x48, 0x8b, 0x53, 0x58, 0xb8, 0x27, 0x00,
  0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0x7b, 0x60, 0x00, 0x74, 0x12, 0xb8,
  0xdb, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x53, 0x30, 0x48, 0x89,
  0x82, 0x90, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x63, 0x30, 0xb8, 0x0f, 0x00,
  0x00, 0x00, 0x0f, 0x05,
};
#define STUB_MARK 0x88 /* rip at the marker's system call stops */

/* The parameter block the stub reads through rbx (offsets fixed above). */
typedef struct blk {
  uint64_t dlopen, dlsym, dlerror; /* 0, 8, 16 */
  uint64_t lib, sym, arg;          /* 24, 32, 40 */
  uint64_t uc, fp, xfeatures;      /* 48, 56, 64 */
  uint64_t handle, ret, err;       /* 72, 80, 88: results */
  uint64_t restart;                /* 96: finish a sleep first */
} blk;

/* The kernel's x86-64 signal frame (arch/x86/include/uapi/asm). */
typedef struct ksigctx {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t di, si, bp, bx, dx, ax, cx, sp, ip, flags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
} ksigctx;
typedef struct kuctx {
  uint64_t flags, link;
  uint64_t ss_sp;
  int32_t ss_flags, pad;
  uint64_t ss_size;
  ksigctx mc;
  uint64_t sigmask;
} kuctx;
typedef struct kframe {
  uint64_t pretcode;
  kuctx uc;
  uint8_t info[128];
} kframe;
_Static_assert(sizeof(ksigctx) == 256, "sigcontext layout");
_Static_assert(offsetof(kuctx, mc) == 40 && offsetof(kuctx, sigmask) == 296, "ucontext layout");
_Static_assert(offsetof(blk, restart) == 96, "block layout");
_Static_assert(offsetof(kuctx, mc) + offsetof(ksigctx, ax) == 144, "the stub's uc.rax");

#define UC_FP_XSTATE 1
#define UC_SIGCONTEXT_SS 2
#define UC_STRICT_RESTORE_SS 4
#define XS_MAGIC1 0x46505853u
#define XS_MAGIC2 0x46505845u
#define SW_BYTES 464 /* software-reserved bytes in the fxsave area */

/* ---- memory ---- */

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

int inj_stub_covers(int pid, uint64_t addr, size_t n) {
  uint8_t m[3 * sizeof stub];
  uint64_t at = addr > sizeof stub ? addr - sizeof stub : 0;
  size_t len = addr - at + n + sizeof stub;
  uint64_t page_end = (addr + n + 0xfff) & ~0xfffull; /* the next may be unmapped */
  if (at + len > page_end) len = page_end - at;
  if (n > sizeof stub || inj_read(pid, at, m, len) != 0) return 0;
  for (size_t i = 0; i + sizeof stub <= len; i++)
    if (at + i <= addr && at + i + sizeof stub >= addr + n &&
        memcmp(m + i, stub, sizeof stub) == 0)
      return 1;
  return 0;
}

/* ---- the test hook ---- */

static void step_done(int n) {
  const char *e = getenv("VPROBE_TEST_INJECT_DIE");
  if (e && atoi(e) == n) kill(getpid(), SIGKILL);
}

/* ---- stops ---- */

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Wait up to ms (-1: forever) for the thread to stop; the status, 0 on
 * time-out, -1 if it is gone. */
static int wait_stop(inj_ctx *c, int ms) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int st, r = waitpid(c->pid, &st, __WALL | (ms < 0 ? 0 : WNOHANG));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(c->err, sizeof c->err, "process %d: wait: %s", c->tgid, strerror(errno));
      c->seized = 0;
      return -1;
    }
    if (r > 0 && (WIFEXITED(st) || WIFSIGNALED(st))) {
      snprintf(c->err, sizeof c->err, "process %d: its thread %d ended", c->tgid, c->pid);
      c->seized = 0;
      return -1;
    }
    if (r > 0) return st;
    if (ms_since(&t0) >= ms) return 0;
    usleep(200);
  }
}

static int is_event_stop(int st) { return (st >> 16) == PTRACE_EVENT_STOP; }
static int is_sysstop(int st) { return WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80); }
/* A signal-delivery stop: the process's own signal, to pass on. */
static int own_signal(int st) {
  return WIFSTOPPED(st) && (st >> 16) == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80) ? WSTOPSIG(st) : 0;
}

static int getregs(inj_ctx *c) {
  if (ptrace(PTRACE_GETREGS, c->pid, 0, &c->saved) == 0) return 0;
  snprintf(c->err, sizeof c->err, "process %d: cannot read registers: %s", c->tgid, strerror(errno));
  return -1;
}

/* Stop a running tracee with PTRACE_INTERRUPT (its own signals go on). */
static int interrupt(inj_ctx *c) {
  if (ptrace(PTRACE_INTERRUPT, c->pid, 0, 0) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot stop: %s", c->tgid, strerror(errno));
    return -1;
  }
  for (;;) {
    int st = wait_stop(c, 2000);
    if (st <= 0) {
      if (st == 0) snprintf(c->err, sizeof c->err, "process %d: does not stop", c->tgid);
      return -1;
    }
    if (is_event_stop(st) || is_sysstop(st)) return 0;
    ptrace(PTRACE_CONT, c->pid, 0, (void *)(long)own_signal(st));
    ptrace(PTRACE_INTERRUPT, c->pid, 0, 0);
  }
}

/* ---- choosing the thread ---- */

/* The system call a thread is blocked in (/proc/.../syscall), -1 if none. */
static long blocked_in(int pid, int tid) {
  char fn[64], buf[64] = "";
  snprintf(fn, sizeof fn, "/proc/%d/task/%d/syscall", pid, tid);
  int fd = open(fn, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0 || buf[0] < '0' || buf[0] > '9') return -1;
  return strtol(buf, NULL, 10);
}

/* A thread blocked in one of these may hold a lock (futex; malloc's memory
 * calls), or sees EINTR for being stopped at all (epoll, sigtimedwait). */
static int poor_choice(long nr) {
  switch (nr) {
  case SYS_futex: case SYS_mmap: case SYS_munmap: case SYS_brk: case SYS_madvise:
  case SYS_mprotect: case SYS_mremap: case SYS_epoll_wait: case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
  case SYS_epoll_pwait2:
#endif
  case SYS_rt_sigtimedwait: case SYS_semop: case SYS_semtimedop: case SYS_exit:
  case SYS_exit_group:
    return 1;
  }
  return 0;
}

static int pick_thread(int pid) {
  int main_tid = esym_live_tid(pid), best = 0;
  if (blocked_in(pid, main_tid) >= 0 && !poor_choice(blocked_in(pid, main_tid)))
    return main_tid;
  char fn[64];
  snprintf(fn, sizeof fn, "/proc/%d/task", pid);
  DIR *d = opendir(fn);
  struct dirent *e;
  while (d && !best && (e = readdir(d))) {
    int tid = atoi(e->d_name);
    long nr = tid > 0 ? blocked_in(pid, tid) : -1;
    if (nr >= 0 && !poor_choice(nr)) best = tid;
  }
  if (d) closedir(d);
  return best ? best : main_tid;
}

/* libc's and ld.so's code: where a thread may hold a lock dlopen needs. */
static void libc_windows(inj_ctx *c) {
  char fn[64], line[PATH_MAX + 128];
  snprintf(fn, sizeof fn, "/proc/%d/maps", c->pid);
  FILE *f = fopen(fn, "re");
  while (f && c->nwin < INJ_MAX_WIN && fgets(line, sizeof line, f)) {
    unsigned long long lo, hi;
    char perm[8], path[PATH_MAX] = "";
    if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %4095s", &lo, &hi, perm, path) < 3) continue;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (perm[2] == 'x' && (!strncmp(b, "libc.so", 7) || !strncmp(b, "libc-", 5) ||
                           !strncmp(b, "ld-linux", 8) || !strncmp(b, "ld-", 3))) {
      c->winlo[c->nwin] = lo;
      c->winhi[c->nwin++] = hi;
    }
  }
  if (f) fclose(f);
}

int inj_attach(inj_ctx *c, int pid) {
  memset(c, 0, sizeof *c);
  c->tgid = pid;
  c->pid = pick_thread(pid);
  if (ptrace(PTRACE_SEIZE, c->pid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot attach: %s", pid, strerror(errno));
    return -1;
  }
  c->seized = 1;
  if (interrupt(c) != 0 || getregs(c) != 0) {
    inj_detach(c);
    return -1;
  }
  libc_windows(c);
  step_done(INJ_STEP_SEIZED);
  return 0;
}

int inj_detach(inj_ctx *c) {
  if (!c->seized) return 0;
  /* a running stub must be stopped to be let go; never put registers
   * back: the stub does, and the unchanged ones are the thread's own */
  if (c->running && interrupt(c) != 0) return -1;
  c->running = 0;
  c->seized = 0;
  return ptrace(PTRACE_DETACH, c->pid, 0, 0) == 0 ? 0 : -1;
}

/* ---- stepping out ---- */

static int in_window(uint64_t ip, const uint64_t *lo, const uint64_t *hi, int n) {
  for (int i = 0; i < n; i++)
    if (ip > lo[i] && ip < hi[i]) return 1;
  return 0;
}

/* Let the thread run a moment and stop it again (its own signals go
 * through meanwhile).  Not single steps: a thread left with the trap flag
 * by a killed vprobe dies of SIGTRAP (the kernel does not clear the flag
 * when the tracer exits). */
static int resample(inj_ctx *c, int attempt) {
  if (ptrace(PTRACE_CONT, c->pid, 0, 0) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot resume: %s", c->tgid, strerror(errno));
    return -1;
  }
  usleep(50 + (unsigned)(attempt * 397) % 950); /* varied: not in step with a loop */
  if (interrupt(c) != 0) return -1;
  return getregs(c);
}

int inj_step_out(inj_ctx *c, const uint64_t *lo, const uint64_t *hi, int n) {
  int rc = 0;
  for (int tries = 0; rc == 0; tries++) {
    int probe = in_window(c->saved.rip, lo, hi, n);
    int libc = in_window(c->saved.rip, c->winlo, c->winhi, c->nwin);
    int insys = (long long)c->saved.orig_rax >= 0;
    if (!probe && (!libc || insys)) break; /* a system call holds no lock */
    if ((probe && insys) || tries >= RESAMPLE_MAX) {
      snprintf(c->err, sizeof c->err,
               "process %d: its thread %d is stuck inside %s (0x%llx); try again", c->tgid,
               c->pid, probe ? "a probe point" : "libc", c->saved.rip);
      rc = -1;
    } else {
      rc = resample(c, tries);
    }
  }
  if (rc == 0) step_done(INJ_STEP_SETTLED);
  return rc;
}

/* ---- the cave ---- */

/* The slack after file mapping [lo, hi)'s executable segment, if it has
 * room for the stub: its address, else 0. */
static uint64_t cave_in(int pid, uint64_t lo, uint64_t hi, uint64_t off, const char *path) {
  char fn[PATH_MAX + 32];
  snprintf(fn, sizeof fn, "/proc/%d/root%s", pid, path);
  int fd = open(fn, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  Elf64_Ehdr eh;
  Elf64_Phdr ph[64];
  uint64_t cave = 0;
  if (pread(fd, &eh, sizeof eh, 0) == sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == EM_X86_64 && eh.e_phnum <= 64 &&
      eh.e_phentsize == sizeof(Elf64_Phdr) &&
      pread(fd, ph, eh.e_phnum * sizeof *ph, (off_t)eh.e_phoff) ==
          (ssize_t)(eh.e_phnum * sizeof *ph)) {
    for (int i = 0; i < eh.e_phnum && !cave; i++) {
      const Elf64_Phdr *p = &ph[i];
      if (p->p_type != PT_LOAD || !(p->p_flags & PF_X) || (p->p_offset & ~0xfffull) != off)
        continue;
      uint64_t bias = lo - (p->p_vaddr & ~0xfffull);
      uint64_t at = (bias + p->p_vaddr + p->p_filesz + 15) & ~15ull;
      uint64_t end = (bias + p->p_vaddr + p->p_filesz + 0xfff) & ~0xfffull;
      if (p->p_filesz == p->p_memsz && end <= hi && at + sizeof stub <= end) cave = at;
    }
  }
  close(fd);
  return cave;
}

/* A cave in libc, else ld.so, else any executable file mapping: the same
 * one every time while the maps stay (a second injection finds its stub). */
static uint64_t find_cave(int pid) {
  char fn[64], line[PATH_MAX + 128];
  uint64_t best[3] = {0, 0, 0};
  snprintf(fn, sizeof fn, "/proc/%d/maps", pid);
  FILE *f = fopen(fn, "re");
  while (f && fgets(line, sizeof line, f)) {
    unsigned long long lo, hi, off;
    char perm[8], path[PATH_MAX] = "";
    if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095s", &lo, &hi, perm, &off, path) < 5 ||
        perm[2] != 'x' || path[0] != '/')
      continue;
    const char *b = strrchr(path, '/') + 1;
    int rank = !strncmp(b, "libc.so", 7) || !strncmp(b, "libc-", 5) ? 0
               : !strncmp(b, "ld-", 3)                               ? 1
                                                                     : 2;
    if (!best[rank]) best[rank] = cave_in(pid, lo, hi, off, path);
  }
  if (f) fclose(f);
  return best[0] ? best[0] : best[1] ? best[1] : best[2];
}

/* Room for the stub's calls below `at` on the stack sp is in: a thread
 * stack or a signal stack is as big as it is; the main stack grows. */
static int stack_room(int pid, uint64_t sp, uint64_t at) {
  char fn[64], line[PATH_MAX + 128];
  snprintf(fn, sizeof fn, "/proc/%d/maps", pid);
  FILE *f = fopen(fn, "re");
  int ok = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long long lo, hi;
    if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && sp > lo && sp <= hi) {
      ok = strstr(line, "[stack]") != NULL || (at > lo && at - lo >= STACK_NEED);
      break;
    }
  }
  if (f) fclose(f);
  return ok;
}

/* ---- the frame ---- */

/* The kernel's own software-reserved bytes of an XSAVE signal frame on
 * this machine (what sizes and features it restores), from a signal to
 * ourselves; cpuid's if that fails. */
static uint8_t xs_sw[48];
static volatile sig_atomic_t xs_got;

static void xs_handler(int sig, siginfo_t *si, void *uv) {
  (void)sig, (void)si;
  ucontext_t *u = uv;
  if (u->uc_mcontext.fpregs) {
    memcpy(xs_sw, (const uint8_t *)u->uc_mcontext.fpregs + SW_BYTES, sizeof xs_sw);
    xs_got = 1;
  }
}

static void xstate_info(uint32_t *size, uint64_t *features, uint8_t sw[48]) {
  struct sigaction sa = {0}, old;
  sigset_t one, prev;
  sa.sa_sigaction = xs_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigemptyset(&one);
  sigaddset(&one, SIGURG);
  xs_got = 0;
  if (sigaction(SIGURG, &sa, &old) == 0) {
    pthread_sigmask(SIG_UNBLOCK, &one, &prev);
    raise(SIGURG);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    sigaction(SIGURG, &old, NULL);
  }
  uint32_t m1;
  memcpy(&m1, xs_sw, 4);
  if (xs_got && m1 == XS_MAGIC1) {
    memcpy(sw, xs_sw, 48);
    memcpy(features, sw + 8, 8);
    memcpy(size, sw + 16, 4);
    return;
  }
  unsigned a, b, cx, d, lo, hi;
  __cpuid_count(0xd, 0, a, b, cx, d);
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  *size = b;
  *features = (uint64_t)hi << 32 | lo;
  uint32_t ext = b + 4;
  memset(sw, 0, 48);
  m1 = XS_MAGIC1;
  memcpy(sw, &m1, 4);
  memcpy(sw + 4, &ext, 4);
  memcpy(sw + 8, features, 8);
  memcpy(sw + 16, size, 4);
}

/* The registers the thread goes on with: a system call it was stopped in
 * with a restart code is made again (as the kernel would have).  A sleep
 * restarted through restart_block cannot be made again after our
 * rt_sigreturn (which makes restart_syscall fail with EINTR), so the stub
 * finishes it before: returns 1 for that. */
static int fill_ctx(ksigctx *m, const struct user_regs_struct *r) {
  *m = (ksigctx){.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11, .r12 = r->r12,
                 .r13 = r->r13, .r14 = r->r14, .r15 = r->r15, .di = r->rdi, .si = r->rsi,
                 .bp = r->rbp, .bx = r->rbx, .dx = r->rdx, .ax = r->rax, .cx = r->rcx,
                 .sp = r->rsp, .ip = r->rip, .flags = r->eflags, .cs = (uint16_t)r->cs,
                 .ss = (uint16_t)r->ss};
  long long ax = (long long)r->rax;
  if ((long long)r->orig_rax < 0) return 0;
  if (ax == -ERESTARTSYS || ax == -ERESTARTNOINTR || ax == -ERESTARTNOHAND) {
    m->ax = r->orig_rax;
    m->ip -= 2;
  }
  if (ax != -ERESTART_RESTARTBLOCK) return 0;
  m->ax = (uint64_t)-EINTR; /* replaced by restart_syscall's result */
  return 1;
}

/* The stack image [base, top): block, strings, XSAVE area, frame. */
typedef struct image {
  uint8_t *mem;
  uint64_t base, top;
} image;

static uint64_t put(image *im, uint64_t *at, const void *p, size_t n, uint64_t align) {
  *at = (*at - n) & ~(align - 1);
  memcpy(im->mem + (*at - im->base), p, n);
  return *at;
}

static int build_image(inj_ctx *c, const inj_req *q, image *im, uint64_t *blk_at) {
  uint32_t xsize;
  uint64_t xfeat;
  uint8_t sw[48];
  xstate_info(&xsize, &xfeat, sw);
  size_t strs = strlen(q->lib) + strlen(q->sym) + strlen(q->arg) + 3;
  im->top = (c->saved.rsp - RED_ZONE - 64) & ~63ull;
  im->base = (im->top - sizeof(kframe) - xsize - strs - sizeof(blk) - 512) & ~63ull;
  im->mem = calloc(1, im->top - im->base);
  if (!im->mem) return -1;
  kframe fr = {0};
  fr.uc.flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
  int restart = fill_ctx(&fr.uc.mc, &c->saved);
  uint64_t frame = (im->top - sizeof fr) & ~63ull;
  uint64_t fp = (frame - xsize - 4) & ~63ull; /* XSAVE needs 64-byte alignment */
  fr.uc.mc.fpstate = fp;
  memcpy(im->mem + (frame - im->base), &fr, sizeof fr);
  uint8_t *x = im->mem + (fp - im->base); /* header (512..575) stays zero */
  memcpy(x + SW_BYTES, sw, sizeof sw);
  uint32_t m2 = XS_MAGIC2;
  memcpy(x + xsize, &m2, 4);
  uint64_t at = fp;
  blk b = {.dlopen = q->dlopen, .dlsym = q->dlsym, .dlerror = q->dlerror,
           .uc = frame + 8, .fp = fp, .xfeatures = xfeat, .restart = (uint64_t)restart};
  b.lib = put(im, &at, q->lib, strlen(q->lib) + 1, 1);
  b.sym = put(im, &at, q->sym, strlen(q->sym) + 1, 1);
  b.arg = put(im, &at, q->arg, strlen(q->arg) + 1, 1);
  *blk_at = put(im, &at, &b, sizeof b, 16);
  return 0;
}

/* ---- running the stub ---- */

/* Follow the stub to its marker; 1 there (registers in c->saved), 0 on
 * time-out, -1 if the thread is gone. */
static int to_marker(inj_ctx *c, uint64_t mark, int timeout_ms) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int sig = 0;
  for (;;) {
    if (ptrace(PTRACE_SYSCALL, c->pid, 0, (void *)(long)sig) != 0) {
      snprintf(c->err, sizeof c->err, "process %d: cannot resume: %s", c->tgid, strerror(errno));
      return -1;
    }
    step_done(INJ_STEP_RUNNING);
    long left = timeout_ms - ms_since(&t0);
    int st = left > 0 ? wait_stop(c, (int)left) : 0;
    if (st <= 0) return st;
    sig = own_signal(st);
    if (is_sysstop(st) && getregs(c) == 0 && c->saved.rip == mark &&
        c->saved.orig_rax == SYS_getpid)
      return 1;
  }
}

static void read_str(int pid, uint64_t addr, char *out, size_t cap) {
  out[0] = 0;
  for (size_t i = 0; addr && i + 1 < cap; i++)
    if (inj_read(pid, addr + i, out + i, 1) != 0 || !out[i]) break;
  out[cap - 1] = 0;
}

int inj_load(inj_ctx *c, const inj_req *q, inj_res *res) {
  memset(res, 0, sizeof *res);
  uint64_t cave = find_cave(c->pid);
  uint8_t cur[sizeof stub];
  if (!cave || inj_read(c->pid, cave, cur, sizeof cur) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: no room for the loader in its code", c->tgid);
    inj_detach(c);
    return -1;
  }
  if (memcmp(cur, stub, sizeof stub) != 0 &&
      (inj_write(c->pid, cave, stub, sizeof stub) != 0 ||
       inj_read(c->pid, cave, cur, sizeof cur) != 0 || memcmp(cur, stub, sizeof stub) != 0)) {
    snprintf(c->err, sizeof c->err, "process %d: cannot write the loader", c->tgid);
    inj_detach(c);
    return -1;
  }
  step_done(INJ_STEP_CAVE);
  image im;
  uint64_t b;
  if (build_image(c, q, &im, &b) == 0 && !stack_room(c->pid, c->saved.rsp, b)) {
    free(im.mem);
    snprintf(c->err, sizeof c->err, "process %d: thread %d has too little stack left to load into",
             c->tgid, c->pid);
    inj_detach(c);
    return -1;
  }
  if (!im.mem ||
      inj_write(c->pid, im.base, im.mem, im.top - im.base) != 0) {
    free(im.mem);
    snprintf(c->err, sizeof c->err, "process %d: cannot write its stack", c->tgid);
    inj_detach(c);
    return -1;
  }
  free(im.mem);
  step_done(INJ_STEP_STACK);
  struct user_regs_struct r = c->saved;
  r.rip = cave;
  r.rsp = b;
  r.orig_rax = (unsigned long long)-1; /* no restart onto the stub */
  r.eflags = 0x202;
  if (ptrace(PTRACE_SETREGS, c->pid, 0, &r) != 0) {
    snprintf(c->err, sizeof c->err, "process %d: cannot set registers: %s", c->tgid, strerror(errno));
    inj_detach(c);
    return -1;
  }
  c->running = 1;
  step_done(INJ_STEP_REGS);
  int m = to_marker(c, cave + STUB_MARK, q->timeout_ms);
  if (m <= 0) {
    if (m == 0)
      snprintf(c->err, sizeof c->err, "process %d: loading %s timed out", c->tgid, q->lib);
    inj_detach(c);
    return -1;
  }
  res->handle = c->saved.rdi;
  res->ret = c->saved.rsi;
  if (!res->handle || c->saved.rdx) read_str(c->pid, c->saved.rdx, res->why, sizeof res->why);
  step_done(INJ_STEP_MARKER);
  c->running = 0; /* stopped at the marker: it may go as it is */
  int rc = inj_detach(c);
  step_done(INJ_STEP_DETACHED);
  return rc;
}
