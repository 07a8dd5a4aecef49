/*
 * elfsym.h - the function symbols of a live process: every ELF object it has
 * mapped (from /proc/PID/maps), each object's symbol tables read with libelf
 * and moved by the object's load bias.  This header is the whole interface
 * of src/sym/elfsym*.c.
 *
 * Module names are short: "libc" for libc.so.6, "libssl" for libssl.so.3,
 * "libglib" for libglib-2.0.so.0 (a "-N.N" version goes too), the basename
 * for the main program.
 *
 * A function's extent is its symbol size; a symbol without one (hand-written
 * assembly) takes the extent of the .eh_frame FDE that covers it.  IFUNC
 * symbols are listed at the implementation the process's dynamic linker
 * chose (a resolved GOT slot read from the process, or vprobe's own choice
 * when the process maps the same file); the ones whose implementation
 * cannot be found are kept apart (unresolved) so that a probe on them can
 * say why it cannot be placed.
 */
#ifndef ELFSYM_H
#define ELFSYM_H

#include <stddef.h>
#include <stdint.h>

typedef struct esym_mod {
  char *path;      /* as in /proc/PID/maps */
  char *name;      /* short name */
  uint64_t bias;   /* load bias: address = bias + st_value */
  uint64_t lo, hi; /* extent of its mappings */
  int is_exe;      /* the main program */
} esym_mod;

/* esym_fn flags */
#define ESYM_IFUNC 1u     /* an IFUNC: addr is the implementation in use */
#define ESYM_FDE_SIZE 2u  /* size from the .eh_frame FDE, not the symbol */
#define ESYM_SIGRETURN 4u /* its code is the rt_sigreturn trampoline */
#define ESYM_ELSEWHERE 8u /* an unresolved IFUNC implemented outside its
                           * object (the vDSO's time functions) */

typedef struct esym_fn {
  uint64_t addr, size; /* absolute; size 0 when no extent is known */
  const char *name;    /* owned by the esym_proc */
  int mod;             /* index in mods */
  unsigned flags;      /* ESYM_* */
} esym_fn;

typedef struct esym_proc {
  int pid;
  esym_mod *mods;
  int nmods;
  esym_fn *fns; /* function symbols of every module, sorted by address */
  size_t nfns;
  char **names; /* storage of the names (one block per module) */
  esym_fn *unresolved; /* IFUNCs with no known implementation (addr: the */
  size_t nunresolved;  /* resolver's), sorted by address */
} esym_proc;

/* Read the maps and symbols of process pid.  NULL on error, with a one-line
 * reason in err. */
esym_proc *esym_open(int pid, char *err, size_t cap);
void esym_close(esym_proc *p);

/* The short name of an object path: "/lib/x86_64-linux-gnu/libc.so.6" ->
 * "libc". */
void esym_modname(const char *path, char *out, size_t cap);

/* First function called name (in module mod when mod is not NULL), or NULL. */
const esym_fn *esym_lookup(const esym_proc *p, const char *mod,
                           const char *name);
/* The function containing addr (or the closest one below it within its
 * module, when sizes are 0), or NULL. */
const esym_fn *esym_at(const esym_proc *p, uint64_t addr);
/* The module containing addr, or -1. */
int esym_mod_at(const esym_proc *p, uint64_t addr);

/* Up to n bytes of the code at addr as the object's file has it (a patch
 * in the process does not show), else as the process has it.  Returns how
 * many bytes were read (0 if none). */
size_t esym_code(const esym_proc *p, uint64_t addr, void *buf, size_t n);

/* The executable code of module m as its file has it (a patch in the
 * process does not show): cb(ctx, addr, code, n) once per PF_X PT_LOAD
 * segment, addr absolute, code valid only during the call.  Returns the
 * segments seen, or -1 if the file cannot be read. */
typedef void (*esym_code_cb)(void *ctx, uint64_t addr, const uint8_t *code, size_t n);
int esym_exec_code(const esym_proc *p, int m, esym_code_cb cb, void *ctx);

/* 1 if code (n bytes) begins with the rt_sigreturn trampoline
 * (mov $15,%eax or %rax; syscall). */
int esym_is_sigreturn(const uint8_t *code, size_t n);

/* Function symbols of one ELF file, unbiased, through cb (name valid only
 * during the call).  Returns the count, or -1 if the file is not readable
 * ELF.  Used by esym_open; exposed for tests and for listing a program that
 * is not running yet. */
typedef void (*esym_cb)(void *ctx, const char *name, uint64_t value,
                        uint64_t size);
long esym_elf_funcs(const char *path, esym_cb cb, void *ctx);

/* A live thread of process pid whose /proc/TID files show the process:
 * pid itself, unless its main thread has ended (pthread_exit in main). */
int esym_live_tid(int pid);

/* 1 if path is an ELF program without an interpreter (statically linked:
 * nothing can be preloaded into it), 0 otherwise. */
int esym_elf_is_static(const char *path);

#endif
