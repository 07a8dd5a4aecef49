/*
 * vmx_unwind.h - the unwind table (proto.h vmx_unwind) of a process, built
 * by the controller from the .eh_frame CFI of every mapped object with
 * libdw, so that the agent's vmxstack can walk code built without frame
 * pointers.  This header is the whole interface of src/vmx/vmx_unwind.c.
 */
#ifndef VMX_UNWIND_H
#define VMX_UNWIND_H

#include <stdint.h>

#include "sym/elfsym.h"
#include "vmx/proto.h"

/* At most this many entries: objects that would pass it are left out (and
 * walked by frame pointers), which keeps the region bounded. */
#define VMX_UNWIND_MAX 2000000u

/* The entries for every mapped object of p, sorted by start, in *out
 * (malloc'd, NULL when there are none).  Returns how many.  Objects whose
 * CFI cannot be read are skipped: the table is an aid, never an error. */
uint32_t vmx_unwind_build(const esym_proc *p, vmx_unwind **out);

#endif
