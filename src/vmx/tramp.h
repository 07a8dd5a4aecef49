/*
 * tramp.h - patching code in the running process: a 5-byte `jmp rel32` at a
 * probe point to a trampoline that saves every register, calls a hook, and
 * runs the displaced instructions (relocated with Zydis) before jumping
 * back; or, where a jump cannot be placed safely, an int3 handled by a
 * SIGTRAP handler.  Also the shared return trampoline EXIT probes use.  This
 * header is the whole interface of src/vmx/tramp.c.
 *
 * Everything here runs inside the probed process.  Trampoline memory is
 * never unmapped: a thread may still be running through it after unpatch.
 */
#ifndef TRAMP_H
#define TRAMP_H

#include <stddef.h>
#include <stdint.h>

/* The registers at the probe point, as the trampoline saves them on the
 * stack (low address first).  rip is the probe address, rsp the stack
 * pointer the patched code had there. */
typedef struct tramp_frame {
  uint64_t rip, rsp;
  uint8_t xmm[16][16];
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t rflags;
} tramp_frame;

/* Called at each hit, with the registers; it may change memory (e.g. the
 * return address at f->rsp) but not the frame. */
typedef void (*tramp_hook)(void *arg, tramp_frame *f);
/* Called by the return trampoline (f->rsp is the stack pointer after the
 * function's `ret`); returns the real return address to continue at. */
typedef uint64_t (*tramp_ret_hook)(void *arg, tramp_frame *f);

enum tramp_how { TRAMP_NONE, TRAMP_JUMP, TRAMP_TRAP, TRAMP_FAILED };

typedef struct tramp_set tramp_set;
typedef struct tramp_site tramp_site;

/* One set per process (the SIGTRAP handler finds it); NULL on error.
 * maxsites bounds the number of patch sites. */
tramp_set *tramp_open(int maxsites, char *err, size_t cap);

/* Patch addr so every execution calls hook(arg, frame) first.  [fn_lo,
 * fn_hi) is the function containing addr when known (0, 0 otherwise): the
 * jump must not run past its end, and no branch inside it may land within
 * the patched bytes.  Flags: TRAMP_FORCE_TRAP skips the jump; TRAMP_ENTRY
 * says addr is a function's first instruction (implied by fn_lo == addr),
 * where the ABI lets the trampoline skip saving flags and xmm8-15;
 * TRAMP_ROOM(n) (1..255) says code elsewhere may jump to addr+n, so a jump
 * may displace n bytes at most (else the site is a trap).
 * Sites of earlier calls that are live count: an addr strictly inside the
 * bytes a live jump displaced is refused (the jump's own bytes would be
 * overwritten: no safe placement), and a jump that would displace a live
 * site's address becomes a trap.
 * Returns the site, or NULL with a reason in err (the code is untouched). */
enum { TRAMP_FORCE_TRAP = 1, TRAMP_ENTRY = 2 };
#define TRAMP_ROOM(n) ((int)((n) & 0xff) << 8)
tramp_site *tramp_patch(tramp_set *s, uint64_t addr, uint64_t fn_lo,
                        uint64_t fn_hi, int flags, tramp_hook hook,
                        void *arg, char *err, size_t cap);
/* The same in two steps, for many sites at once: prepare builds the
 * trampoline without touching the code; commit writes every prepared site
 * (returns how many could be written; the others say TRAMP_FAILED). */
tramp_site *tramp_prepare(tramp_set *s, uint64_t addr, uint64_t fn_lo,
                          uint64_t fn_hi, int flags, tramp_hook hook,
                          void *arg, char *err, size_t cap);
int tramp_commit(tramp_set *s, tramp_site *const *sites, int n);
int tramp_site_how(const tramp_site *site); /* TRAMP_JUMP, _TRAP, _FAILED */
/* Put the original bytes back (idempotent; NULL entries are skipped). */
void tramp_unpatch(tramp_set *s, tramp_site *site);
void tramp_unpatch_many(tramp_set *s, tramp_site *const *sites, int n);
/* Put every site's original bytes back in this process without the
 * cross-thread care (a fork child: one thread). */
void tramp_unpatch_all_quiet(tramp_set *s);

/* The return trampoline: code that, reached by a `ret`, calls
 * hook(arg, frame) and continues at the address the hook returns, with
 * every register (the return value included) as the function left them. */
uint64_t tramp_ret_stub(tramp_set *s, tramp_ret_hook hook, void *arg);

/* Fill a frame from a signal's ucontext (for probes fired by signals). */
void tramp_frame_from_uc(tramp_frame *f, const void *ucontext);

/* Copy n bytes from src, returning 0, or -1 if a byte was unreadable: a
 * guarded copy (a SIGSEGV/SIGBUS handler turns a fault inside it into the
 * -1 return) when tramp_guard_install succeeded, else process_vm_readv. */
int tramp_guard_install(void);
int tramp_guard_ok(void); /* our SIGSEGV handler is still the one installed */
/* Put the previous SIGSEGV/SIGBUS handlers back (when no read can be in
 * flight).  The SIGTRAP handler stays for good: a thread that hit an int3
 * just before its removal must still find its way. */
void tramp_guard_remove(void);
int tramp_read(void *dst, uint64_t src, size_t n, int guarded);

#endif
