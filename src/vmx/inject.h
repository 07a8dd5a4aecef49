/*
 * inject.h - loading a library into another process through ptrace: how
 * vprobe gets its agent into a process it did not start.  This header is
 * the whole interface of src/vmx/inject.c.
 *
 * One thread is borrowed, and every state it passes through is one it can
 * run on from there by itself, should vprobe die at any moment (x86-64):
 *
 *  - a stub is written into a code cave: the slack between the end of an
 *    executable segment and the end of its last page, in a file mapping of
 *    the process.  Nothing executes those bytes; the stub is the same for
 *    every injection, so writing it again changes nothing;
 *  - a parameter block, the strings and a kernel rt_sigreturn frame are
 *    written on the thread's stack below its red zone (garbage below the
 *    stack pointer until used);
 *  - ONE register change: rip = stub, rsp = parameter block, orig_rax = -1.
 *    The stub saves the vector state, signal mask and alternate stack into
 *    the frame, calls dlopen, dlsym and the start function (or dlerror),
 *    makes a marker system call (getpid) with the results in rdi/rsi/rdx,
 *    then rt_sigreturn puts every register back: a system call the thread
 *    was blocked in is made again by the frame's rip-2, except a sleep the
 *    kernel restarts through restart_block (which rt_sigreturn clears):
 *    the stub finishes that one itself (restart_syscall) and the frame
 *    returns its result.
 *
 * vprobe follows the stub with PTRACE_SYSCALL up to the marker, reads the
 * results and detaches; the stub finishes on its own.
 */
#ifndef INJECT_H
#define INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

/* The steps of an injection.  With VPROBE_TEST_INJECT_DIE=N in its
 * environment vprobe SIGKILLs itself right after step N (tests). */
enum {
  INJ_STEP_SEIZED = 1, /* thread chosen, seized and stopped */
  INJ_STEP_SETTLED,    /* out of libc, ld.so and the probe windows */
  INJ_STEP_CAVE,       /* stub in its cave */
  INJ_STEP_STACK,      /* block, strings and frame on the stack */
  INJ_STEP_REGS,       /* the one register change */
  INJ_STEP_RUNNING,    /* the stub resumed */
  INJ_STEP_MARKER,     /* stopped at the marker, results read */
  INJ_STEP_DETACHED,   /* let go: the stub returns by itself */
  INJ_NSTEPS = INJ_STEP_DETACHED
};

#define INJ_MAX_WIN 8

typedef struct inj_ctx {
  int pid;                       /* thread seized */
  int tgid;                      /* its process */
  int seized;
  int running;                   /* the stub is under way */
  struct user_regs_struct saved; /* registers when stopped */
  uint64_t winlo[INJ_MAX_WIN], winhi[INJ_MAX_WIN]; /* libc and ld.so code */
  int nwin;
  char err[256];
} inj_ctx;

/* What to load and call: fn(arg) = dlsym(dlopen(lib, RTLD_NOW), sym). */
typedef struct inj_req {
  uint64_t dlopen, dlsym, dlerror; /* their addresses in the process */
  const char *lib, *sym, *arg;
  int timeout_ms;
} inj_req;

typedef struct inj_res {
  uint64_t handle; /* dlopen's result (0: failed, why says) */
  uint64_t ret;    /* fn's result */
  char why[256];   /* dlerror's message */
} inj_res;

/* Choose a thread of process pid (the main thread or else another one
 * blocked in a system call that holds no lock and restarts cleanly; else
 * the main thread), seize and stop it.  0, or -1 with c->err set and the
 * process let go. */
int inj_attach(inj_ctx *c, int pid);
/* Let the thread go, the stub (if started) finishing on its own. */
int inj_detach(inj_ctx *c);

/* Move the stopped thread until its RIP is outside every window (lo[i],
 * hi[i]) and outside libc and ld.so user code (where it may hold a lock
 * dlopen needs): code about to be patched must not hold a thread halfway
 * through it.  It is let run a moment and stopped again, up to about a
 * second (never single-stepped: a killed vprobe would leave it the trap
 * flag).  0, or -1 with c->err set. */
int inj_step_out(inj_ctx *c, const uint64_t *lo, const uint64_t *hi, int n);

/* Run the stub on the stopped thread (see above) and let the thread go.
 * 0 with *res filled (res->handle 0 if dlopen failed), or -1 with c->err
 * set.  Either way the thread is detached on return. */
int inj_load(inj_ctx *c, const inj_req *q, inj_res *res);

/* 1 if [addr, addr + n) lies within a copy of the stub in the process
 * (for code integrity checks: a cave holding it is not a patch). */
int inj_stub_covers(int pid, uint64_t addr, size_t n);

/* Process memory through /proc/PID/mem (any thread state). */
int inj_read(int pid, uint64_t addr, void *buf, size_t n);
int inj_write(int pid, uint64_t addr, const void *buf, size_t n);

#endif
