/*
 * tramp_int.h - what src/vmx/tramp.c (building trampolines, allocating
 * code memory, installing handlers) and src/vmx/tramp_live.c (the signal
 * handlers and the patch windows: code that runs while other threads run
 * through the patched code, and calls no libc) share.  Not an interface:
 * tramp.h is.
 */
#ifndef TRAMP_INT_H
#define TRAMP_INT_H

#include <Zydis/Zydis.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmx/tramp.h"

#define MAXCHUNKS 256
#define MAXDISP 16 /* displaced bytes at most: 4 instructions < 5 + 15 */
/* SIGRTMAX - 4, as a constant: glibc's SIGRTMAX is a libc call, and its
 * value on Linux is the kernel's 64. */
#define MOVE_SIG (64 - 4)

struct tramp_site {
  uint64_t addr;
  uint8_t orig[MAXDISP]; /* the original bytes */
  uint8_t len;           /* displaced bytes */
  uint8_t how;           /* TRAMP_JUMP, TRAMP_TRAP */
  volatile uint8_t live; /* patched (the hook runs) */
  uint8_t failed;        /* could not be written */
  uint8_t jmp[5];        /* the jump written */
  int prot;              /* of the page(s) */
  uint8_t *tramp, *tail;
  uint8_t tailmap[MAXDISP]; /* tail offset of the displaced instruction at
                               each byte offset, 0xff within an instruction */
  volatile uint8_t moving;  /* being committed: threads inside move out */
  volatile uint8_t stuck;   /* a thread could not be moved out */
  tramp_hook hook;
  void *arg;
};

typedef struct tramp_chunk {
  uint8_t *base;
  size_t used;
} tramp_chunk;

struct tramp_set {
  tramp_site *sites;
  volatile int nsites; /* published with a release store */
  int maxsites;
  tramp_chunk chunks[MAXCHUNKS];
  int nchunks;
  ZydisDecoder dec;
  int sync_core; /* membarrier SYNC_CORE registered */
  uint32_t xsave; /* bytes of the XSAVE area (0: no XSAVE) */
  /* threads through move_handler during a commit (their tids), and the
   * threads signalled (both preallocated: the patch window cannot allocate) */
  pid_t *moved, *sent;
  uint32_t nmoved, capmoved;
};

/* Set once by tramp_open (the handlers need them). */
extern tramp_set *volatile tramp_trap_set;
extern struct sigaction tramp_prev_trap, tramp_prev_segv, tramp_prev_bus, tramp_prev_move;
extern int tramp_guard_on;

tramp_site *tramp_find_site(tramp_set *s, uint64_t addr);
void tramp_trap_handler(int sig, siginfo_t *si, void *ucv);
void tramp_move_handler(int sig, siginfo_t *si, void *ucv);
void tramp_segv_handler(int sig, siginfo_t *si, void *ucv);

#endif
