/*
 * vmx.h - the VMX engine, controller side: probe a running Linux process
 * (vprobe -x PID) or one vprobe launches (vprobe ... -- CMD ARGS) by loading
 * the program image into an agent inside it (src/vmx/proto.h is the
 * contract with the agent).  This header is the whole interface of
 * src/vmx/vmx*.c.
 *
 * Launch mode preloads the agent (LD_PRELOAD); its constructor connects
 * back and waits for LOAD, so every DT_NEEDED library is mapped when probe
 * points are resolved, and probes are placed before main runs.  Attach mode
 * seizes the main thread with ptrace (the other threads keep running),
 * calls dlopen and the agent's start function on it, and lets it go.
 */
#ifndef VMX_H
#define VMX_H

#include <stdint.h>
#include <stdio.h>

#include "ctl/ctl.h"
#include "sym/elfsym.h"
#include "vmx/proto.h"

/* Run the session's script in s->pid or a launched s->cmd.  Returns the
 * exit status (launch mode: the command's, 128+signal if it was killed). */
int vmx_run(ctl_session *s);
/* -p [GLOB]: print the probe points of the process on s->out. */
int vmx_list(ctl_session *s, const char *glob);
/* -r: make a process that had an agent whole again; reports on err. */
int vmx_reset(int pid, FILE *err);

/* Probe points resolved in one process, and the tables that go with them
 * into the shared region. */
typedef struct vmx_plan {
  vmx_point *pts;
  uint32_t npts, ptcap;
  vmx_sym *syms;
  uint32_t nsyms;
  char *str;         /* string table (name_off) */
  uint32_t slen, scap;
  int only_load;     /* nothing can fire after VMXLoad/VMXUnload */
} vmx_plan;

/* Resolve every VMX and target-free probe of img in process p into pl.
 * 0, or -1 with the one-line reason (without "vprobe: ") in err. */
int vmx_resolve(vmx_plan *pl, const vp_image *img, const esym_proc *p,
                char *err, size_t cap);
void vmx_plan_free(vmx_plan *pl);
/* True if a module is one vprobe must never probe (the agent itself). */
int vmx_mod_hidden(const esym_mod *m);
/* Why function f can never be probed ("signal return"...), or NULL. */
const char *vmx_never(const esym_proc *p, const esym_fn *f);
/* The bytes of f a probe may go in: its size (symbol or FDE), else up to
 * the next function of its module, else to the module's end. */
uint64_t vmx_fn_extent(const esym_proc *p, const esym_fn *f);
/* The function whose extent holds addr, or NULL. */
const esym_fn *vmx_fn_at(const esym_proc *p, uint64_t addr);

/* The addresses inside module m that code may jump to: targets of relative
 * branches and calls and code addresses taken (lea), found by a linear
 * sweep of the file's executable segments, and every symbol's start;
 * sorted and unique in *out (malloc'd).  The count, or -1 if the file
 * cannot be read. */
long vmx_code_targets(const esym_proc *p, int m, uint64_t **out);
/* Set each code point's room (proto.h) from its module's targets (each
 * module scanned once) and the plan's other code points. */
void vmx_set_rooms(vmx_plan *pl, const esym_proc *p);

/* One instruction of a function decoded from its entry. */
typedef struct vmx_insn {
  uint64_t start; /* offset in the function */
  uint32_t len;
  char text[96];  /* Intel syntax */
} vmx_insn;
/* Is offset off of the code code[0..n) (a function's bytes from its entry,
 * at address pc) an instruction boundary when decoded from code[0]?  0 yes;
 * 1 no, it is inside *in; -1 the bytes stop decoding at in->start (or run
 * out before off). */
int vmx_insn_at(const uint8_t *code, size_t n, uint64_t pc, uint64_t off, vmx_insn *in);

#endif
