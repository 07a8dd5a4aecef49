/*
 * agent.h - the VMX agent, the part of vprobe that lives inside a probed
 * process (internal interface between agent.c, the life cycle, and
 * agent_fire.c, what happens at each probe hit).  The only symbol the
 * shared library exports is vpagent_start (proto.h).
 *
 * State that has to outlive one load (the patching machinery, the return
 * trampoline, the per-thread blocks) is per process: a thread may return
 * through an EXIT trampoline long after the script that swapped its return
 * address was unloaded, and the same process may be attached again.
 */
#ifndef AGENT_H
#define AGENT_H

#include <semaphore.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "rt/rt.h"
#include "vmx/proto.h"
#include "vmx/tramp.h"
#include "vp/vp.h"

#define AGENT_SHADOW 64      /* EXIT return addresses kept per thread */
#define AGENT_POOL 4096      /* per-thread blocks */
#define AGENT_MAXSITES 4096  /* patch sites per process, all loads together */
#define AGENT_STACK_DEPTH 16 /* vmxstack's default depth */
#define AGENT_STACK_CACHE 32 /* deeper stacks are not cached */
#define AGENT_PSTACK (128 * 1024) /* each thread's probe stack */
#define AGENT_CPU_PROBES 128 /* probes whose CPU time is measured */
#define AGENT_CPU_WINDOW 10  /* scans (100 ms each) a CPU share is taken over */
#define AGENT_CPU_SAMPLE 8   /* one fire in this many is timed */

typedef struct agent agent;
typedef struct agent_site agent_site;

/* What a fire needs of a point, kept next to the sites (private memory,
 * one load away on the hit path). */
typedef struct agent_fp {
  int probe;
  const char *name; /* PROBENAME */
} agent_fp;

/* A thread's own block (found through one initial-exec TLS pointer, so
 * the fast path never calls __tls_get_addr, which may allocate). */
typedef struct agent_tls {
  volatile uint32_t tid;  /* owner; 0 free */
  volatile uint32_t busy; /* inside a probe: re-entry guard, and what unload waits on */
  uint32_t gen;           /* load the cached rt_thread belongs to */
  uint32_t depth;         /* shadow stack entries in use */
  rt_thread *th;
  uint64_t stack_top;     /* the thread's probe stack (0: none, run in place) */
  uint64_t fires, drops;  /* summed into vmx_shared by the agent thread */
  uint64_t cyc[AGENT_CPU_PROBES]; /* TSC cycles spent in each probe, summed
                                     by the agent thread (overload control) */
  uint32_t sample;                /* fires, for timing one in AGENT_CPU_SAMPLE */
  /* The last stack formatted (a hot path tends to repeat its stack). */
  uint32_t stk_n, stk_gen;
  uint64_t stk_pcs[AGENT_STACK_CACHE];
  char stk_str[VP_STR_MAX];
  struct agent_ret {
    uint64_t ret, rsp;    /* real return address, stack pointer at entry */
    agent_site *site;     /* whose EXIT probes fire */
    uint32_t gen;
  } shadow[AGENT_SHADOW];
  /* Entries judged stale (their frame looked gone) are kept here a while:
   * if the judgement was wrong (another stack: a coroutine) the return
   * still finds its address. */
  struct agent_ret grave[AGENT_SHADOW];
  uint32_t grave_next;
} __attribute__((aligned(64))) agent_tls; /* no false sharing between threads */

/* One patched address and the points placed there. */
struct agent_site {
  agent *ag;
  uint64_t addr, fn_lo, fn_hi;
  tramp_site *ts;
  uint32_t first, n;   /* ENTER/OFFSET/ADDR points: ag->pidx[first..first+n) */
  uint32_t xfirst, xn; /* EXIT points */
  int at_entry;        /* a function's first instruction */
  uint32_t room;       /* bytes a jump may displace here (1..255; 0: any) */
};

typedef struct agent_timer {
  uint32_t point;
  uint64_t period, next; /* ns, rt_clock */
} agent_timer;

typedef struct agent_ptimer { /* a profile timer on one thread */
  pid_t tid;
  uint32_t point;
  timer_t id;
  int seen; /* still in /proc/self/task at the last scan */
} agent_ptimer;

struct agent {
  char sockpath[108];
  int sock, wait_load;
  sem_t loaded;
  uint32_t gen;
  volatile int on; /* probes fire */
  int guarded;     /* reads through the SIGSEGV guard */
  pid_t pid;
  char comm[16];
  /* the shared region */
  vmx_shared *sh;
  size_t shsize;
  vp_image *img;
  rt_space *sp;
  vmx_point *pts;
  uint32_t npoints; /* copied: the region is unmapped after unload */
  const vmx_sym *syms;
  uint32_t nsyms;
  const char *strs;
  uint64_t strs_len;
  const vmx_unwind *unw; /* CFI rules for vmxstack (proto.h), sorted */
  uint32_t nunw;
  /* placement */
  agent_site *sites;
  int nsites;
  uint32_t *pidx;
  agent_fp *fps;   /* fps[k] is point pidx[k] */
  agent_timer *timers;
  int ntimers;
  agent_ptimer *ptimers;
  int nptimers, capptimers;
  agent_tls *me; /* the agent thread's block */
  uint64_t fires0, drops0; /* counters at the start of this load */
  int counted;
  /* overload control (agent_cpu.c) */
  volatile uint8_t *off; /* per probe: disabled, its fires skipped */
  uint32_t nprobes;
  uint64_t (*win)[AGENT_CPU_PROBES]; /* cycle sums at the last scans (a ring) */
  uint64_t win_ns[AGENT_CPU_WINDOW];
  uint32_t nwin;
  uint64_t tsc0, ns0; /* at load: the TSC rate is measured against rt_clock */
};

/* Overload control (agent_cpu.c), on the agent thread: plan at load
 * (NULL or why not), scan every 100 ms: a probe over the CPU limit is
 * disabled, one line on the error stream, its sites unpatched once every
 * point there is disabled. */
const char *agent_cpu_plan(agent *ag);
void agent_cpu_scan(agent *ag, tramp_set *ts);

/* Per-process state (agent_fire.c). */
tramp_set *agent_tramps(char *err, size_t cap);
uint64_t agent_ret_stub(void);
agent_tls *agent_tls_get(void); /* this thread's block, claimed on first use */
agent_tls *agent_tls_pool(void);
uint32_t agent_tls_used(void);
void agent_tls_fork_child(void);

/* The hook of every patch site (arg: agent_site). */
void agent_hit(void *arg, tramp_frame *f);
/* Run the n points fps[] on this thread; f may be NULL (timer probes).  at_entry: registers are at a function's first instruction.
 * exit_ret: for EXIT points, the address the function returns to (else 0). */
void agent_fire_points(agent *ag, agent_tls *t, tramp_frame *f, const agent_fp *fps,
                       uint32_t n, int at_entry, uint64_t exit_ret);

static inline agent_fp agent_point_fp(const agent *ag, uint32_t i) {
  agent_fp fp = {(int)ag->pts[i].probe,
                 ag->pts[i].name_off < ag->strs_len ? ag->strs + ag->pts[i].name_off : NULL};
  return fp;
}

#endif
