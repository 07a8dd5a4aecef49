/*
 * vp.h - the VP language: read VP text, verify it, lower it to a program
 * image, and run a probe of that image.  This header is the whole interface
 * of src/vp/; docs/vp.md is the language it accepts.
 *
 *   text --vp_compile--> vp_image --vp_run(fire)--> effects on an rt_thread
 *
 * The image is one contiguous, position-independent block of bytes: it is
 * what crosses into a probed process and what a BPF back end reads.
 */
#ifndef VP_H
#define VP_H

#include <stddef.h>
#include <stdint.h>

#include "rt/rt.h"

#define VP_VERSION_MAJOR 1
#define VP_VERSION_MINOR 0
#define VP_NAME_MAX 64  /* bytes, with the NUL */
#define VP_STR_MAX 256  /* bytes, with the NUL */
#define VP_NARGS 10     /* ARG0..ARG9 */

/* Domains a probe can live in; masks say where a built-in exists. */
enum vp_domain {
  VP_DOM_LOCAL = 1 << 0, /* target-free probes run by vprobe itself */
  VP_DOM_VMX = 1 << 1,   /* a host process */
  VP_DOM_GUEST = 1 << 2, /* the OS inside a QEMU VM */
  VP_DOM_VMM = 1 << 3,   /* QEMU's vCPU loop and devices */
  VP_DOM_VMK = 1 << 4,   /* the host kernel */
  VP_DOM_ALL = 0x1f,
};

/* The domain a probe name belongs to (VP_DOM_*), or 0 if the name is not
 * one any engine knows.  Legacy names keep their seed meaning.  A mask of
 * several for USEC:N (VP_DOM_LOCAL | VP_DOM_VMM): a timer without a VM, a
 * vCPU sampling probe with one; test with &. */
int vp_probe_domain(const char *probename);
/* Length of the "NAME:" that binds a probe to one VM (web:GUEST:...), or 0. */
size_t vp_probe_vm_prefix(const char *probename);
/* Length of NAME in "NAME:..." when NAME is an identifier that is not a
 * probe domain (so web:GUEST:x reads one way only), else 0. */
size_t vp_vm_name_len(const char *s);

/* Built-in integer variables (registers and friends). */
enum vp_reg {
  VP_REG_RAX, VP_REG_RBX, VP_REG_RCX, VP_REG_RDX, VP_REG_RSI, VP_REG_RDI,
  VP_REG_RSP, VP_REG_RBP, VP_REG_R8, VP_REG_R9, VP_REG_R10, VP_REG_R11,
  VP_REG_R12, VP_REG_R13, VP_REG_R14, VP_REG_R15, VP_REG_RIP, VP_REG_RFLAGS,
  VP_REG_CS, VP_REG_SS, VP_REG_DS, VP_REG_ES, VP_REG_FS, VP_REG_GS,
  VP_REG_CR0, VP_REG_CR2, VP_REG_CR3, VP_REG_CR4, VP_REG_CR8,
  VP_REG_DR6, VP_REG_DR7, VP_REG_EFER, VP_REG_KERNELGSBASE,
  VP_REG_FSBASE, VP_REG_GSBASE, VP_REG_APIC_BASEPA,
  VP_REG_TSC, VP_REG_TSC_HZ, VP_REG_PTSC, VP_REG_VCPUID, VP_REG_PCPUID,
  VP_REG_THREADID, VP_REG_NUMVCPUS,
  VP_REG_COUNT
};

/* Memory models of loads (docs/vp.md, `:guest` ...). */
enum vp_model {
  VP_MEM_DEFAULT, VP_MEM_GUEST, VP_MEM_GUESTPHYS, VP_MEM_VMX, VP_MEM_VMK
};

/* Exceptions; 0 is "none". */
enum vp_exc {
  VP_EXC_NONE, VP_EXC_MEM, VP_EXC_BAGFULL, VP_EXC_BAGEMPTY, VP_EXC_DIVZERO,
  VP_EXC_BUDGET, VP_EXC_DEPTH, VP_EXC_COUNT
};
const char *vp_exc_name(int exc); /* "MemAccessError" ... */

/* Built-in functions an engine implements through vp_target.call. The
 * interpreter itself does the target-free ones. */
enum vp_fn {
  VP_FN_GETGUEST, VP_FN_GETGUESTSTR, VP_FN_GETGUESTPHYS, VP_FN_GUESTSTACK,
  VP_FN_GETVMX, VP_FN_GETVMXSTR, VP_FN_VMXSTACK, VP_FN_SYM2ADDR,
  VP_FN_OFFATRET, VP_FN_OFFATSTRCPY, VP_FN_CURPROCNAME, VP_FN_CURPID,
  VP_FN_VMNAME,
  /* destructive */
  VP_FN_SETGPR, VP_FN_SETPHYSGPR, VP_FN_SETVMW, VP_FN_SETGUEST, VP_FN_GENMCE,
  VP_FN_SKIPFUNCTION, VP_FN_SETWATCHPOINT, VP_FN_REMOVEWATCHPOINT,
  VP_FN_COUNT
};

/* Signature of a built-in, shared by the VP verifier and Emmett's checker.
 * args: one letter per argument: 'i' integer, 's' string, 'S' string
 * variable (written), 'I' integer variable (written), 'f' format string
 * literal followed by any arguments, 'x' integer or string ("symbol").
 * Letters after '|' are optional arguments (either case). */
typedef struct vp_builtin {
  const char *name;
  char ret;        /* 'i' integer, 's' string */
  const char *args;
  int domains;     /* VP_DOM_* mask where it exists */
  int destructive; /* refused without --destructive */
  int fn;          /* VP_FN_* for target built-ins, -1 if the interpreter does it */
} vp_builtin;
const vp_builtin *vp_builtin_find(const char *name);
/* True for the target built-ins that return a string (curprocname, vmname). */
int vp_fn_returns_str(int fn);

typedef struct vp_var {
  const char *name; /* "RIP", "PROBENAME", "ARG3" ... */
  char type;        /* 'i' or 's' */
  int reg;          /* VP_REG_*, or -1 for PROBENAME and ARGn */
  int domains;
} vp_var;
const vp_var *vp_var_find(const char *name);

/* What the verifier enforces. */
typedef struct vp_limits {
  int max_probes;    /* 32 */
  size_t max_code;   /* program image bytes, 65536 */
  int max_depth;     /* call depth, 64 */
  uint32_t budget;   /* cost units per probe fire, 20000 */
  int destructive;   /* allow destructive built-ins */
} vp_limits;
void vp_limits_default(vp_limits *lim);

/* A diagnostic: "FILE:LINE:COL: error: message" (or "warning:"). */
typedef struct vp_diag {
  char error[512];   /* empty when there is none */
  char warning[512]; /* the first warning, e.g. a version mismatch */
} vp_diag;

typedef struct vp_image vp_image;

/* Read, verify and lower VP text. NULL on error, with diag->error set. */
vp_image *vp_compile(const char *text, size_t len, const char *file,
                     const vp_limits *lim, vp_diag *diag);
void vp_image_free(vp_image *img);

/* The image as bytes, and back (from_bytes checks it: the bytes may have
 * crossed a process boundary). */
const void *vp_image_bytes(const vp_image *img, size_t *len);
vp_image *vp_image_from_bytes(const void *bytes, size_t len);

int vp_image_nprobes(const vp_image *img);
const char *vp_image_probe(const vp_image *img, int i); /* as written */
int vp_image_ndefs(const vp_image *img); /* globals, for `vprobe -g` */
const char *vp_image_def(const vp_image *img, int i, char *buf, size_t cap);

/* The runtime layout the image needs (globals, shared integers, aggregates,
 * bags); the engine sizes and creates the rt_space from it. */
void vp_image_layout(const vp_image *img, rt_layout *layout);

/* What an engine supplies to a probe fire. */
typedef struct vp_target {
  void *self;
  /* A register or built-in integer; 0 ok, -1 if this domain has none (the
   * interpreter then supplies TSC, TSC_HZ, PTSC, PCPUID, THREADID itself). */
  int (*reg)(void *self, int reg, uint64_t *val);
  /* Read n bytes of target memory; 0 ok, -1 fault (MemAccessError). */
  int (*read)(void *self, int model, uint64_t addr, void *buf, size_t n);
  /* A target built-in (VP_FN_*) with nargs arguments, by position: for
   * argument i, a string (an 's', an 'x' given a string, or the current
   * value of an 'S' variable) is sargs[i] with iargs[i] = 0, an integer is
   * iargs[i] with sargs[i] = NULL.  Sets *iret, or writes sret (at most
   * VP_STR_MAX bytes with the NUL): sret is the result of a string built-in
   * (curprocname) and is copied into the 'S' variable of the others
   * (getgueststr, gueststack...).  Returns 0 or -VP_EXC_* (the fire then
   * raises that exception, "NAME failed"). */
  int (*call)(void *self, int fn, const uint64_t *iargs,
              const char *const *sargs, int nargs, uint64_t *iret,
              char *sret);
} vp_target;

/* One probe fire. */
typedef struct vp_fire {
  int probe;             /* index in the image */
  const char *probename; /* PROBENAME; NULL means the probe as written */
  uint64_t args[VP_NARGS];
  const vp_target *target;
} vp_fire;

/* Run one probe fire on thread th.  Returns VP_EXC_NONE, or the exception
 * that ended the fire (already reported, one line, on th's error stream).
 * Never blocks, never calls malloc: safe inside a probed process.  Uses
 * about 30 KiB of C stack.  TSC_HZ was measured when the image was loaded
 * (vp_compile / vp_image_from_bytes, ~5 ms, only if the image uses it). */
int vp_run(rt_thread *th, const vp_image *img, const vp_fire *fire);

/* A NUL-terminated string of at most VP_STR_MAX bytes (with the NUL) at
 * addr, read with an engine's reader a page at a time, so that a short
 * string near the end of a mapping reads: a fault on the first byte is -1,
 * a later one ends the string.  For the interpreter and the engines'
 * string built-ins (getgueststr, getvmxstr). */
int vp_read_str(int (*read)(void *self, int model, uint64_t addr, void *buf, size_t n),
                void *self, int model, uint64_t addr, char *dst);

#endif
