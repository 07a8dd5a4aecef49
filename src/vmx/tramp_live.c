/*
 * tramp_live.c - the part of tramp.c (see tramp.h) that runs while other
 * threads run through the code being patched: the SIGTRAP, MOVE_SIG and
 * SIGSEGV/SIGBUS handlers, the guarded copy, and the patch windows (commit,
 * unpatch, moving threads out of displaced bytes).  None of it calls libc:
 * a libc function may be a probe site itself, or carry an int3 in the
 * middle of a commit, and a synchronous SIGTRAP taken where it cannot be
 * handled kills the process.  System calls go through tramp_sys.
 *
 * Global state: the site table and the previous handlers (tramp_int.h),
 * set once by tramp_open.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>

#include "vmx/tramp_int.h"
#include "vmx/tramp_sys.h"

tramp_set *volatile tramp_trap_set;
struct sigaction tramp_prev_trap, tramp_prev_segv, tramp_prev_bus, tramp_prev_move;
int tramp_guard_on;

static void put32(uint8_t *p, int32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)((uint32_t)v >> (8 * i));
}

static void sync_cores(tramp_set *s) {
  if (s->sync_core)
    tsys1(SYS_membarrier, 32 /* PRIVATE_EXPEDITED_SYNC_CORE */);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Write code bytes: make the page(s) writable (keeping them executable:
 * other threads run there), copy, put the protection back. */
static int poke(uint64_t addr, const uint8_t *b, size_t n, int prot) {
  uint64_t pg = addr & ~(uint64_t)4095, end = (addr + n + 4095) & ~(uint64_t)4095;
  if (tsys_mprotect(pg, end - pg, PROT_READ | PROT_WRITE | PROT_EXEC))
    return -1;
  for (size_t i = 0; i < n; i++)
    __atomic_store_n((uint8_t *)addr + i, b[i], __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  tsys_mprotect(pg, end - pg, prot);
  return 0;
}
/* ---- the SIGTRAP handler ---- */

/* The live site at addr, else the latest one that was there (a late trap
 * after unpatch), else NULL. */
tramp_site *tramp_find_site(tramp_set *s, uint64_t addr) {
  int n = __atomic_load_n(&s->nsites, __ATOMIC_ACQUIRE);
  tramp_site *dead = NULL;
  for (int i = 0; i < n; i++)
    if (s->sites[i].addr == addr) {
      if (s->sites[i].live)
        return &s->sites[i];
      dead = &s->sites[i];
    }
  return dead;
}

void tramp_frame_from_uc(tramp_frame *f, const void *ucv) {
  const greg_t *g = ((const ucontext_t *)ucv)->uc_mcontext.gregs;
  f->rip = g[REG_RIP], f->rsp = g[REG_RSP], f->rflags = g[REG_EFL];
  f->rax = g[REG_RAX], f->rbx = g[REG_RBX], f->rcx = g[REG_RCX], f->rdx = g[REG_RDX];
  f->rsi = g[REG_RSI], f->rdi = g[REG_RDI], f->rbp = g[REG_RBP];
  f->r8 = g[REG_R8], f->r9 = g[REG_R9], f->r10 = g[REG_R10], f->r11 = g[REG_R11];
  f->r12 = g[REG_R12], f->r13 = g[REG_R13], f->r14 = g[REG_R14], f->r15 = g[REG_R15];
}

/* Hand a signal that is not ours to whoever had it before. */
static void chain(const struct sigaction *prev, int sig, siginfo_t *si, void *uc, int refaults) {
  if (prev->sa_flags & SA_SIGINFO) {
    if (prev->sa_sigaction)
      prev->sa_sigaction(sig, si, uc);
    return;
  }
  if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
    prev->sa_handler(sig);
    return;
  }
  /* Default action: restore it; a fault re-executes and dies as it would
   * have, a trap (already past the int3) is raised again. */
  if (refaults)
    tsys_sig_default(sig);
  else
    tsys_die(sig);
}

void tramp_trap_handler(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  uint64_t rip = uc->uc_mcontext.gregs[REG_RIP];
  tramp_set *s = tramp_trap_set;
  tramp_site *site = s ? tramp_find_site(s, rip - 1) : NULL;
  if (!site) {
    chain(&tramp_prev_trap, sig, si, ucv, 0);
    return;
  }
  if (site->live && site->how == TRAMP_TRAP) {
    tramp_frame f;
    tramp_frame_from_uc(&f, ucv);
    f.rip = site->addr;
    site->hook(site->arg, &f);
  }
  /* Mid-patch or a jump/trap in place: run the original instructions from
   * the tail.  Already restored: run them in place. */
  uint8_t first = __atomic_load_n((uint8_t *)site->addr, __ATOMIC_RELAXED);
  uc->uc_mcontext.gregs[REG_RIP] = first == site->orig[0] ? site->addr : (uint64_t)site->tail;
}

/* ---- moving threads out of the displaced bytes ---- */

/* MOVE_SIG from our own commit (else the program's own use of it): a
 * thread inside the displaced bytes of a site being committed goes on at
 * the same instruction in the tail. */
void tramp_move_handler(int sig, siginfo_t *si, void *ucv) {
  tramp_set *s = tramp_trap_set;
  if (!s || si->si_code != SI_TKILL || si->si_pid != tsys_getpid()) {
    chain(&tramp_prev_move, sig, si, ucv, 0);
    return;
  }
  ucontext_t *uc = ucv;
  uint64_t rip = uc->uc_mcontext.gregs[REG_RIP];
  int n = __atomic_load_n(&s->nsites, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    tramp_site *t = &s->sites[i];
    if (!t->moving || rip <= t->addr || rip >= t->addr + t->len)
      continue;
    if (t->tailmap[rip - t->addr] == 0xff)
      t->stuck = 1;
    else
      uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(t->tail + t->tailmap[rip - t->addr]);
  }
  uint32_t k = __atomic_fetch_add(&s->nmoved, 1, __ATOMIC_ACQ_REL);
  if (k < s->capmoved)
    s->moved[k] = tsys_gettid();
}

/* Could thread tid be inside a moving site?  Its /proc .../syscall line
 * says "running" (on a CPU, or descheduled: we cannot know where), or the
 * number of the system call it sleeps in and its user pc. */
static int maybe_inside(tramp_set *s, pid_t tid) {
  char path[64] = "/proc/self/task/", line[128], num[16];
  int k = 0, at = 16;
  for (unsigned v = (unsigned)tid; k == 0 || v; v /= 10)
    num[k++] = (char)('0' + v % 10);
  while (k)
    path[at++] = num[--k];
  for (const char *t = "/syscall"; *t;)
    path[at++] = *t++;
  path[at] = 0;
  int fd = tsys_open(path, O_RDONLY);
  long n = fd < 0 ? -1 : tsys_read(fd, line, sizeof line - 1);
  if (fd >= 0)
    tsys_close(fd);
  if (n <= 0)
    return 1;
  line[n] = 0;
  /* "running"; or the call's number, 6 arguments, the stack pointer and
   * the pc (a blocked thread); or -1, the stack pointer and the pc. */
  const char *p = line;
  long nr = (long)tsys_strtoll(p, &p, 10);
  for (int skip = nr < 0 ? 1 : 7; skip > 0 && p; skip--)
    tsys_strtoll(p, &p, 16);
  uint64_t pc = p ? (uint64_t)tsys_strtoll(p, &p, 16) : 0;
  if (!p)
    return 1;
  for (int i = 0; i < s->nsites; i++)
    if (s->sites[i].moving && pc > s->sites[i].addr && pc < s->sites[i].addr + s->sites[i].len)
      return 1;
  return 0;
}

static int moved(const tramp_set *s, pid_t tid) {
  uint32_t n = __atomic_load_n(&s->nmoved, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n && i < s->capmoved; i++)
    if (s->moved[i] == tid)
      return 1;
  return 0;
}

/* Send every other thread that may be inside the moving sites through
 * move_handler and wait (up to a second) until each has been through it
 * or has exited.  0, or -1 if some did not answer. */
static int move_out(tramp_set *s) {
  int fd = tsys_open("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (fd < 0 || !s->sent) {
    if (fd >= 0)
      tsys_close(fd);
    return -1;
  }
  pid_t me = tsys_gettid(), pid = tsys_getpid();
  uint32_t nsent = 0;
  int rc = 0;
  __atomic_store_n(&s->nmoved, 0, __ATOMIC_RELEASE);
  char buf[4096] __attribute__((aligned(8)));
  long got;
  while (rc == 0 && (got = tsys3(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < got;) {
      struct dirent64 *de = (struct dirent64 *)(buf + off);
      off += de->d_reclen;
      const char *end;
      pid_t tid = (pid_t)tsys_strtoll(de->d_name, &end, 10);
      if (!end || tid <= 0 || tid == me || !maybe_inside(s, tid))
        continue;
      if (nsent + 1 > s->capmoved) { /* the handler's record, before any signal */
        rc = -1;
        break;
      }
      if (tsys_tgkill(pid, tid, MOVE_SIG) == 0)
        s->sent[nsent++] = tid;
    }
  }
  tsys_close(fd);
  for (int waited = 0; rc == 0; waited++) {
    uint32_t left = 0;
    for (uint32_t i = 0; i < nsent; i++)
      if (s->sent[i] && !moved(s, s->sent[i])) {
        if (tsys_tgkill(pid, s->sent[i], 0) != 0)
          s->sent[i] = 0; /* exited */
        else
          left++;
      }
    if (!left)
      break;
    if (waited == 10000)
      rc = -1;
    else
      tsys_nanosleep(100000);
  }
  return rc;
}

/* All sites together, so the slow steps (syncing every core, signalling
 * the threads) are paid once: int3 everywhere; sync; move the threads
 * inside displaced bytes out of them (new arrivals trap and go round
 * through the tail); the jumps' last 4 bytes; sync; the jmp opcodes; sync.
 * A site that cannot be made safe stays a trap site. */
int tramp_commit(tramp_set *s, tramp_site *const *sites, int n) {
  static const uint8_t int3 = 0xcc;
  int jumps = 0, ok = 0;
  for (int i = 0; i < n; i++) {
    tramp_site *t = sites[i];
    t->live = 1;
    if (poke(t->addr, &int3, 1, t->prot)) {
      t->live = 0, t->failed = 1;
      continue;
    }
    jumps += t->how == TRAMP_JUMP;
    ok++;
  }
  sync_cores(s);
  if (!jumps)
    return ok;
  for (int i = 0; i < n; i++)
    if (sites[i]->live && sites[i]->how == TRAMP_JUMP)
      sites[i]->stuck = 0, sites[i]->moving = 1;
  int all_out = move_out(s) == 0;
  for (int i = 0; i < n; i++) {
    tramp_site *t = sites[i];
    if (!t->live || t->how != TRAMP_JUMP)
      continue;
    t->moving = 0;
    if (!all_out || t->stuck) { /* the tail still runs the displaced code */
      t->how = TRAMP_TRAP;
      continue;
    }
    put32(t->jmp + 1, (int32_t)((int64_t)((uint64_t)t->tramp - (t->addr + 5))));
    t->jmp[0] = 0xe9;
    poke(t->addr + 1, t->jmp + 1, 4, t->prot);
  }
  sync_cores(s);
  for (int i = 0; i < n; i++)
    if (sites[i]->live && sites[i]->how == TRAMP_JUMP)
      poke(sites[i]->addr, sites[i]->jmp, 1, sites[i]->prot);
  sync_cores(s);
  return ok;
}

/* The reverse, also batched: a thread hitting an int3 meanwhile is sent
 * through the tail, and once the first byte is back it runs in place. */
void tramp_unpatch_many(tramp_set *s, tramp_site *const *sites, int n) {
  static const uint8_t int3 = 0xcc;
  int jumps = 0;
  for (int i = 0; i < n; i++)
    if (sites[i] && sites[i]->live && sites[i]->how == TRAMP_JUMP) {
      poke(sites[i]->addr, &int3, 1, sites[i]->prot);
      jumps++;
    }
  if (jumps) {
    sync_cores(s);
    for (int i = 0; i < n; i++)
      if (sites[i] && sites[i]->live && sites[i]->how == TRAMP_JUMP)
        poke(sites[i]->addr + 1, sites[i]->orig + 1, 4, sites[i]->prot);
    sync_cores(s);
  }
  for (int i = 0; i < n; i++)
    if (sites[i] && sites[i]->live)
      poke(sites[i]->addr, sites[i]->orig, 1, sites[i]->prot);
  sync_cores(s);
  for (int i = 0; i < n; i++)
    if (sites[i])
      sites[i]->live = 0;
}

void tramp_unpatch(tramp_set *s, tramp_site *t) { tramp_unpatch_many(s, &t, 1); }

void tramp_unpatch_all_quiet(tramp_set *s) {
  for (int i = 0; i < s->nsites; i++) {
    tramp_site *t = &s->sites[i];
    if (!t->live)
      continue;
    poke(t->addr, t->orig, t->how == TRAMP_JUMP ? 5 : 1, t->prot);
    t->live = 0;
  }
}

/* ---- guarded reads ---- */

/* tramp_copy(dst, src, n) -> 0, or -1 through tramp_copy_fault when the
 * SIGSEGV/SIGBUS handler finds a fault between tramp_copy_lo and _hi. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl tramp_copy\n.hidden tramp_copy\n.type tramp_copy,@function\n"
        ".globl tramp_copy_lo\n.hidden tramp_copy_lo\n"
        ".globl tramp_copy_hi\n.hidden tramp_copy_hi\n"
        ".globl tramp_copy_fault\n.hidden tramp_copy_fault\n"
        "tramp_copy:\n"
        "  xor %eax,%eax\n"
        "tramp_copy_lo:\n"
        "  cmp $8,%rdx\n"
        "  jb 2f\n"
        "1: mov (%rsi),%rcx\n"
        "  mov %rcx,(%rdi)\n"
        "  add $8,%rsi\n  add $8,%rdi\n  sub $8,%rdx\n"
        "  cmp $8,%rdx\n"
        "  jae 1b\n"
        "2: test %rdx,%rdx\n"
        "  jz 4f\n"
        "3: movb (%rsi),%cl\n"
        "  movb %cl,(%rdi)\n"
        "  inc %rsi\n  inc %rdi\n  dec %rdx\n"
        "  jnz 3b\n"
        "4: ret\n"
        "tramp_copy_hi:\n"
        "tramp_copy_fault:\n"
        "  mov $-1,%eax\n"
        "  ret\n"
        ".size tramp_copy,.-tramp_copy\n");
int tramp_copy(void *dst, const void *src, size_t n);
extern const char tramp_copy_lo[], tramp_copy_hi[], tramp_copy_fault[];

void tramp_segv_handler(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  uint64_t rip = uc->uc_mcontext.gregs[REG_RIP];
  if (rip >= (uint64_t)tramp_copy_lo && rip < (uint64_t)tramp_copy_hi) {
    uc->uc_mcontext.gregs[REG_RIP] = (uint64_t)tramp_copy_fault;
    return;
  }
  chain(sig == SIGBUS ? &tramp_prev_bus : &tramp_prev_segv, sig, si, ucv, 1);
}

int tramp_read(void *dst, uint64_t src, size_t n, int guarded) {
  if (guarded)
    return tramp_copy(dst, (const void *)src, n);
  struct iovec l = {dst, n}, r = {(void *)src, n};
  long got = tsys_call(SYS_process_vm_readv, tsys_getpid(), (long)&l, 1, (long)&r, 1, 0);
  return got == (long)n ? 0 : -1;
}
