/*
 * ustack.h - call stacks of a thread in the probed process: a frame-pointer
 * walk (every read guarded, a broken chain just ends the stack) and its
 * symbolization from the vmx_sym table the controller put in the shared
 * region.  This header is the whole interface of src/vmx/ustack.c.
 */
#ifndef USTACK_H
#define USTACK_H

#include <stddef.h>
#include <stdint.h>

#include "vmx/proto.h"

/* Program counters, innermost first, starting with rip.  at_entry: the
 * thread is at a function's first instruction, so the return address is
 * at [rsp] and rbp still belongs to the caller.  guarded: see tramp_read.
 * Returns how many were stored (at most max). */
int ustack_walk(uint64_t rip, uint64_t rsp, uint64_t rbp, int at_entry, int guarded,
                uint64_t *pcs, int max);

/* The same walk helped by the controller's unwind table (uw, n entries,
 * sorted; see proto.h): a frame whose code the table covers is stepped by
 * its CFI rule, others by the frame pointer, so code built without frame
 * pointers unwinds too.  With n == 0 it is ustack_walk. */
int ustack_walk_cfi(const vmx_unwind *uw, uint32_t n, uint64_t rip, uint64_t rsp,
                    uint64_t rbp, int at_entry, int guarded, uint64_t *pcs, int max);

/* The entry covering pc, or NULL. */
const vmx_unwind *ustack_unwind_at(const vmx_unwind *uw, uint32_t n, uint64_t pc);

/* The symbol containing addr, or NULL (syms sorted by addr). */
const vmx_sym *ustack_sym(const vmx_sym *syms, uint32_t nsyms, uint64_t addr);

/* "main+0x1a <- work+0x10 <- ...", innermost first; frames after the
 * first are return addresses, looked up at pc-1 (the call) and printed as
 * the return address.  Unknown code prints as 0xADDR.  Stops at a frame
 * boundary when out (cap bytes with the NUL) is full.  Returns the length. */
size_t ustack_format(const uint64_t *pcs, int n, const vmx_sym *syms, uint32_t nsyms,
                     const char *strs, uint64_t strs_len, char *out, size_t cap);

#endif
