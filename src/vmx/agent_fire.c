/*
 * agent_fire.c - what happens at a probe hit inside the probed process: the
 * per-thread blocks, the re-entry guard, the EXIT shadow stack, and the
 * vp_target through which VP reads registers and memory (agent.h).
 *
 * The hit path makes no system call and takes no lock: the thread's block
 * is one initial-exec TLS load away, and it caches the thread id and the
 * rt_thread.  Counters are per thread, summed by the agent thread.  Nothing
 * here calls libc (which may be probed): system calls go through
 * tramp_sys, string functions are the agent's own (agent_libc.c).
 *
 * Per-process globals (the only mutable ones): the patch set, the return
 * trampoline and the pool of per-thread blocks, created once and kept for
 * the life of the process (see agent.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <x86intrin.h>

#include "vmx/agent.h"
#include "vmx/tramp_sys.h"
#include "vmx/ustack.h"

static __thread agent_tls *agent_me __attribute__((tls_model("initial-exec")));
static agent_tls *pool;
static uint32_t pool_next;
static tramp_set *tramps;
static uint64_t ret_stub;
static int once_mu; /* a spin lock: taken once per load, briefly */

static uint64_t agent_ret(void *arg, tramp_frame *f);

static void say(char *err, size_t cap, const char *why) {
  size_t n = strnlen(why, cap - 1);
  memcpy(err, why, n);
  err[n] = 0;
}

tramp_set *agent_tramps(char *err, size_t cap) {
  while (__atomic_exchange_n(&once_mu, 1, __ATOMIC_ACQUIRE))
    tsys_nanosleep(100000);
  if (!pool) {
    void *p = tsys_mmap(sizeof(agent_tls) * AGENT_POOL, PROT_READ | PROT_WRITE);
    if (p)
      __atomic_store_n(&pool, (agent_tls *)p, __ATOMIC_RELEASE);
  }
  if (pool && !tramps && (tramps = tramp_open(AGENT_MAXSITES, err, cap)) != NULL)
    ret_stub = tramp_ret_stub(tramps, agent_ret, NULL);
  __atomic_store_n(&once_mu, 0, __ATOMIC_RELEASE);
  if (!pool)
    say(err, cap, "cannot map the per-thread blocks");
  else if (tramps && !ret_stub)
    say(err, cap, "no memory for the return trampoline");
  return pool && ret_stub ? tramps : NULL;
}

uint64_t agent_ret_stub(void) { return ret_stub; }
agent_tls *agent_tls_pool(void) { return __atomic_load_n(&pool, __ATOMIC_ACQUIRE); }

/* Blocks ever handed out (the rest of the pool is untouched). */
uint32_t agent_tls_used(void) {
  uint32_t n = __atomic_load_n(&pool_next, __ATOMIC_RELAXED);
  return n < AGENT_POOL ? n : AGENT_POOL;
}

/* A stack of the agent's own for each thread: the interpreter needs ~30
 * KiB, more than a small thread stack or a signal stack may have left.
 * Its lowest page is a guard. */
static uint64_t probe_stack(void) {
  void *p = tsys_mmap(AGENT_PSTACK, PROT_READ | PROT_WRITE);
  if (!p)
    return 0;
  tsys_mprotect((uint64_t)p, 4096, PROT_NONE);
  return (uint64_t)p + AGENT_PSTACK;
}

/* Slow path, once per thread: take a fresh block, or one whose thread is
 * gone.  Async-signal-safe (a profile signal may be a thread's first hit). */
static agent_tls *claim(void) {
  agent_tls *p = agent_tls_pool();
  if (!p)
    return NULL;
  uint32_t tid = (uint32_t)tsys_gettid();
  uint32_t i = __atomic_fetch_add(&pool_next, 1, __ATOMIC_RELAXED);
  agent_tls *t = NULL;
  if (i < AGENT_POOL) {
    t = &p[i];
  } else {
    pid_t pid = tsys_getpid();
    for (i = 0; i < AGENT_POOL && !t; i++) {
      uint32_t old = p[i].tid;
      if (old && !p[i].busy && tsys_tgkill(pid, (pid_t)old, 0) == -ESRCH &&
          __atomic_compare_exchange_n(&p[i].tid, &old, tid, 0, __ATOMIC_ACQ_REL,
                                      __ATOMIC_RELAXED))
        t = &p[i];
    }
    if (!t)
      return NULL;
  }
  t->busy = 0, t->gen = 0, t->depth = 0, t->th = NULL, t->stk_n = 0;
  if (!t->stack_top) /* a reused block keeps its stack */
    t->stack_top = probe_stack();
  __atomic_store_n(&t->tid, tid, __ATOMIC_RELEASE);
  agent_me = t;
  return t;
}

agent_tls *agent_tls_get(void) {
  agent_tls *t = agent_me;
  return t ? t : claim();
}

/* A fork child has one thread, with its parent's block: make it its own. */
void agent_tls_fork_child(void) {
  agent_tls *t = agent_me;
  if (t) {
    t->tid = (uint32_t)tsys_gettid();
    t->th = NULL, t->gen = 0, t->busy = 0;
  }
}

/* ---- the vp_target ---- */

typedef struct fctx {
  agent *ag;
  agent_tls *t;
  tramp_frame *f;
  int at_entry;
  uint64_t exit_ret;
} fctx;

static int t_reg(void *self, int reg, uint64_t *val) {
  fctx *c = self;
  tramp_frame *f = c->f;
  if (reg == VP_REG_THREADID) {
    *val = c->t->tid;
    return 0;
  }
  if (reg == VP_REG_FSBASE) { /* glibc keeps the thread pointer at %fs:0 */
    uint64_t fs;
    __asm__("mov %%fs:0, %0" : "=r"(fs));
    *val = fs;
    return 0;
  }
  if (!f)
    return -1;
  switch (reg) {
  case VP_REG_RAX: *val = f->rax; break;
  case VP_REG_RBX: *val = f->rbx; break;
  case VP_REG_RCX: *val = f->rcx; break;
  case VP_REG_RDX: *val = f->rdx; break;
  case VP_REG_RSI: *val = f->rsi; break;
  case VP_REG_RDI: *val = f->rdi; break;
  case VP_REG_RSP: *val = f->rsp; break;
  case VP_REG_RBP: *val = f->rbp; break;
  case VP_REG_R8: *val = f->r8; break;
  case VP_REG_R9: *val = f->r9; break;
  case VP_REG_R10: *val = f->r10; break;
  case VP_REG_R11: *val = f->r11; break;
  case VP_REG_R12: *val = f->r12; break;
  case VP_REG_R13: *val = f->r13; break;
  case VP_REG_R14: *val = f->r14; break;
  case VP_REG_R15: *val = f->r15; break;
  case VP_REG_RIP: *val = f->rip; break;
  case VP_REG_RFLAGS: *val = f->rflags; break;
  case VP_REG_CS: *val = 0x33; break;
  case VP_REG_SS: case VP_REG_DS: case VP_REG_ES: *val = 0x2b; break;
  case VP_REG_GSBASE: *val = 0; break; /* user space keeps no GS base on Linux */
  default: return -1;
  }
  return 0;
}

static int t_read(void *self, int model, uint64_t addr, void *buf, size_t n) {
  fctx *c = self;
  if (model != VP_MEM_DEFAULT && model != VP_MEM_VMX)
    return -1;
  return tramp_read(buf, addr, n, c->ag->guarded);
}

/* A symbol's address: "module.function" exactly, or just "function". */
static uint64_t sym2addr(agent *ag, const char *name) {
  if (!name)
    return 0;
  for (uint32_t i = 0; i < ag->nsyms; i++) {
    uint32_t off = ag->syms[i].name_off;
    if (off >= ag->strs_len)
      continue;
    const char *s = ag->strs + off, *dot = strchr(s, '.');
    if (!strcmp(s, name) || (dot && !strcmp(dot + 1, name)))
      return ag->syms[i].addr;
  }
  return 0;
}

/* The return addresses the EXIT trampoline stands for, from the shadow
 * stack, innermost first. */
static void unshadow(agent_tls *t, uint64_t *pcs, int n) {
  int k = (int)t->depth - 1;
  for (int i = 1; i < n && k >= 0; i++)
    if (pcs[i] == ret_stub)
      pcs[i] = t->shadow[k--].ret;
}

static int t_call(void *self, int fn, const uint64_t *iargs, const char *const *sargs,
                  int nargs, uint64_t *iret, char *sret) {
  fctx *c = self;
  agent *ag = c->ag;
  /* Arguments are positional: iargs[i] or sargs[i] for argument i. */
#define SARG(i) (nargs > (i) && sargs ? sargs[i] : NULL)
  switch (fn) {
  case VP_FN_GETVMX: {
    uint64_t a = SARG(0) ? sym2addr(ag, SARG(0)) : iargs[0], v = 0;
    if (tramp_read(&v, a, 8, ag->guarded))
      return -VP_EXC_MEM;
    *iret = v;
    return 0;
  }
  case VP_FN_GETVMXSTR: {
    uint64_t a = SARG(1) ? sym2addr(ag, SARG(1)) : nargs > 1 ? iargs[1] : 0;
    if (nargs > 2)
      a += iargs[2];
    if (vp_read_str(t_read, c, VP_MEM_VMX, a, sret))
      return -VP_EXC_MEM;
    *iret = 1;
    return 0;
  }
  case VP_FN_VMXSTACK: {
    uint64_t pcs[64];
    int depth = nargs > 1 && iargs[1] ? (int)iargs[1] : AGENT_STACK_DEPTH;
    if (depth > 64)
      depth = 64;
    int n = 0;
    if (c->f && c->exit_ret && depth > 1) { /* the function, then where it returns */
      pcs[0] = c->f->rip;
      n = 1 + ustack_walk_cfi(ag->unw, ag->nunw, c->exit_ret, c->f->rsp, c->f->rbp, 0,
                              ag->guarded, pcs + 1, depth - 1);
    } else if (c->f) {
      n = ustack_walk_cfi(ag->unw, ag->nunw, c->f->rip, c->f->rsp, c->f->rbp, c->at_entry,
                          ag->guarded, pcs, depth);
    }
    unshadow(c->t, pcs, n);
    agent_tls *t = c->t;
    if (n <= AGENT_STACK_CACHE && (uint32_t)n == t->stk_n && t->stk_gen == ag->gen &&
        !memcmp(pcs, t->stk_pcs, (size_t)n * 8)) {
      memcpy(sret, t->stk_str, VP_STR_MAX);
    } else {
      ustack_format(pcs, n, ag->syms, ag->nsyms, ag->strs, ag->strs_len, sret, VP_STR_MAX);
      if (n <= AGENT_STACK_CACHE) {
        memcpy(t->stk_pcs, pcs, (size_t)n * 8);
        memcpy(t->stk_str, sret, VP_STR_MAX);
        t->stk_n = (uint32_t)n, t->stk_gen = ag->gen;
      }
    }
    *iret = 1;
    return 0;
  }
  case VP_FN_SYM2ADDR:
    *iret = sym2addr(ag, SARG(0));
    return 0;
  case VP_FN_CURPROCNAME:
    memcpy(sret, ag->comm, sizeof ag->comm);
    *iret = 1;
    return 0;
  case VP_FN_CURPID:
    *iret = (uint64_t)ag->pid;
    return 0;
  }
#undef SARG
  return -VP_EXC_MEM; /* the verifier keeps other domains' built-ins out */
}

/* ---- firing ---- */

static void fire_here(agent *ag, agent_tls *t, tramp_frame *f, const agent_fp *fps,
                      uint32_t n, int at_entry, uint64_t exit_ret) {
  rt_thread *th = t->th;
  if (t->gen != ag->gen || !th) {
    th = rt_thread_get(ag->sp, t->tid);
    if (!th) {
      t->drops += n;
      return;
    }
    t->th = th, t->gen = ag->gen;
  }
  fctx c = {ag, t, f, at_entry, exit_ret};
  vp_target tg = {&c, t_reg, t_read, t_call};
  vp_fire fire; /* filled field by field: a memset here costs more than the rest */
  fire.target = &tg;
  if (f && !exit_ret) {
    fire.args[0] = f->rdi, fire.args[1] = f->rsi, fire.args[2] = f->rdx;
    fire.args[3] = f->rcx, fire.args[4] = f->r8, fire.args[5] = f->r9;
    if (at_entry) { /* the rest on the stack, above the return address */
      const uint64_t *sp = (const uint64_t *)f->rsp;
      fire.args[6] = sp[1], fire.args[7] = sp[2], fire.args[8] = sp[3], fire.args[9] = sp[4];
    } else {
      fire.args[6] = fire.args[7] = fire.args[8] = fire.args[9] = 0;
    }
  } else {
    for (int i = 0; i < VP_NARGS; i++)
      fire.args[i] = 0;
    if (f)
      fire.args[0] = f->rax;
  }
  uint32_t ran = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t p = (uint32_t)fps[i].probe;
    if (ag->off && ag->off[p]) /* over its CPU limit (agent_cpu.c) */
      continue;
    fire.probe = fps[i].probe;
    fire.probename = fps[i].name;
    /* One fire in AGENT_CPU_SAMPLE is timed (rdtsc costs a few ns), and
     * counts for all: a fire's cost is bounded by the VP budget, so a
     * share that matters is made of many fires and the estimate holds. */
    if (++t->sample % AGENT_CPU_SAMPLE || p >= AGENT_CPU_PROBES) {
      vp_run(th, ag->img, &fire);
    } else {
      uint64_t t0 = __rdtsc();
      vp_run(th, ag->img, &fire);
      uint64_t d = (__rdtsc() - t0) * AGENT_CPU_SAMPLE;
      __atomic_store_n(&t->cyc[p], t->cyc[p] + d, __ATOMIC_RELAXED);
    }
    ran++;
  }
  t->fires += ran;
}

/* agent_on_stack(fn, arg, top): call fn(arg) with the stack pointer at top
 * (16-byte aligned), back on the caller's stack after. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl agent_on_stack\n.hidden agent_on_stack\n.type agent_on_stack,@function\n"
        "agent_on_stack:\n"
        "  push %rbp\n"
        "  mov %rsp,%rbp\n"
        "  mov %rdx,%rsp\n"
        "  mov %rdi,%rax\n"
        "  mov %rsi,%rdi\n"
        "  call *%rax\n"
        "  mov %rbp,%rsp\n"
        "  pop %rbp\n"
        "  ret\n"
        ".size agent_on_stack,.-agent_on_stack\n");
void agent_on_stack(void (*fn)(void *), void *arg, uint64_t top);

typedef struct job {
  agent *ag;
  agent_tls *t;
  tramp_frame *f;
  const agent_fp *fps;
  uint32_t n;
  int at_entry;
  uint64_t exit_ret;
} job;

static void run_job(void *arg) {
  job *j = arg;
  fire_here(j->ag, j->t, j->f, j->fps, j->n, j->at_entry, j->exit_ret);
}

void agent_fire_points(agent *ag, agent_tls *t, tramp_frame *f, const agent_fp *fps,
                       uint32_t n, int at_entry, uint64_t exit_ret) {
  job j = {ag, t, f, fps, n, at_entry, exit_ret};
  uint64_t here = (uint64_t)__builtin_frame_address(0);
  if (t->stack_top && (here > t->stack_top || here < t->stack_top - AGENT_PSTACK))
    agent_on_stack(run_job, &j, t->stack_top);
  else
    run_job(&j);
}

/* An entry at or below a new call's stack pointer on the same stack
 * belongs to a frame that is gone (longjmp, exceptions).  "Same stack":
 * within 256 KiB, so entries of coroutines on other stacks stay. */
static int stale(uint64_t r, uint64_t rsp) { return r <= rsp && rsp - r < (256u << 10); }

static void bury(agent_tls *t, uint32_t i) {
  t->grave[t->grave_next++ % AGENT_SHADOW] = t->shadow[i];
}

static void purge_stale(agent_tls *t, uint64_t rsp) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < t->depth; i++) {
    if (stale(t->shadow[i].rsp, rsp))
      bury(t, i);
    else
      t->shadow[k++] = t->shadow[i];
  }
  t->depth = k;
}

static void push_return(agent *ag, agent_tls *t, agent_site *s, tramp_frame *f) {
  while (t->depth && stale(t->shadow[t->depth - 1].rsp, f->rsp)) /* cheap, usual case */
    bury(t, --t->depth);
  if (t->depth == AGENT_SHADOW)
    purge_stale(t, f->rsp);
  if (t->depth == AGENT_SHADOW) { /* too deep: this call's EXIT is skipped */
    t->drops += s->xn;
    return;
  }
  uint32_t d = t->depth;
  t->shadow[d].ret = *(uint64_t *)f->rsp;
  t->shadow[d].rsp = f->rsp;
  t->shadow[d].site = s;
  t->shadow[d].gen = ag->gen;
  t->depth = d + 1;
  *(uint64_t *)f->rsp = ret_stub;
}

void agent_hit(void *arg, tramp_frame *f) {
  agent_site *s = arg;
  agent *ag = s->ag;
  agent_tls *t = agent_me;
  if (__builtin_expect(!t, 0) && !(t = claim()))
    return;
  if (t->busy) /* a probe inside a probe: the original code only */
    return;
  t->busy = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (ag->on) {
    if (s->n)
      agent_fire_points(ag, t, f, ag->fps + s->first, s->n, s->at_entry, 0);
    if (s->xn) /* EXIT: come back through the return trampoline */
      push_return(ag, t, s, f);
  }
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  t->busy = 0;
}

/* The return trampoline's hook.  Works after unload too (the probes then
 * stay quiet): it always gives the real return address back. */
static uint64_t agent_ret(void *arg, tramp_frame *f) {
  (void)arg;
  agent_tls *t = agent_me;
  /* Ours was pushed with the stack pointer just below the return address
   * `ret` popped; search from the top, as coroutines may interleave. */
  uint64_t want = f->rsp - 8;
  uint32_t d = t ? t->depth : 0;
  while (d > 0 && t->shadow[d - 1].rsp != want)
    d--;
  struct agent_ret e;
  if (d) {
    e = t->shadow[--d];
    for (uint32_t i = d; i + 1 < t->depth; i++)
      t->shadow[i] = t->shadow[i + 1];
    t->depth--;
  } else { /* judged stale too early: look among the buried, newest first */
    uint32_t k = 0;
    for (; t && k < AGENT_SHADOW; k++) {
      struct agent_ret *g = &t->grave[(t->grave_next - 1 - k) % AGENT_SHADOW];
      if (g->rsp == want && g->ret) {
        e = *g;
        g->rsp = 0, g->ret = 0;
        break;
      }
    }
    if (!t || k == AGENT_SHADOW) { /* cannot happen: no address to return to */
      static const char msg[] = "vprobe agent: return trampoline lost its address\n";
      tsys_write(2, msg, sizeof msg - 1);
      tsys_die(SIGABRT);
    }
  }
  uint64_t ret = e.ret;
  agent_site *s = e.site;
  uint32_t gen = e.gen;
  agent *ag = s->ag;
  if (!t->busy && ag->on && gen == ag->gen) {
    t->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (ag->on) {
      f->rip = s->addr;
      agent_fire_points(ag, t, f, ag->fps + s->xfirst, s->xn, 0, ret);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->busy = 0;
  }
  return ret;
}
