/*
 * elfsym.h - the function symbols of a live process: every ELF object it has
 * mapped (from /proc/PID/maps), each object's symbol tables read with libelf
 * and moved by the object's load bias.  This header is the whole interface
 * of src/sym/elfsym*.c.
 *
 * Module names are short: "libc" for libc.so.6, "libssl" for libssl.so.3,
 * "libglib" for libglib-2.0.so.0 (a "-N.N" version goes too), the basename
 * for the main program.
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

typedef struct esym_fn {
  uint64_t addr, size; /* absolute */
  const char *name;    /* owned by the esym_proc */
  int mod;             /* index in mods */
} esym_fn;

typedef struct esym_proc {
  int pid;
  esym_mod *mods;
  int nmods;
  esym_fn *fns; /* function symbols of every module, sorted by address */
  size_t nfns;
  char **names; /* storage of the names (one block per module) */
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
