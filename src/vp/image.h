/*
 * image.h - the program image: one contiguous, position-independent block
 * of bytes (all references are offsets or indices), and the bytecode the
 * interpreter (exec.c) runs.  verify.c writes it; vpi_load checks every
 * index in it so that bytes from another process cannot make vp_run read
 * or jump out of bounds.
 *
 * Layout (little-endian, each section 8-byte aligned):
 *   vpi_header
 *   u64 int_init[nints]            per-thread integer globals
 *   u32 str_init[nstrs]            pool offsets of string global initial values
 *   u64 shared_init[nshared]       shared (pervm/pervmk/perhost) integers
 *   vpi_aggr aggrs[naggrs]
 *   u32 bag_sizes[nbags]
 *   vpi_def defs[ndefs]            names of globals, for `vprobe -g`
 *   vpi_func funcs[nfuncs]         functions, then one per probe body
 *   vpi_probe probes[nprobes]
 *   char pool[pool_len]            NUL-terminated strings, ends with a NUL
 *   u32 code[ncode]                bytecode words
 *
 * Bytecode: a stack machine on 64-bit values.  A word holds the opcode in
 * its low 8 bits and an operand A in its high 24; some instructions take
 * extra words.  A string value on the stack is a reference (VPX_REF_*): a
 * pool offset, a global string, a slot of the string arena, or PROBENAME;
 * the interpreter bounds-checks references when it resolves them, so a
 * corrupted image can at worst read the wrong string.
 */
#ifndef VP_IMAGE_H
#define VP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "vp/vp.h"

#define VPI_MAGIC 0x31495056u /* "VPI1" */
#define VPI_VERSION 1
#define VPI_MAX_STACK 1024 /* operand stack + locals per frame */
#define VPI_MAX_SLOTS 48   /* string arena slots per fire */
#define VPI_MAX_DEPTH 128  /* call depth the interpreter supports */
#define VPI_MAX_ARGS 16    /* printf arguments, built-in arguments */
#define VPI_MAX_HANDLERS 32
#define VPI_MAX_BUDGET (1u << 26) /* cost units: well under a second */

/* String references. */
#define VPX_REF_POOL 0ull
#define VPX_REF_GLOBAL 1ull
#define VPX_REF_SLOT 2ull
#define VPX_REF_PROBENAME 3ull
#define VPX_REF(tag, i) ((tag) << 32 | (uint64_t)(uint32_t)(i))

enum vpi_def_kind { VPI_DEF_INT, VPI_DEF_STR, VPI_DEF_SHARED, VPI_DEF_AGGR,
                    VPI_DEF_BAG };

typedef struct vpi_header {
  uint32_t magic, version, total_len, flags;
  uint32_t budget, max_depth;
  uint32_t nints, nstrs, nshared, naggrs, nbags, ndefs, nfuncs, nprobes;
  uint32_t pool_len, ncode;
  uint32_t off_int, off_str, off_shared, off_aggr, off_bag, off_def,
      off_func, off_probe, off_pool, off_code;
} vpi_header;

#define VPI_FLAG_TSC_HZ 1 /* uses TSC_HZ or cycles2ms: calibrate at load */

typedef struct vpi_aggr {
  uint32_t name; /* pool offset */
  uint8_t nint, nstr, pad[2];
} vpi_aggr;

typedef struct vpi_def {
  uint32_t kind, name, index, pad;
} vpi_def;

typedef struct vpi_func {
  uint32_t name;        /* pool offset */
  uint32_t start, end;  /* code words [start, end) */
  uint32_t nparams;     /* first locals */
  uint32_t nlocals;     /* integer locals incl. params (string params are refs) */
  uint32_t nslots;      /* string arena slots for locals and temporaries */
  uint32_t maxstack;    /* operand stack words, beyond the locals */
  uint32_t cost;        /* charged at each call */
  uint32_t ret_str;     /* returns a string */
  uint32_t recursive;   /* may call itself (the depth limit applies) */
} vpi_func;

typedef struct vpi_probe {
  uint32_t name; /* pool offset, as written */
  uint32_t func; /* body */
  uint32_t domain;
  uint32_t pad;
} vpi_probe;

/* Opcodes.  Stack effects in brackets: [pops -> pushes]. */
enum vpi_op {
  OP_PUSHI,    /* A: signed 24-bit [-> v] */
  OP_PUSHK,    /* +2 words: low, high [-> v] */
  OP_PUSHS,    /* A: pool offset [-> ref] */
  OP_PROBENAME,/* [-> ref] */
  OP_GETG,     /* A: int global [-> v] */
  OP_SETG,     /* A [v -> v] */
  OP_GETSH,    /* A: shared int [-> v] */
  OP_SETSH,    /* A [v -> v] */
  OP_GETL,     /* A: local [-> v] */
  OP_SETL,     /* A [v -> v] */
  OP_GSTR,     /* A: string global [-> ref] */
  OP_LSTR,     /* A: frame slot [-> ref] */
  OP_SETSTR,   /* [dst src -> dst] copy */
  OP_REG,      /* A: VP_REG_* [-> v] */
  OP_ARG,      /* A: 0..9 [-> v] */
  OP_POP,      /* [v ->] */
  OP_DROP,     /* A: n [n values ->] */
  OP_JMP,      /* A: target */
  OP_JZ,       /* A: target [c ->] */
  OP_JNZ,      /* A: target [c ->] */
  OP_LOOP,     /* A: target (back-edge), +1 word: cost */
  OP_BOOL,     /* [v -> v != 0] */
  OP_NOT, OP_BNOT, OP_NEG,
  OP_SEXT, OP_ZEXT, /* A: bits */
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_SHL, OP_SHR, OP_SAR, OP_XOR,
  OP_OR, OP_AND, OP_SDIV, OP_SMOD, OP_GT, OP_LT, OP_GE, OP_LE, OP_EQ, OP_NE,
  OP_SGT, OP_SLT, OP_SGE, OP_SLE, OP_STREQ, OP_STRNE, OP_STRCMP,
  OP_CALL,     /* A: func, +1 word: caller slot for a string result [n args -> v] */
  OP_RET,      /* [v ->] leave the function or probe */
  OP_PRINTF,   /* A: nargs (fmt included), +1 word: string-arg mask [n -> 1] */
  OP_SPRINTF,  /* as PRINTF, then dst [dst n -> 1] */
  OP_LOGINT, OP_LOGSTR, /* [v -> 1] */
  OP_SYSTIME,  /* [-> µs] */
  OP_CYC2MS,   /* [c -> ms] */
  OP_WRITEINT, /* [v n -> 1] */
  OP_FETCHADD, /* A: var (bit 23: shared) [v -> old] */
  OP_CMPXCHG,  /* A: as FETCHADD [old new -> 0/1] */
  OP_LOAD,     /* A: bytes | model << 8 [addr -> v] */
  OP_LOADSTR,  /* A: model [dst addr -> 1] */
  OP_AGGR,     /* A: aggr [ikeys skeys v -> 1] */
  OP_AGGRINC,  /* A: aggr [ikeys skeys -> 1] */
  OP_AGGRPRINT,/* A: aggr | countonly << 16 | hasfmt << 17 [fmt? -> 1] */
  OP_AGGRCLEAR,/* A: aggr [-> 1] */
  OP_BAGINS,   /* A: bag | raise << 16 [k v -> 0/1] */
  OP_BAGREM,   /* A: bag [k -> v] */
  OP_BAGNEXT,  /* A: bag, +1 word: cursor local | target << 8 [-> k v], or
                  jump to target when the bag has no more pairs [->] */
  OP_TCALL,    /* A: VP_FN_*, +1 word: nargs | strmask << 8 | (1 + index
                  of the 'S' argument, or 0) << 24, +1 word: slot for a
                  string result [n -> v] */
  OP_TRY,      /* A: handler, +1 word: exception mask */
  OP_ENDTRY,   /* A: handlers to pop */
  OP_JEXC,     /* A: target, +1 word: mask; jump unless the exception is in mask */
  OP_RAISE,    /* re-raise the caught exception */
  OP_COUNT
};

/* Words an instruction takes. */
static inline int vpi_op_len(int op) {
  switch (op) {
  case OP_PUSHK: case OP_TCALL: return 3;
  case OP_LOOP: case OP_CALL: case OP_PRINTF: case OP_SPRINTF:
  case OP_BAGNEXT: case OP_TRY: case OP_JEXC: return 2;
  default: return 1;
  }
}

#define VPI_A(w) ((w) >> 8)
#define VPI_W(op, a) ((uint32_t)(op) | (uint32_t)(a) << 8)

/* A loaded image: the bytes plus pointers into them, and what the loader
 * computed (TSC frequency, rt layout arrays). */
struct vp_image {
  unsigned char *bytes;
  size_t len;
  const vpi_header *h;
  const uint64_t *int_init, *shared_init;
  const uint32_t *str_init, *bag_sizes, *code;
  const vpi_aggr *aggrs;
  const vpi_def *defs;
  const vpi_func *funcs;
  const vpi_probe *probes;
  const char *pool;
  uint64_t tsc_hz;
  const vpi_func **entry; /* per probe: its body, to start a fire quickly */
  const char **str_init_ptrs;
  const char **aggr_names;
  rt_aggr_shape *shapes;
};

/* Take ownership of bytes (malloc'd, len long), check them, and build the
 * image.  NULL (bytes freed) if they are not a valid image; why in err. */
vp_image *vpi_load(unsigned char *bytes, size_t len, char *err, size_t cap);
/* TSC ticks per second, measured once (a few ms). */
uint64_t vpi_tsc_hz(void);

#endif
