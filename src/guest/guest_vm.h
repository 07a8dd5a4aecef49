/*
 * guest_vm.h - the engine's state, shared by its files (guest.c runs the
 * VM and its probes, guest_target.c is what a probe fire sees).  Not used
 * outside src/guest/.
 */
#ifndef GUEST_VM_H
#define GUEST_VM_H

#include <pthread.h>
#include <stdint.h>

#include "ctl/ctl.h"
#include "guest/gdb.h"
#include "sym/ksym.h"

#define GUEST_MAX_SITES 4096 /* probe sites after glob expansion */
#define GUEST_MAX_EXITS 512  /* pending EXIT returns */
#define GUEST_MAX_WATCH 4    /* x86 has four debug registers */
#define GUEST_MAX_TIMERS 32
#define GUEST_CODE_PAGES 64  /* cached guest kernel text pages (gueststack) */

/* What a breakpoint address means. */
enum {
  SITE_PLAIN,   /* GUEST:sym, GUEST:0xADDR, ENTER, OFFSET */
  SITE_EXITREC, /* entry of an EXIT probe's function: record the return */
  SITE_IRQ,     /* an IDT gate of an interrupt vector */
  SITE_FAULT,   /* an IDT gate of an exception vector */
};

typedef struct guest_site {
  uint64_t addr;
  int probe;   /* image probe index */
  int kind;    /* SITE_* */
  int vector;  /* SITE_IRQ/SITE_FAULT */
  int errcode; /* the vector pushes an error code (ARG0 = it) */
  int args;    /* ENTER-like: ARG0..5 = the SysV argument registers */
  char name[VP_NAME_MAX]; /* PROBENAME for glob expansions, "" otherwise */
} guest_site;

typedef struct guest_bp {
  uint64_t addr;
  int refs; /* sites and pending exits that need it */
} guest_bp;

typedef struct guest_exit {
  uint64_t ret, rsp; /* return address and RSP just after the return */
  int site;          /* the SITE_EXITREC that recorded it */
} guest_exit;

typedef struct guest_watch {
  uint64_t addr;
  int len, type, probe;
} guest_watch;

typedef struct guest_timer {
  int probe;
  uint64_t period_ns, next_ns;
  int per_vcpu; /* fires on every vCPU (USEC:N, VMM:TIMER) */
} guest_timer;

/* Passing a breakpoint without single-stepping (which makes QEMU's TCG
 * throw away all its translated code): remove it, put breakpoints on the
 * instruction's successors, continue; at the successor, put it back. */
typedef struct guest_hop {
  int active;
  uint64_t addr;    /* the breakpoint taken out */
  int n;            /* successors */
  uint64_t next[2];
  int own[2];       /* inserted for the hop only */
  uint64_t start_ns;
} guest_hop;

typedef struct guest_page {
  uint64_t addr; /* page address, 0 if empty */
  int ok;        /* readable */
  uint8_t bytes[4096];
} guest_page;

typedef struct guest_vm {
  ctl_session *s;
  const ctl_vm *cfg;    /* its -m [NAME:]VM and -s */
  uint32_t tid_base;    /* its vCPU v fires on runtime thread tid_base + v + 1 */
  pthread_mutex_t *drain_lock; /* several VMs share one space and its streams */
  int *load, *unload;   /* probes that fire when it loads, unloads */
  int rc;               /* run_loop's result, from its thread */
  gdb_conn *g;
  ksym_table *syms;
  rt_space *sp;
  void *spmem;
  guest_site *sites;
  int nsites;
  guest_bp *bps;
  int nbps, capbps;
  guest_exit exits[GUEST_MAX_EXITS];
  int nexits;
  guest_watch watch[GUEST_MAX_WATCH];
  int nwatch;
  guest_timer timers[GUEST_MAX_TIMERS];
  int ntimers;
  int running;    /* the VM runs (we sent a continue) */
  int guardian, guardian_fd; /* see guardian_start */
  int step_mode;  /* pass breakpoints by single-stepping only */
  int no_emulate; /* pass them by hops and steps only */
  int gone;       /* the stub closed the connection */
  int async;      /* a fire from QEMU's trace log: no vCPU is stopped */
  struct qmp *qmp;
  struct qtrace *qt;
  int nqt;        /* probes delivered by qtrace */
  char qmppath[300];  /* QEMU's QMP socket ([unix:]PATH) for qtrace; "" if none */
  guest_hop hop;
  uint64_t text_lo, text_hi; /* kernel text, for gueststack */
  /* The vCPU a fire sees. */
  int thread;     /* stub thread id = VCPUID + 1 */
  int regs_ok;
  int regs_fresh; /* vm->regs came with the stop just waited for */
  uint64_t resume_at; /* the stopped vCPU goes on here (a passed NOP), or 0 */
  uint64_t regs[GDB_MAX_REGS];
  int regmap[VP_REG_COUNT]; /* VP_REG_* -> stub register number, -1 */
  int rip, rsp;             /* stub numbers of rip and rsp */
  guest_page *code;         /* GUEST_CODE_PAGES pages of kernel text */
  uint64_t hits, fires;
  uint64_t nstops, stopped_ns, stopped_at; /* VPROBE_GUEST_STATS */
} guest_vm;

/* guest_target.c: the vp_target of a fire on vm->thread. */
extern const vp_target guest_target_ops;
void guest_target_init(guest_vm *vm);
/* Registers of the stopped vCPU, read once per stop. 0 or -1. */
int guest_regs(guest_vm *vm);
int guest_reg(guest_vm *vm, int vpreg, uint64_t *val);
/* The frames of the current vCPU's stack into out (see gueststack). */
int guest_stack(guest_vm *vm, char *out, size_t cap, int depth);
/* Kernel code bytes at addr (cached pages); 0 or -1. */
int guest_code(guest_vm *vm, uint64_t addr, uint8_t *buf, size_t n);

#endif
