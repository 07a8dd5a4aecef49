/*
 * inject.h - calling functions inside another process through ptrace: how
 * vprobe gets its agent into a process it did not start (dlopen the agent,
 * then call its start function).  This header is the whole interface of
 * src/vmx/inject*.c.
 *
 * One thread (the process's main thread) is seized and interrupted; the
 * other threads keep running.  A call is made on that thread's own stack,
 * below its red zone, with a return address of 0: the return faults at
 * RIP 0, which ptrace sees before any handler of the process, and the
 * registers are then put back as they were.
 */
#ifndef INJECT_H
#define INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

typedef struct inj_ctx {
  int pid;                       /* thread seized: the main thread, or
                                    another if that one has ended */
  int seized;
  int calling;                   /* a call is under way */
  struct user_regs_struct saved; /* registers when interrupted */
  uint64_t scratch;              /* next free byte (downwards) on its stack */
  char err[256];
} inj_ctx;

/* Seize and stop the main thread of pid (another live thread if it has
 * ended).  0, or -1 with c->err set. */
int inj_attach(inj_ctx *c, int pid);
/* Put the registers back and let the thread go. */
int inj_detach(inj_ctx *c);

/* Step the stopped thread (one instruction at a time) until its RIP is
 * outside every window (lo[i], hi[i]): code about to be patched must not
 * hold a thread halfway through it.  0, or -1 with c->err set. */
int inj_step_out(inj_ctx *c, const uint64_t *lo, const uint64_t *hi, int n);

/* Copy bytes into the stopped thread's stack scratch area; returns their
 * address in the process, or 0 on error. */
uint64_t inj_push(inj_ctx *c, const void *data, size_t n);

/* Start a call fn(args...) (at most 6 integer args) and let it run. */
int inj_call_start(inj_ctx *c, uint64_t fn, const uint64_t *args, int nargs);
/* 1 and *ret when the call returned, 0 while it runs, -1 if it failed (the
 * thread faulted elsewhere, or the process died; c->err says). */
int inj_call_poll(inj_ctx *c, uint64_t *ret);
/* Start, then wait up to timeout_ms. */
int inj_call(inj_ctx *c, uint64_t fn, const uint64_t *args, int nargs,
             uint64_t *ret, int timeout_ms);

/* Process memory through /proc/PID/mem (any thread state). */
int inj_read(int pid, uint64_t addr, void *buf, size_t n);
int inj_write(int pid, uint64_t addr, const void *buf, size_t n);

#endif
